"""The Timescale sink: a durable JetStream pull consumer writing hypertables exactly once.

Per fetched batch: decode every envelope to Arrow, COPY (binary) each record type into its
hypertable, and set this consumer's row in ticklake_sink_offsets to the highest stream
sequence, all in one transaction; acknowledge only after the commit. A message redelivered
after a crash between commit and ack has a sequence at or below the committed one and is
skipped, so no ON CONFLICT is needed on the hot path. An envelope that cannot be decoded goes
to the dead-letter subject with the reason, is acknowledged, and the sink goes on.

Scale out by giving each sink its own consumer name and subject filter (one per venue, say):
each has its own offset row and its own writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass

import nats
import psycopg
import pyarrow as pa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError

from normalize import codec
from storage.pg import DatabaseUnavailable, connect
from storage.timescale_rows import copy_table

log = logging.getLogger(__name__)


@dataclass
class SinkConfig:
    nats_url: str
    pg_dsn: str
    consumer: str = "timescale"
    stream: str = "TICKS"
    filter_subject: str = "ticks.>"
    dead_letter_prefix: str = "deadletter"
    dead_letter_stream: str = "DEADLETTER"
    batch: int = 256
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    retry_s: float = 1.0


class TimescaleSink:
    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.rows_written = 0
        self.skipped = 0
        self.dead_letters = 0
        self.last_seq = 0

    async def run(self, stop: asyncio.Event) -> None:
        nc = await nats.connect(self.config.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        with contextlib.suppress(BadRequestError):  # already there
            await js.add_stream(StreamConfig(name=self.config.dead_letter_stream,
                                             subjects=[f"{self.config.dead_letter_prefix}.>"]))
        consumer = ConsumerConfig(durable_name=self.config.consumer, ack_policy=AckPolicy.EXPLICIT,
                                  deliver_policy=DeliverPolicy.ALL, ack_wait=self.config.ack_wait_s,
                                  filter_subject=self.config.filter_subject, max_ack_pending=self.config.batch * 8)
        subscription = await js.pull_subscribe(self.config.filter_subject, durable=self.config.consumer,
                                               stream=self.config.stream, config=consumer)
        conn: psycopg.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    messages = await subscription.fetch(self.config.batch, timeout=self.config.fetch_timeout_s)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                written = False
                while not stop.is_set():
                    try:
                        if conn is None or conn.closed:
                            conn = connect(self.config.pg_dsn)
                            self.last_seq = self._committed(conn)
                        await self._write(js, conn, messages)
                        written = True
                        break
                    except (DatabaseUnavailable, psycopg.OperationalError) as exc:
                        log.warning("Timescale unavailable, batch kept unacknowledged: %s", exc)
                        if conn is not None:
                            with contextlib.suppress(Exception):
                                conn.close()
                        conn = None
                        await asyncio.sleep(self.config.retry_s)
                if not written:  # stopping with a batch in hand: hand it back for redelivery now
                    for message in messages:
                        with contextlib.suppress(Exception):
                            await message.nak()
        finally:
            if conn is not None:
                conn.close()
            await nc.close()

    def _committed(self, conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT last_seq FROM ticklake_sink_offsets WHERE consumer = %s",
                           (self.config.consumer,)).fetchone()
        conn.commit()
        return int(row[0]) if row else 0

    async def _write(self, js: nats.js.JetStreamContext, conn: psycopg.Connection, messages: list) -> None:  # type: ignore[type-arg]
        tables: dict[str, list[pa.Table]] = defaultdict(list)
        highest = self.last_seq
        for message in messages:
            seq = message.metadata.sequence.stream
            if seq <= self.last_seq:
                self.skipped += 1
                continue
            highest = max(highest, seq)
            try:
                record_type, table = codec.decode_arrow(message.data)
            except codec.CodecError as reason:
                await self._dead_letter(js, message, str(reason))
                continue
            tables[record_type].append(table)
        if highest > self.last_seq:
            with conn.transaction(), conn.cursor() as cursor:
                for record_type, parts in tables.items():
                    self.rows_written += copy_table(cursor, record_type, pa.concat_tables(parts))
                cursor.execute(
                    """INSERT INTO ticklake_sink_offsets (consumer, stream, last_seq) VALUES (%s, %s, %s)
                       ON CONFLICT (consumer) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()""",
                    (self.config.consumer, self.config.stream, highest),
                )
            self.last_seq = highest
        for message in messages:
            await message.ack()

    async def _dead_letter(self, js: nats.js.JetStreamContext, message: object, reason: str) -> None:
        self.dead_letters += 1
        subject = f"{self.config.dead_letter_prefix}.{self.config.consumer}"
        headers = {"Ticklake-Reason": reason[:1000], "Ticklake-Subject": message.subject}  # type: ignore[attr-defined]
        await js.publish(subject, message.data, headers=headers)  # type: ignore[attr-defined]
        log.warning("dead letter on %s: %s", subject, reason)
