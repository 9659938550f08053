"""Publishing normalized records to JetStream: batched envelopes, bounded in-flight, no loss.

Records are batched per (record type, venue, instrument) into envelopes (flushed at
`max_records` or after `max_delay_s`), encoded with the wire codec and published with
`publish_async` and a deterministic `Nats-Msg-Id` (normalize.bus_keys). At most
`max_in_flight` envelopes wait for an ack; each ack has a timeout, after which the same
envelope is re-published with the same id (JetStream drops it if the first one was stored).
When the bus is unreachable, envelopes go to an append-only spool file, and are drained in
order, before anything newer, once it is back. Nothing is dropped: `submit` never blocks the
caller on the bus, only `close` waits for everything to be acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import Counter, Gauge

from normalize import codec
from normalize.bus_keys import message_id, subject_for
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import BookDeltas, FeedStatus, Record
from ticklake.bus_auth import connect as bus_connect

log = logging.getLogger(__name__)

ENVELOPES = Counter("ticklake_publisher_envelopes_total", "Envelopes acknowledged by JetStream")
RECORDS = Counter("ticklake_publisher_records_total", "Records in acknowledged envelopes")
RETRIES = Counter("ticklake_publisher_retries_total", "Envelopes re-published after an ack timeout or error")
IN_FLIGHT = Gauge("ticklake_publisher_in_flight", "Envelopes published and not yet acknowledged")
SPOOL_DEPTH = Gauge("ticklake_publisher_spool_depth", "Envelopes waiting in the local spool")
SPOOL_BYTES = Gauge("ticklake_publisher_spool_bytes", "Size of the local spool file: what a bus outage has cost "
                    "in disk so far")
FEED_EVENTS = Counter("ticklake_feed_events", "feed_status journal rows published, by venue and event (gap, "
                      "resync_start, stale, trades_lost, ...): the alert rules' view of the journal",
                      ["venue", "event"])

_LENGTH = struct.Struct(">I")
_spool_encoder = msgspec.msgpack.Encoder()
_spool_decoder = msgspec.msgpack.Decoder(tuple[str, str, bytes, int])


@dataclass
class BusConfig:
    url: str
    stream: str = "TICKS"
    subject_prefix: str = "ticks"
    max_age_s: float = 7 * 86_400
    max_bytes: int = -1
    """-1: no byte limit (max_age bounds the stream); see ticklake.settings.Settings.bus_max_bytes."""
    duplicate_window_s: float = 120
    """How long JetStream remembers a message id to drop its copy: a retry after a lost ack, the spool drained
    after a short outage, a redundant handler's identical envelope. nats-server holds each id (150-190 B)
    until up to three windows have passed, so this window times the messages a second is most of its
    memory: at 600 s that was about 60 % of its live heap, which rose for 28 minutes before it came down
    (docs/operations.md, "Soak"). A later copy is still stored once in each store, by the record keys."""
    max_records: int = 500
    max_delay_s: float = 0.01
    """Oldest a record waits in an open envelope: with the sink's commit, the tick-to-row latency."""
    max_in_flight: int = 512
    ack_timeout_s: float = 5.0
    attempts_before_spool: int = 3


def stream_config(config: BusConfig) -> StreamConfig:
    return StreamConfig(
        name=config.stream, subjects=[f"{config.subject_prefix}.>"], storage=StorageType.FILE,
        max_age=config.max_age_s, max_bytes=config.max_bytes, discard=DiscardPolicy.OLD,
        duplicate_window=config.duplicate_window_s,
    )


async def ensure_stream(js: nats.js.JetStreamContext, config: BusConfig) -> None:
    """Create the ticks stream, or bring an existing one to the configured limits."""
    wanted = stream_config(config)
    try:
        await js.add_stream(wanted)
    except BadRequestError:
        await js.update_stream(wanted)


@dataclass
class Envelope:
    subject: str
    msg_id: str
    payload: bytes
    records: int


class Batcher:
    """Groups records into envelopes of one type, venue and instrument. Pure: no I/O, no clock."""

    def __init__(self, prefix: str, max_records: int) -> None:
        self.prefix, self.max_records = prefix, max_records
        self.open: dict[tuple[str, str, str], list[Record]] = {}
        self.opened_at: dict[tuple[str, str, str], float] = {}
        self.rows: dict[tuple[str, str, str], int] = {}

    def add(self, records: Sequence[Record], now: float) -> list[Envelope]:
        """Batch records; a packed book message counts as its rows and goes in an envelope of
        packed messages only (the record type in the key is "book_delta+" for those)."""
        ready = []
        for record in records:
            packed = type(record) is BookDeltas
            key = (record.record_type + "+" if packed else record.record_type, record.venue, record.instrument)
            batch = self.open.get(key)
            if batch is None:
                batch = self.open[key] = []
                self.opened_at[key] = now
                self.rows[key] = 0
            batch.append(record)
            rows = self.rows[key] = self.rows[key] + (record.row_count() if packed else 1)  # type: ignore[attr-defined]
            if rows >= self.max_records:
                ready.append(self._close(key))
        return ready

    def due(self, now: float, max_delay_s: float) -> list[Envelope]:
        """Envelopes open for max_delay_s. `opened_at` is in opening order (a key is added when it
        opens, removed when it closes, `now` never goes back), so the due ones are its first keys
        and the scan stops at the first that is not (scanning every open key each tick took 8% of
        the handler's CPU in benchmarks/soak.py, profiled)."""
        keys = []
        for key, opened in self.opened_at.items():
            if now - opened < max_delay_s:
                break
            keys.append(key)
        return [self._close(key) for key in keys]

    def drain(self) -> list[Envelope]:
        return [self._close(key) for key in list(self.open)]

    def _close(self, key: tuple[str, str, str]) -> Envelope:
        batch = self.open.pop(key)
        del self.opened_at[key]
        rows = self.rows.pop(key)
        record_type, venue, instrument = key
        if record_type == "feed_status":  # rare envelopes: counting here costs nothing per tick
            for record in batch:
                FEED_EVENTS.labels(venue, record.event).inc()  # type: ignore[attr-defined]
        return Envelope(subject_for(self.prefix, record_type.rstrip("+"), venue, instrument), message_id(batch),
                        codec.encode(batch), rows)


class Spool:
    """Append-only file of envelopes the bus could not take yet, drained in order.

    When the file cannot be written (a full disk), envelopes are held in memory behind it, in order, and
    `full` says why, once: they are not lost while the process lives, and the bus takes them when back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.held: list[Envelope] = []
        self.full: str | None = None
        """Why the file could not be written, while envelopes are held in memory."""
        self.depth = sum(1 for _ in self.read())
        SPOOL_DEPTH.set(self.depth)
        SPOOL_BYTES.set(path.stat().st_size if path.exists() else 0)

    def append(self, envelope: Envelope) -> None:
        record = _spool_encoder.encode((envelope.subject, envelope.msg_id, envelope.payload, envelope.records))
        if not self.held:
            try:
                with self.path.open("ab") as handle:
                    handle.write(_LENGTH.pack(len(record)) + record)
                    handle.flush()
                    SPOOL_BYTES.set(handle.tell())
            except OSError as exc:
                self.full = f"{exc.strerror or exc} writing {self.path}"
                self.held.append(envelope)
            else:
                self.depth += 1
                SPOOL_DEPTH.set(self.depth)
                return
        else:
            self.held.append(envelope)
        self.depth += 1
        SPOOL_DEPTH.set(self.depth)

    def read(self) -> list[Envelope]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        envelopes, offset = [], 0
        while offset + 4 <= len(data):
            (length,) = _LENGTH.unpack_from(data, offset)
            if offset + 4 + length > len(data):
                break  # a torn final write: it was never acknowledged to anyone, but keep it out
            subject, msg_id, payload, records = _spool_decoder.decode(data[offset + 4: offset + 4 + length])
            envelopes.append(Envelope(subject, msg_id, payload, records))
            offset += 4 + length
        return envelopes + self.held

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.held.clear()
        self.full = None
        self.depth = 0
        SPOOL_DEPTH.set(0)
        SPOOL_BYTES.set(0)


class Publisher:
    def __init__(self, config: BusConfig, spool_path: Path) -> None:
        self.config = config
        self.batcher = Batcher(config.subject_prefix, config.max_records)
        self.spool = Spool(spool_path)
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._pending: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[Envelope] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._spool_lock = asyncio.Lock()
        self.acked_envelopes = 0
        self.acked_records = 0
        self.retries = 0

    async def start(self) -> None:
        self.nc = await bus_connect(  # with this process's credentials and TLS (ticklake.bus_auth)
            self.config.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, allow_reconnect=True,
            disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect, connect_timeout=5,
        )
        self.js = self.nc.jetstream(publish_async_max_pending=self.config.max_in_flight * 2)
        await ensure_stream(self.js, self.config)
        self._connected.set()
        self._tasks = [asyncio.create_task(self._flush_loop()), asyncio.create_task(self._send_loop())]

    async def _on_disconnect(self) -> None:
        self._connected.clear()
        if not self.nc.is_closed and not self.nc.is_draining:
            log.warning("publisher lost the bus; spooling")

    async def _on_reconnect(self) -> None:
        self._connected.set()
        log.info("publisher reconnected to the bus")

    def submit(self, records: Sequence[Record]) -> None:
        """Hand records over; returns at once (envelopes go out from the send loop)."""
        for envelope in self.batcher.add(records, time.monotonic()):
            self._outbox.put_nowait(envelope)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.max_delay_s / 2)
            for envelope in self.batcher.due(time.monotonic(), self.config.max_delay_s):
                self._outbox.put_nowait(envelope)
            if self.spool.depth and self._connected.is_set() and self._outbox.empty():
                async with self._spool_lock:
                    await self._drain_spool()

    async def _send_loop(self) -> None:
        while True:
            envelope = await self._outbox.get()
            try:
                async with self._spool_lock:
                    if self.spool.depth and self._connected.is_set():
                        await self._drain_spool()
                    if self.spool.depth or not self._connected.is_set():
                        self._spool(envelope)
                        continue
                await self._slots.acquire()
                IN_FLIGHT.inc()
                task = asyncio.create_task(self._publish(envelope))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            finally:
                self._outbox.task_done()

    def _spool(self, envelope: Envelope) -> None:
        """Into the spool; the first envelope it must hold in memory (a full disk) is one warning and a
        `spool_full` journal row of the envelope's venue, itself published when the bus is back."""
        was_full = self.spool.full is not None
        self.spool.append(envelope)
        if self.spool.full is not None and not was_full:
            log.warning("spool: %s; envelopes held in memory until the bus takes them", self.spool.full)
            venue = envelope.subject.split(".")[2]
            now = time.time_ns()
            self.submit([FeedStatus(venue, "", "", now, now, None, None, TS_EVENT_IMPUTED, "spool_full", "publisher",
                                    f"{self.spool.full}: envelopes held in memory"[:500])])

    async def _drain_spool(self) -> None:
        """Re-publish spooled envelopes in order, each waiting for its ack, then clear the file."""
        for envelope in self.spool.read():
            if not await self._publish_once_sync(envelope):
                return
        self.spool.clear()

    async def _publish_once_sync(self, envelope: Envelope) -> bool:
        for _ in range(self.config.attempts_before_spool):
            try:
                await self.js.publish(envelope.subject, envelope.payload, timeout=self.config.ack_timeout_s,
                                      headers={"Nats-Msg-Id": envelope.msg_id})
            except (TimeoutError, nats.errors.Error) as exc:
                self.retries += 1
                RETRIES.inc()
                log.warning("spool drain: %s", exc)
                await asyncio.sleep(0.2)
                continue
            self._acked(envelope)
            return True
        return False

    async def _publish(self, envelope: Envelope) -> None:
        try:
            for attempt in range(self.config.attempts_before_spool):
                try:
                    future = await self.js.publish_async(envelope.subject, envelope.payload,
                                                         headers={"Nats-Msg-Id": envelope.msg_id})
                    await asyncio.wait_for(future, self.config.ack_timeout_s)
                except (TimeoutError, nats.errors.Error) as exc:
                    self.retries += 1
                    RETRIES.inc()
                    if not self._connected.is_set():  # spooled: "publisher lost the bus" said it once for all
                        break
                    log.warning("publish %s attempt %d failed: %s", envelope.subject, attempt + 1, exc)
                    continue
                self._acked(envelope)
                return
            async with self._spool_lock:
                self._spool(envelope)
        finally:
            IN_FLIGHT.dec()
            self._slots.release()

    def _acked(self, envelope: Envelope) -> None:
        self.acked_envelopes += 1
        self.acked_records += envelope.records
        ENVELOPES.inc()
        RECORDS.inc(envelope.records)

    async def flush(self, timeout_s: float = 60) -> None:
        """Send every open batch and wait until all are acknowledged or spooled."""
        for envelope in self.batcher.drain():
            self._outbox.put_nowait(envelope)
        await asyncio.wait_for(self._outbox.join(), timeout_s)
        if self._pending:
            await asyncio.wait_for(asyncio.gather(*self._pending, return_exceptions=True), timeout_s)

    async def drain_spool_when_connected(self, timeout_s: float = 60) -> None:
        """Wait for the bus and empty the spool (used at shutdown and by tests)."""
        deadline = time.monotonic() + timeout_s
        while self.spool.depth and time.monotonic() < deadline:
            await asyncio.wait_for(self._connected.wait(), max(0.1, deadline - time.monotonic()))
            async with self._spool_lock:
                await self._drain_spool()

    async def close(self) -> None:
        await self.flush()
        with contextlib.suppress(TimeoutError):
            await self.drain_spool_when_connected(timeout_s=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.nc.close()
