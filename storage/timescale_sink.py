"""The Timescale sink: a durable JetStream pull consumer writing hypertables exactly once.

Per fetched batch: decode every envelope to row tuples, COPY (binary) each record type into its
hypertable, set this consumer's row in ticklake_sink_offsets to the highest stream sequence (and
note the span of any trades stored late, for the live bars: storage/late_trades.py), all in one
transaction; acknowledge only after the commit. The consumer delivers in
order from that committed offset (storage/sink_consumer.py), so a batch committed just before a
crash is not written again, and a message coming back because its ack was lost is at or below
the offset and skipped. An envelope that cannot be decoded goes to the dead-letter subject with
the reason, is acknowledged, and the sink goes on.

The same venue event can also arrive twice as different messages: from a redundant handler on
another host, or from a backfill. Every table has a unique index on the record's key
(storage.ddl.key_index_ddl), so a plain COPY holding a copy fails: the batch is then written
again with only its new keys (storage.timescale_rows.insert_new_rows), and so are the batches of
the next `checked_hold_s`, as more copies are then to be expected. The duplicates are counted
(`ticklake_sink_duplicates`), never written.

Scale out by giving each sink its own consumer name and subject filter (one per venue, say):
each has its own offset row and its own writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

import msgspec
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from normalize import codec
from storage.late_trades import late_span, merge
from storage.pg import DatabaseUnavailable, connect
from storage.sink_consumer import BusGap, ConsumerSettings, JetStreamSink, bus_time_ns
from storage.timescale_rows import copy_rows, insert_new_rows

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SinkConfig(ConsumerSettings):
    pg_dsn: str
    consumer: str = "timescale"
    checked_hold_s: float = 60.0
    """After a batch met a row already stored, this long of writing only new keys (duplicates are
    then expected: a redundant handler), before plain COPY is tried again."""


class TimescaleSink(JetStreamSink):
    def __init__(self, config: SinkConfig) -> None:
        super().__init__(config)
        self.config = config
        self._checked_until = 0.0
        self._conn: psycopg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        nc, js = await self._connect()
        conn: psycopg.Connection | None = None
        try:
            conn = await self._database(conn, stop)  # the committed offset says where to start
            subscription = None if conn is None else await self._subscribe(js, stop, self.config.batch * 8)
            while subscription is not None and not stop.is_set():
                messages = await self._fetch(subscription, self.config.batch, self.config.fetch_timeout_s)
                if messages is None:  # a delivery went missing: restart from what is committed
                    subscription = await self._subscribe(js, stop, self.config.batch * 8, subscription)
                    continue
                written = False
                while messages:  # a batch in hand is written even when `stop` came while it was fetched
                    conn = await self._database(conn, stop)
                    if conn is None:
                        break
                    try:
                        await self._write(js, conn, messages)
                        written = True
                        break
                    except (DatabaseUnavailable, psycopg.OperationalError) as exc:
                        self._lost(conn, exc)
                        conn = None
                        if stop.is_set():
                            break
                        await asyncio.sleep(self.config.retry_s)
                if messages and not written:  # stopped with the database away: hand it back for redelivery now
                    for message in messages:
                        with contextlib.suppress(Exception):
                            await message.nak()
        finally:
            if conn is not None:
                conn.close()
            await nc.close()

    async def _database(self, conn: psycopg.Connection | None, stop: asyncio.Event) -> psycopg.Connection | None:
        """The open connection, or a new one, retrying while PostgreSQL is away; None if stopped
        without one.

        A new connection re-reads the committed offset: a commit whose answer was lost with the
        old connection may have happened.
        """
        if conn is not None and not conn.closed:
            return conn
        while not stop.is_set():
            try:
                conn = self._conn = connect(self.config.pg_dsn)
                self._set_last_seq(self._committed(conn))
                return conn
            except (DatabaseUnavailable, psycopg.OperationalError) as exc:
                self._lost(conn, exc)
                conn = None
                await asyncio.sleep(self.config.retry_s)
        return None

    def _lost(self, conn: psycopg.Connection | None, exc: Exception) -> None:
        log.warning("Timescale unavailable (messages stay unacknowledged in JetStream): %s", exc)
        self._count_write_retry()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _committed(self, conn: psycopg.Connection) -> int:
        """The committed offset; also loads the stream identity and bus time kept with it."""
        row = conn.execute("SELECT last_seq, stream_created, last_time_ns FROM ticklake_sink_offsets "
                           "WHERE consumer = %s", (self.config.consumer,)).fetchone()
        conn.commit()
        if row is None:
            return 0
        self.stream_created, self.last_time_ns = row[1] or "", row[2] or 0
        return int(row[0])

    def _save_offset(self, cursor: psycopg.Cursor, last_seq: int, last_time_ns: int) -> None:
        cursor.execute(
            """INSERT INTO ticklake_sink_offsets (consumer, stream, last_seq, stream_created, last_time_ns)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (consumer) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now(),
                   stream_created = EXCLUDED.stream_created, last_time_ns = EXCLUDED.last_time_ns""",
            (self.config.consumer, self.config.stream, last_seq, self.stream_created, last_time_ns),
        )

    async def _record_bus_gap(self, gap: BusGap) -> None:
        """The journal row and the moved offset, in one transaction."""
        conn = self._conn
        if conn is None or conn.closed:
            raise DatabaseUnavailable("the database went away while journaling a bus gap")
        with conn.transaction(), conn.cursor() as cursor:
            insert_new_rows(cursor, "feed_status", [msgspec.structs.astuple(gap.record())])
            self._save_offset(cursor, self.last_seq, self.last_time_ns)

    def _commit(self, conn: psycopg.Connection, tables: dict[str, list[tuple[object, ...]]], highest: int,
                last_time_ns: int, checked: bool, late: tuple[int, int] | None) -> int:
        """One transaction: the rows (plain COPY, or only those whose key is new), the offset and the
        span of the late trades (storage/late_trades.py); returns the rows written."""
        written = 0
        with conn.transaction(), conn.cursor() as cursor:
            for record_type, table_rows in tables.items():
                if checked:
                    written += insert_new_rows(cursor, record_type, table_rows)
                else:
                    copy_rows(cursor, record_type, table_rows)
                    written += len(table_rows)
            self._save_offset(cursor, highest, last_time_ns)
            if late is not None:
                cursor.execute("INSERT INTO ticklake_late_trades (consumer, from_ns, to_ns) VALUES (%s, %s, %s)",
                               (self.config.consumer, *late))
        return written

    async def _write(self, js: JetStreamContext, conn: psycopg.Connection, messages: list[Msg]) -> None:
        """COPY a batch and advance the offset in one transaction; acknowledge after the commit.

        Nothing is acknowledged or counted before the commit, so a batch retried after a
        database failure is handled exactly as the first time.
        """
        tables: dict[str, list[tuple[object, ...]]] = defaultdict(list)
        late: tuple[int, int] | None = None
        fresh = [m for m in messages if m.metadata.sequence.stream > self.last_seq]
        for message in fresh:
            try:
                record_type, rows_of = codec.decode_rows(message.data)
            except codec.CodecError as reason:
                await self._dead_letter(js, message, str(reason))
                continue
            tables[record_type] += rows_of
            if record_type == "trade":
                late = merge((late, late_span(rows_of, bus_time_ns(message))))
        if fresh:
            last = max(fresh, key=lambda m: m.metadata.sequence.stream)
            highest, last_time_ns = last.metadata.sequence.stream, bus_time_ns(last)
            rows = sum(len(table_rows) for table_rows in tables.values())
            checked = time.monotonic() < self._checked_until
            try:
                written = self._commit(conn, tables, highest, last_time_ns, checked, late)
            except psycopg.errors.UniqueViolation:
                # a row already stored: a redundant handler's copy, most likely, and more will come
                self._checked_until = time.monotonic() + self.config.checked_hold_s
                written = self._commit(conn, tables, highest, last_time_ns, True, late)
            self._count_written(written)
            self._count_duplicates(rows - written)
            self._set_last_seq(highest, last_time_ns)
            self._observe_durable(fresh)
        self._count_skipped(len(messages) - len(fresh))
        for message in messages:
            await message.ack()
        self._released()
