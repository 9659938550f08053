"""The live feed handler: one venue connection, its capture, its normalizer, its REST calls.

Tasks and the bounded queue between them:

    socket reader --put_nowait--> queue (bounded) --> processor: capture, normalize, emit
                                    ^                      | snapshot requests
    REST fetcher (rate-limited) ----+ (put, may wait) <----+

The reader never waits on anything downstream: when the queue is full the frame is counted,
logged and recorded as a `queue_overflow` gap (depth gaps then resync through the sequence
rules; other channels carry the GAP_BEFORE of that journal entry in time). Reconnects use
jittered exponential backoff; a connection silent for `stale_after_s` is recorded as `stale`
and replaced; connections are recycled before the venue's own cut. Every event lands in the
feed_status journal with the connection id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ingest.capture_log import CaptureWriter
from ingest.frames import Frame
from ingest.venues.interface import VenueConnection
from normalize.emitted import Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus
from normalize.trade_ids import Backfill
from normalize.venues.interface import VenueNormalizer

log = logging.getLogger(__name__)

Sink = Callable[[Emitted], None]
_RETRIED_CLIENT_ERRORS = (408, 418, 429)
"""Request timeout, and Binance's and everyone's rate limits: worth another try after a pause."""


@dataclass
class HandlerStats:
    frames: int = 0
    overflows: int = 0
    connects: int = 0
    disconnects: int = 0
    stale: int = 0
    snapshots: int = 0
    backfills: int = 0
    rest_errors: int = 0


@dataclass
class HandlerConfig:
    queue_size: int = 100_000
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 30.0
    poll_interval_s: float = 60.0
    metadata_every_s: float = 3600.0
    """Instrument metadata is fetched at start and again this often: venues list and delist
    symbols and change tick sizes and funding intervals while a handler runs."""
    rest_timeout_s: float = 10.0
    resubscribe_retry_s: float = 5.0
    """After a resubscribe for a book snapshot, how long before asking again if none came."""
    top_depth: int = 0
    """Levels per side of the periodic top-N book snapshots (book_top); 0: none."""
    top_every_s: float = 1.0


class FeedHandler:
    def __init__(self, connection: VenueConnection, normalizer: VenueNormalizer, sink: Sink,
                 capture: CaptureWriter | None = None, config: HandlerConfig | None = None, label: str = "") -> None:
        self.connection, self.normalizer, self.sink, self.capture = connection, normalizer, sink, capture
        self.config = config or HandlerConfig()
        self.label = label
        """Which shard of the venue this handler runs (metrics label)."""
        self.stats = HandlerStats()
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=self.config.queue_size)
        self._pending_snapshots: set[str] = set()
        """Symbols with a snapshot fetched or being fetched and not yet processed."""
        self._snapshot_urls: dict[str, str] = {}
        self._rest_slot = asyncio.Lock()
        self._last_rest = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._backfills: set[asyncio.Task[None]] = set()
        self.connection_id = ""
        self._last_frame = 0.0
        self._ws: websockets.ClientConnection | None = None

    # -- journal ------------------------------------------------------------------------------
    def _journal(self, event: str, detail: str, connection_id: str) -> None:
        now = time.time_ns()
        record = FeedStatus(self.connection.venue, "", "", now, now, None, None, TS_EVENT_IMPUTED, event,
                            connection_id, detail, None, None)
        self.sink(Emitted(records=[record]))
        log.info("%s %s %s: %s", self.connection.venue, connection_id, event, detail)

    # -- the run loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.rest_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            processor = asyncio.create_task(self._process())
            pollers = [asyncio.create_task(self._poll(stop, self.connection.poll_urls, self.config.poll_interval_s)),
                       asyncio.create_task(self._poll(stop, self.connection.metadata_urls,
                                                      self.config.metadata_every_s, wait_first=True))]
            if self.config.top_depth:
                self._tasks.add(asyncio.create_task(self._tops(stop)))
            for url in self.connection.metadata_urls():
                await self._fetch(url)
            try:
                await self._connect_loop(stop)
            finally:
                if self._backfills:  # trades found missing: worth the wait of one REST round trip
                    await asyncio.wait(self._backfills, timeout=self.config.rest_timeout_s)
                for task in [*pollers, *self._tasks]:
                    task.cancel()
                await asyncio.gather(*pollers, *self._tasks, return_exceptions=True)
                await self.queue.join()
                processor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await processor
                if self.capture is not None:
                    self.capture.flush()

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            connection_id = f"{self.connection.venue}-{uuid.uuid4().hex[:10]}"
            self.connection_id = connection_id
            reason = "closed"
            try:
                async with websockets.connect(self.connection.stream_url(), max_size=None, open_timeout=10,
                                              compression=None) as ws:
                    attempt = 0
                    self.stats.connects += 1
                    self._journal("connect", self.connection.stream_url()[:200], connection_id)
                    for message in self.connection.subscribe_messages():
                        await ws.send(message)
                    self._ws = ws
                    pinger = asyncio.create_task(self._heartbeat(ws))
                    try:
                        reason = await self._read(ws, connection_id, stop)
                    finally:
                        self._ws = None
                        pinger.cancel()
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.stats.disconnects += 1
            self._journal("disconnect", reason, connection_id)
            if stop.is_set():
                return
            delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2**attempt)
            delay *= random.uniform(0.5, 1.0)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _read(self, ws: websockets.ClientConnection, connection_id: str, stop: asyncio.Event) -> str:
        """Receive until the connection ends; returns why. The per-frame work is a receive, two
        clock reads and a put_nowait: stop, staleness and the age limit are watched by a separate
        task that closes the socket, because a task or timer per frame would cost twice the
        receive itself (benchmarks/bench_ws.py)."""
        ending: list[str] = []
        watchdog = asyncio.create_task(self._watch(ws, connection_id, stop, ending))
        queue, stats = self.queue, self.stats
        try:
            while True:
                message = await ws.recv(decode=False)
                self._last_frame = time.monotonic()
                stats.frames += 1
                try:
                    queue.put_nowait(Frame(time.time_ns(), "ws", message, "", connection_id))
                except asyncio.QueueFull:
                    stats.overflows += 1
                    self._journal("queue_overflow", f"frame dropped: queue of {queue.maxsize} full", connection_id)
        except ConnectionClosed:
            if ending:
                return ending[0]
            raise
        finally:
            watchdog.cancel()

    async def _heartbeat(self, ws: websockets.ClientConnection) -> None:
        """The venue's application-level ping, if it wants one (its pongs are frames like any
        other: captured, and ignored by the normalizer)."""
        beat = self.connection.heartbeat()
        if beat is None:
            return
        interval, text = beat
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                await ws.send(text)

    async def _watch(self, ws: websockets.ClientConnection, connection_id: str, stop: asyncio.Event,
                     ending: list[str]) -> None:
        """Close the socket on stop, on silence longer than stale_after_s, and before the venue's
        connection age limit; `ending` tells the reader which."""
        opened = self._last_frame = time.monotonic()
        stale_after, max_age = self.config.stale_after_s, self.connection.max_connection_age_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, stale_after / 4, max_age / 4))
            now = time.monotonic()
            if stop.is_set():
                ending.append("stopped")
            elif now - opened >= max_age:
                ending.append("planned reconnect before the venue's connection age limit")
            elif now - self._last_frame >= stale_after:
                self.stats.stale += 1
                self._journal("stale", f"no frame for {stale_after} s", connection_id)
                ending.append("stale")
            else:
                continue
            await ws.close()
            return

    # -- processing -----------------------------------------------------------------------------
    async def _process(self) -> None:
        while True:
            frame = await self.queue.get()
            try:
                if self.capture is not None:
                    self.capture.append(frame)
                out = Emitted()
                self.normalizer.connection_id = frame.connection_id or self.normalizer.connection_id
                if frame.kind == "ws":
                    self.normalizer.on_ws(frame.payload, frame.ts_recv, out)
                else:
                    self.normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
                    if frame.url in self._snapshot_urls:
                        self._pending_snapshots.discard(self._snapshot_urls.pop(frame.url))
                for symbol in out.snapshot_requests - self._pending_snapshots:
                    self._pending_snapshots.add(symbol)
                    self._spawn(self._snapshot(symbol))
                for request in out.backfill_requests:
                    self._spawn(self._backfill(request), self._backfills)
                self.sink(out)
            except Exception:  # a bug must not stop the feed; the frame is kept in the capture
                log.exception("normalizing a %s frame failed", self.connection.venue)
            finally:
                self.queue.task_done()

    def _spawn(self, work: Coroutine[None, None, None], *groups: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(work)
        for group in (self._tasks, *groups):
            group.add(task)
            task.add_done_callback(group.discard)

    def idle(self) -> bool:
        """Nothing received waits in the queue and no book snapshot or trade backfill is pending."""
        return self.queue.empty() and not self._pending_snapshots and not self._backfills

    async def _rest_turn(self) -> None:
        """Wait for this connection's turn at the venue's rate for snapshots and backfills."""
        async with self._rest_slot:
            wait = self._last_rest + 1 / self.connection.snapshots_per_second - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_rest = time.monotonic()

    async def _snapshot(self, symbol: str) -> None:
        """Get one symbol a fresh book, respecting the venue-wide snapshot rate: over REST, or by
        subscribing its book channel again where the venue resends snapshots on the socket. The
        symbol stays pending until the processor has the snapshot, so none is asked twice."""
        await self._rest_turn()
        self.stats.snapshots += 1
        url = self.connection.snapshot_url(symbol)
        if url is None:
            await self._resubscribe(symbol)
            return
        self._snapshot_urls[url] = symbol
        if not await self._fetch(url):
            self._snapshot_urls.pop(url, None)
            self._pending_snapshots.discard(symbol)

    async def _backfill(self, request: Backfill) -> None:
        """Fetch trades the normalizer found missing, where the venue serves them; the page goes
        through the queue like any REST body and the normalizer journals the outcome. If every
        attempt fails the gap stays journaled with no backfill_done after it."""
        url = self.connection.backfill_url(request)
        if url is None:
            return
        await self._rest_turn()
        self.stats.backfills += 1
        if not await self._fetch(url):
            log.warning("%s trades %s %d..%d not backfilled", self.connection.venue, request.symbol,
                        request.first_id, request.last_id)

    async def _resubscribe(self, symbol: str) -> None:
        ws = self._ws
        try:
            if ws is not None:
                for message in self.connection.resubscribe_messages(symbol):
                    await ws.send(message)
        except ConnectionClosed:
            pass  # the reconnect subscribes everything again
        finally:
            # the snapshot comes back as an ordinary frame; if it does not, ask again later
            await asyncio.sleep(self.config.resubscribe_retry_s)
            self._pending_snapshots.discard(symbol)

    async def _fetch(self, url: str, attempts: int = 5) -> bool:
        """GET the URL, or POST its fragment as a JSON body (see ingest.venues.interface). A client
        error other than a timeout or a rate limit (an endpoint or symbol the venue does not know)
        is not tried again: the answer would be the same."""
        target, _, post_body = url.partition("#")
        for attempt in range(1, attempts + 1):
            final = attempt == attempts
            try:
                request = (self._session.post(target, data=post_body.encode(),
                                              headers={"Content-Type": "application/json"})
                           if post_body else self._session.get(target))
                async with request as response:
                    body = await response.read()
                    ts_recv = time.time_ns()
                    if response.status == 200:
                        await self.queue.put(Frame(ts_recv, "rest", body, url, self.connection_id))
                        return True
                    reason = f"HTTP {response.status}"
                    final |= 400 <= response.status < 500 and response.status not in _RETRIED_CLIENT_ERRORS
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.stats.rest_errors += 1
            log.warning("REST %s failed (%s), attempt %d%s", url, reason, attempt, ", giving up" if final else "")
            if final:
                return False
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
        return False

    def book_tops(self, depth: int) -> Emitted:
        """Top-`depth` snapshots of every book in sync, now (on demand), also handed to the sink."""
        out = Emitted()
        self.normalizer.book_tops(depth, time.time_ns(), out)
        self.sink(out)
        return out

    async def _tops(self, stop: asyncio.Event) -> None:
        """Snapshots on a wall-clock grid (every top_every_s), so hosts and runs line up."""
        every_ns = int(self.config.top_every_s * 1e9)
        while not stop.is_set():
            now = time.time_ns()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ((now // every_ns + 1) * every_ns - now) / 1e9)
            if not stop.is_set():
                self.book_tops(self.config.top_depth)

    async def _poll(self, stop: asyncio.Event, urls: Callable[[], list[str]], every_s: float,
                    wait_first: bool = False) -> None:
        """Fetch `urls()` every `every_s` seconds (the first time at once, or after `every_s`), each
        once a round: the next round is the retry."""
        wait = wait_first
        while not stop.is_set():
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
                if stop.is_set():
                    return
            wait = True
            for url in urls():
                await self._fetch(url, attempts=1)


@dataclass
class CollectingSink:
    """A sink that keeps everything in memory (offline runs, tests, the lake writer's buffer)."""

    emitted: Emitted = field(default_factory=Emitted)

    def __call__(self, out: Emitted) -> None:
        self.emitted.records.extend(out.records)
        self.emitted.dead_letters.extend(out.dead_letters)
