"""What every sink shares: its JetStream consumer, dead letters, and its counters.

A sink keeps its own durable offset next to what it writes (a database row in the same
transaction, a manifest after the files): the highest stream sequence whose effect is durable,
everything of its subjects at or below it being written. Exactly once rests on delivery in
stream order from that offset:

* At start the sink's durable pull consumer is recreated to deliver from offset + 1. Resuming
  the old consumer instead would redeliver a dead process's unacknowledged messages only after
  their ack wait, behind newer ones: a sink that had meanwhile written a newer message would
  take the late ones for already written, and lose them.
* While running, the consumer's delivery sequence must have no hole. A hole is a delivery lost
  in flight (a server restart, say) that would come back later, out of order; the sink then
  drops what it holds unwritten and resubscribes from its offset.

So a message at or below the offset has been written (it comes back only when its ack was lost
after the write, and is skipped) and one above it has not. Messages are acknowledged only after
their effect is durable; the offset, not the ack, is the sink's record of progress.

A sink's offset belongs to one stream: with it the sink keeps the stream's identity (JetStream's
creation time of the stream) and the bus time of the last message written. At every (re)subscribe:

* the stream no longer holds messages above the offset (they expired: the stream keeps 7 days or
  20 GiB and discards the oldest, and the sink was away longer), or
* the stream is not the one the offset belongs to (recreated, or another bus with the same stream
  name), whatever its length,

is a `bus_gap`: a feed_status row in the sink's own store (venue `bus`, the consumer as its
connection, the stream sequences and bus times the gap covers), a metric, one loud log line; then
the sink carries on from the first message the stream holds. `ticklake backfill` repairs such a
gap from the raw captures. The row's time is the gap's start, so a sink that stops before moving
its offset journals the same row again, and the stores keep it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from prometheus_client import Counter, Gauge, Histogram

from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus
from ticklake.bus_auth import connect as bus_connect

log = logging.getLogger(__name__)

ROWS_WRITTEN = Counter("ticklake_sink_rows_written", "Rows made durable by a sink", ["consumer"])
FILES_WRITTEN = Counter("ticklake_sink_files_written", "Lake files written by a sink", ["consumer"])
SKIPPED = Counter("ticklake_sink_skipped", "Redelivered messages at or below the durable offset, acknowledged "
                  "without writing", ["consumer"])
WRITE_RETRIES = Counter("ticklake_sink_write_retries", "Writes that failed (database or lake unavailable) and are "
                        "retried, their messages still unacknowledged", ["consumer"])
DEAD_LETTERS = Counter("ticklake_sink_dead_letters", "Envelopes that could not be decoded, sent to the dead-letter "
                       "stream", ["consumer"])
DUPLICATES = Counter("ticklake_sink_duplicates", "Rows not written because their key was already stored (a "
                     "redundant handler's copy of a venue event, or a backfill's)", ["consumer"])
RESYNCS = Counter("ticklake_sink_resyncs", "Resubscriptions from the durable offset after a delivery was lost in "
                  "flight", ["consumer"])
LAST_SEQ = Gauge("ticklake_sink_last_seq", "Highest stream sequence whose effect is durable", ["consumer"])
PENDING = Gauge("ticklake_sink_pending_messages", "Messages of the consumer's subjects the stream holds and has "
                "not delivered yet, as of the last fetch: the consumer's lag", ["consumer"])
BUS_TO_DURABLE = Histogram("ticklake_sink_bus_to_durable_seconds", "From the bus storing a message to its rows "
                           "being durable (committed, or in a lake file under the manifest), per message: the "
                           "sink's part of receive-to-queryable (the freshness SLO, docs/alerting.md)", ["consumer"],
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
OLDEST_UNACKED = Gauge("ticklake_sink_oldest_unacked_timestamp_seconds", "Bus time (Unix s) of the oldest message "
                       "the sink holds and has not made durable and acknowledged; 0 when it holds none",
                       ["consumer"])

BUS_AWAY = (ServiceUnavailableError, nats.errors.NoRespondersError, nats.errors.ConnectionReconnectingError)
"""Fetch errors of a bus that is restarting or reconnecting: retried, not fatal."""


BUS_VENUE = "bus"
"""feed_status rows about the bus itself (bus_gap) carry this venue id."""
BUS_GAPS = Counter("ticklake_sink_bus_gap_messages", "Messages the stream no longer held when the sink came to "
                   "them (expired, or the stream was recreated), each gap journaled as a bus_gap", ["consumer"])


@dataclass(frozen=True)
class BusGap:
    """Messages of the stream this sink never wrote and can no longer read."""

    stream: str
    consumer: str
    seq_from: int
    seq_to: int | None
    """None when the old stream's end is unknown (it was recreated)."""
    time_from_ns: int
    """Bus time of the last message written before the gap (0: unknown)."""
    time_to_ns: int
    """Bus time of the first message after it (0: none yet)."""
    reason: str

    def record(self) -> FeedStatus:
        """The journal row: ts_event (and ts_recv, its key) the bus time the gap starts after, ts_exch
        the bus time of the first message after it, seq_from/seq_to the stream sequences lost; keyed
        by its start, so journaling it twice stores it once."""
        start = self.time_from_ns or self.time_to_ns
        return FeedStatus(BUS_VENUE, self.stream, "", start, start, self.time_to_ns or None, None, TS_EVENT_IMPUTED,
                          "bus_gap", self.consumer, self.reason, self.seq_from, self.seq_to)


@dataclass(kw_only=True)
class ConsumerSettings:
    """The bus side of a sink's configuration, shared by both sinks (each adds its store's fields).
    Keyword-only: a positional call that meant another field fails instead of binding silently."""

    nats_url: str
    consumer: str
    stream: str = "TICKS"
    filter_subject: str = "ticks.>"
    dead_letter_prefix: str = "deadletter"
    dead_letter_stream: str = "DEADLETTER"
    batch: int = 256
    """Messages per fetch."""
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    retry_s: float = 1.0


class JetStreamSink:
    """Base of the sinks: the consumer (see the module docstring), dead letters, the counters.

    Counters are plain attributes (for tests and the CLI summary) and Prometheus metrics labelled
    with the consumer name (for operations), always updated together. `last_seq` is the durable
    offset; a subclass sets it from its own store before subscribing.
    """

    def __init__(self, settings: ConsumerSettings) -> None:
        self.settings = settings
        self.rows_written = 0
        self.files_written = 0
        self.skipped = 0
        self.dead_letters = 0
        self.write_retries = 0
        self.resyncs = 0
        self.duplicates = 0
        self.last_seq = 0
        self.stream_created = ""
        """Identity of the stream the offset belongs to ("" for an offset from before identities)."""
        self.last_time_ns = 0
        """Bus time of the message at the offset."""
        self.bus_gaps: list[BusGap] = []
        self.oldest_unacked_s = 0.0
        """Bus time (s) of the oldest message held and not yet acknowledged; 0 when none is held."""
        self._next_delivery = 1

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then finish what is held (write, commit, acknowledge)."""
        raise NotImplementedError

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        """Connect (riding out later disconnects) and make sure the dead-letter stream exists."""
        s = self.settings
        nc = await bus_connect(s.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)  # credentials, TLS
        js = nc.jetstream()
        with contextlib.suppress(BadRequestError):  # already there
            await js.add_stream(StreamConfig(name=s.dead_letter_stream, subjects=[f"{s.dead_letter_prefix}.>"]))
        return nc, js

    async def _acked_floor(self, js: JetStreamContext) -> int:
        """The stream sequence up to which the existing consumer saw every message acknowledged."""
        try:
            info = await js.consumer_info(self.settings.stream, self.settings.consumer)
        except NotFoundError:
            return 0
        return (info.ack_floor.stream_seq if info.ack_floor else None) or 0

    async def _subscribe(self, js: JetStreamContext, stop: asyncio.Event, max_ack_pending: int,
                         previous: JetStreamContext.PullSubscription | None = None
                         ) -> JetStreamContext.PullSubscription | None:
        """(Re)create this sink's consumer to deliver everything after `last_seq`, in stream
        order, and bind a fresh subscription to it (see the module docstring for why).

        The ticks stream belongs to the publishers (they set its limits): until one has created
        it, wait. Returns None when `stop` was set while waiting.
        """
        s = self.settings
        if previous is not None:
            with contextlib.suppress(nats.errors.Error):
                await previous.unsubscribe()
        config = ConsumerConfig(name=s.consumer, durable_name=s.consumer, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1,
                                ack_wait=s.ack_wait_s, filter_subject=s.filter_subject,
                                max_ack_pending=max_ack_pending)
        while not stop.is_set():
            try:
                info = await js.stream_info(s.stream)
                gap = await self._gap(js, info)
                self.stream_created = str(info.created)
                if gap is not None:
                    await self._record_bus_gap(gap)
                    self.bus_gaps.append(gap)
                    BUS_GAPS.labels(s.consumer).inc((gap.seq_to or gap.seq_from) - gap.seq_from + 1)
                    log.error("BUS GAP: consumer %s: %s", s.consumer, gap.reason)
                config.opt_start_seq = self.last_seq + 1
                with contextlib.suppress(NotFoundError):
                    await js.delete_consumer(s.stream, s.consumer)
                await js.add_consumer(s.stream, config)
            except NotFoundError:
                log.warning("stream %s does not exist yet; waiting for a publisher to create it", s.stream)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), s.retry_s)
                continue
            self._next_delivery = 1
            return await js.pull_subscribe_bind(durable=s.consumer, stream=s.stream)
        return None

    async def _gap(self, js: JetStreamContext, info: StreamInfo) -> BusGap | None:
        """What the stream lost of this sink's messages, if anything (see the module docstring);
        moves the offset to just before the first message the stream still holds."""
        s, state = self.settings, info.state
        created = str(info.created)
        first = state.first_seq if state.messages else state.last_seq + 1
        recreated = (self.stream_created != created if self.stream_created
                     else self.last_seq > state.last_seq)  # an offset from before identities
        if recreated and self.last_seq:
            old_end, old_time = self.last_seq, self.last_time_ns
            self.last_seq, self.last_time_ns = first - 1, 0
            return BusGap(s.stream, s.consumer, old_end + 1, None, old_time, await self._time_of(js, first),
                          f"stream {s.stream} is not the one this consumer's offset belongs to (created "
                          f"{self.stream_created or 'before identities were kept'}, now {created}): messages of the "
                          f"old stream after sequence {old_end:,} were never written here; from the new stream, "
                          f"sequences before {first:,} are gone too")
        if self.last_seq + 1 >= first:
            return None
        seq_from, seq_to = self.last_seq + 1, first - 1
        time_from, time_to = self.last_time_ns, await self._time_of(js, first)
        self.last_seq, self.last_time_ns = seq_to, 0
        return BusGap(s.stream, s.consumer, seq_from, seq_to, time_from, time_to,
                      f"stream {s.stream} no longer holds sequences {seq_from:,}..{seq_to:,} "
                      f"({seq_to - seq_from + 1:,} messages, bus time {_iso(time_from)} to {_iso(time_to)}): they "
                      "expired before this consumer "
                      "wrote them; repair with `ticklake backfill` over that time from the raw captures")

    async def _time_of(self, js: JetStreamContext, seq: int) -> int:
        """Bus time (ns) of the message at `seq`, 0 if there is none."""
        try:
            message = await js.get_msg(self.settings.stream, seq)
        except (NotFoundError, nats.errors.Error):
            return 0
        return int(message.time.timestamp() * 1e9) if message.time else 0

    async def _record_bus_gap(self, gap: BusGap) -> None:
        """Journal the gap in the sink's store together with the moved offset."""
        raise NotImplementedError

    async def _fetch(self, subscription: JetStreamContext.PullSubscription, batch: int, timeout_s: float
                     ) -> list[Msg] | None:
        """Up to `batch` messages; none when nothing came in time or the bus is briefly away (a
        restarted server answers 503 until JetStream is back), and the caller just asks again.
        None when a delivery is missing: the caller drops what it holds and resubscribes."""
        try:
            messages = await subscription.fetch(batch, timeout=timeout_s)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except BUS_AWAY as exc:
            log.warning("bus unavailable (%s); retrying in %.1f s", type(exc).__name__, self.settings.retry_s)
            await asyncio.sleep(self.settings.retry_s)
            return []
        for message in messages:
            delivery = message.metadata.sequence.consumer
            if delivery != self._next_delivery:
                log.warning("delivery %d arrived where %d was due: resubscribing after stream sequence %d",
                            delivery, self._next_delivery, self.last_seq)
                self.resyncs += 1
                RESYNCS.labels(self.settings.consumer).inc()
                return None
            self._next_delivery += 1
        if messages:
            PENDING.labels(self.settings.consumer).set(messages[-1].metadata.num_pending)
            if not self.oldest_unacked_s:  # the earliest held message stays the oldest until all are acked
                self.oldest_unacked_s = bus_time_ns(messages[0]) / 1e9
                OLDEST_UNACKED.labels(self.settings.consumer).set(self.oldest_unacked_s)
        return messages

    def _observe_durable(self, messages: list[Msg]) -> None:
        """Each message's time from the bus to durable, now that its effect is (skipped redeliveries
        are left out: they were durable before)."""
        now_ns = time.time_ns()
        histogram = BUS_TO_DURABLE.labels(self.settings.consumer)
        for message in messages:
            histogram.observe((now_ns - bus_time_ns(message)) / 1e9)

    def _released(self) -> None:
        """The sink holds nothing unacknowledged any more (for the oldest-unacked gauge)."""
        self.oldest_unacked_s = 0.0
        OLDEST_UNACKED.labels(self.settings.consumer).set(0)

    async def _dead_letter(self, js: JetStreamContext, message: Msg, reason: str) -> None:
        """Publish an undecodable envelope to `<prefix>.<consumer>` with the reason in a header.

        The Nats-Msg-Id (consumer and stream sequence) lets the dead-letter stream drop the copy
        published again, within its duplicate window, when the poison message is delivered again
        after a restart.
        """
        self.dead_letters += 1
        DEAD_LETTERS.labels(self.settings.consumer).inc()
        subject = f"{self.settings.dead_letter_prefix}.{self.settings.consumer}"
        headers = {"Ticklake-Reason": reason[:1000], "Ticklake-Subject": message.subject,
                   "Nats-Msg-Id": f"{self.settings.consumer}-{message.metadata.sequence.stream}"}
        await js.publish(subject, message.data, headers=headers)
        log.warning("dead letter on %s: %s", subject, reason)

    def _count_skipped(self, messages: int) -> None:
        """Count redelivered messages whose effect was already durable (the sink acknowledges them)."""
        self.skipped += messages
        SKIPPED.labels(self.settings.consumer).inc(messages)

    def _count_duplicates(self, rows: int) -> None:
        self.duplicates += rows
        DUPLICATES.labels(self.settings.consumer).inc(rows)

    def _count_write_retry(self) -> None:
        self.write_retries += 1
        WRITE_RETRIES.labels(self.settings.consumer).inc()

    def _count_written(self, rows: int, files: int = 0) -> None:
        self.rows_written += rows
        self.files_written += files
        ROWS_WRITTEN.labels(self.settings.consumer).inc(rows)
        FILES_WRITTEN.labels(self.settings.consumer).inc(files)

    def _set_last_seq(self, seq: int, time_ns: int | None = None) -> None:
        self.last_seq = seq
        if time_ns is not None:
            self.last_time_ns = time_ns
        LAST_SEQ.labels(self.settings.consumer).set(seq)

    def summary(self) -> str:
        """One line for the end of a run."""
        return (f"consumer {self.settings.consumer}: {self.rows_written:,} rows written, {self.files_written:,} files, "
                f"{self.duplicates:,} duplicates dropped, {self.skipped:,} skipped, "
                f"{self.dead_letters:,} dead letters, {self.write_retries:,} write retries, last seq {self.last_seq:,}")


def _iso(time_ns: int) -> str:
    if not time_ns:
        return "unknown"
    return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).isoformat(timespec="seconds")


def bus_time_ns(message: Msg) -> int:
    """When JetStream stored the message (ns)."""
    return int(message.metadata.timestamp.timestamp() * 1e9)
