"""The Parquet sink: a durable JetStream pull consumer writing the lake exactly once.

Envelopes are decoded (codec.decode_part) and buffered per record type; a flush makes one Arrow
table of each type's buffer, splits it into (record type, venue, UTC day of ts_event) partitions
and writes one file per partition,
`<lake>/<type>/venue=<v>/date=<YYYY-MM-DD>/<consumer>-<first_seq>-<last_seq>.parquet`, where the
sequences are the lowest and highest stream sequence of the flush. A flush happens when the
buffer holds `flush_rows` rows or `max_buffered_messages` messages, when its oldest message is
`flush_age_s` old, and on stop.

Exactly once, in three steps per flush:
1. write the files (each atomically: .tmp, fsync, rename);
2. replace `<lake>/_manifests/<consumer>.json` atomically with the flush's last sequence;
3. acknowledge every message of the flush.
The consumer delivers in order from the manifest's sequence + 1 (storage/sink_consumer.py). A
crash before 2 leaves files whose first sequence is above the manifest's: the next start deletes
them and their messages are delivered and written again. A crash between 2 and 3 leaves the
manifest ahead of the acks: the next start begins after it, so nothing is written twice (and a
message coming back within a run because its ack was lost is at or below the manifest's
sequence, and skipped). The manifest lives outside the `<type>/` folders so globs over
`<type>/**/*.parquet` never see it.

Each venue event is written once: a flush keeps the first row of each record key
(storage.record_keys) and drops keys the previous flush wrote, so a redundant handler's copy,
which arrives seconds after the first, is counted as a duplicate and not written. Copies further
apart (a handler that spooled for minutes) land in a later file and are merged by the day seal.

Messages are acknowledged only after step 2, so everything buffered is unacknowledged: the
consumer's max_ack_pending is sized above the largest buffer (`max_buffered_messages` plus one
fetch) and the ack wait should exceed `flush_age_s` plus a write. One process per consumer name:
the manifest is the consumer's, and recovery deletes that consumer's unfinished files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pyarrow import fs

from normalize import codec
from normalize.arrow_schema import to_arrow
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import TMP_SUFFIX, filesystem_for, write_atomic, write_bytes_atomic
from storage.record_keys import first_per_key, keys_of, stored_key_columns, without_keys
from storage.sink_consumer import BusGap, ConsumerSettings, JetStreamSink, bus_time_ns

log = logging.getLogger(__name__)

MANIFEST_DIR = "_manifests"
SUFFIX = ".parquet"
T = TypeVar("T")


@dataclass(kw_only=True)
class ParquetSinkConfig(ConsumerSettings):
    lake: str
    """A local path or a URL such as s3://bucket/prefix (see storage.parquet_files.filesystem_for)."""
    consumer: str = "parquet"
    flush_rows: int = 500_000
    flush_age_s: float = 60.0
    max_buffered_messages: int = 50_000
    ack_wait_s: float = 180.0
    """Longer than the Timescale sink's: a message stays unacknowledged until its file is written."""


def file_name(consumer: str, first_seq: int, last_seq: int) -> str:
    return f"{consumer}-{first_seq:012d}-{last_seq:012d}{SUFFIX}"


def parse_file_name(name: str) -> tuple[str, int, int] | None:
    """(consumer, first_seq, last_seq) of a sink file name (or its .tmp), None for any other name."""
    name = name.removesuffix(TMP_SUFFIX)
    if not name.endswith(SUFFIX):
        return None
    parts = name.removesuffix(SUFFIX).rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


class ManifestBehind(RuntimeError):
    """The manifest is older than files whose messages were acknowledged (see ParquetSink._recover)."""


class ParquetSink(JetStreamSink):
    def __init__(self, config: ParquetSinkConfig) -> None:
        super().__init__(config)
        self.config = config
        self.filesystem, self.root = filesystem_for(config.lake)
        self.manifest_path = f"{self.root}/{MANIFEST_DIR}/{config.consumer}.json"
        self._parts: dict[str, list[codec.Part]] = defaultdict(list)
        """Per record type, the decoded envelopes buffered; Arrow arrays are built once per flush."""
        self._pending: dict[int, Msg] = {}
        """Buffered messages by stream sequence: what the next flush covers and then acknowledges."""
        self._buffered_rows = 0
        self._oldest: float | None = None
        self._recent_keys: dict[str, pl.DataFrame] = {}
        """Per record type, the keys the last flush wrote."""

    async def run(self, stop: asyncio.Event) -> None:
        max_ack_pending = self.config.max_buffered_messages + self.config.batch
        nc, js = await self._connect()
        try:
            acked = await self._acked_floor(js)  # read before the consumer is recreated
            last_seq = await self._lake_io(stop, "recovery", lambda: self._recover(acked))
            if last_seq is None:
                return
            self._set_last_seq(last_seq)
            subscription = await self._subscribe(js, stop, max_ack_pending)
            while subscription is not None and not stop.is_set():
                messages = await self._fetch(subscription, self.config.batch, self._fetch_timeout())
                if messages is None:  # a delivery went missing: drop the buffer, restart from the manifest
                    self._clear()
                    subscription = await self._subscribe(js, stop, max_ack_pending, subscription)
                    continue
                for message in messages:
                    await self._take(js, message)
                if self._due():
                    await self._flush(stop)
            await self._flush(stop)
        finally:
            await nc.close()

    def _recover(self, acked: int) -> int:
        """Delete what an unfinished flush left behind; returns the manifest's sequence.

        A file of this consumer whose first sequence is above the manifest's was written by a
        flush that never reached its manifest: deleted (its messages come again). Unless the
        server saw its messages acknowledged, which happens only after a manifest covering them:
        then the manifest was lost or rolled back, and starting would write those rows twice.
        """
        last_seq = self._read_manifest()
        selector = fs.FileSelector(self.root, recursive=True, allow_not_found=True)
        for info in self.filesystem.get_file_info(selector):
            parsed = parse_file_name(info.base_name) if info.type == fs.FileType.File else None
            if parsed is None or parsed[0] != self.config.consumer:
                continue
            _, first, last = parsed
            if info.base_name.endswith(TMP_SUFFIX) or first > last_seq:
                if last <= acked and not info.base_name.endswith(TMP_SUFFIX):
                    raise ManifestBehind(f"{self.manifest_path} is at sequence {last_seq} but {info.path} holds "
                                         f"acknowledged messages up to {last}: restore the manifest before "
                                         f"starting consumer {self.config.consumer}")
                log.warning("deleting %s, left by a flush that did not finish", info.path)
                self.filesystem.delete_file(info.path)
        return last_seq

    def _read_manifest(self) -> int:
        """The manifest's sequence; the keys its flush wrote become the recent keys (so a copy
        arriving just after a restart is still recognised)."""
        try:
            with self.filesystem.open_input_stream(self.manifest_path) as stream:
                manifest = json.loads(stream.read())
        except FileNotFoundError:
            return 0
        keys: dict[str, list[pl.DataFrame]] = defaultdict(list)
        for relative in manifest.get("files", []):
            record_type = relative.split("/", 1)[0]
            with contextlib.suppress(FileNotFoundError):  # sealed away since: the seal dedupes
                table = pq.read_table(f"{self.root}/{relative}", filesystem=self.filesystem,
                                      columns=stored_key_columns(record_type))
                frame = pl.from_arrow(table)
                assert isinstance(frame, pl.DataFrame)
                keys[record_type].append(keys_of(frame, record_type))
        self._recent_keys = {record_type: pl.concat(parts) for record_type, parts in keys.items()}
        self.stream_created = manifest.get("stream_created", "")
        self.last_time_ns = manifest.get("last_time_ns", 0)
        return int(manifest["last_seq"])

    def _fetch_timeout(self) -> float:
        """Wait for messages no longer than the buffer may still age."""
        if self._oldest is None:
            return self.config.fetch_timeout_s
        remaining = self.config.flush_age_s - (time.monotonic() - self._oldest)
        return min(self.config.fetch_timeout_s, max(0.05, remaining))

    async def _take(self, js: JetStreamContext, message: Msg) -> None:
        seq = message.metadata.sequence.stream
        if seq <= self.last_seq:
            self._count_skipped(1)
            await message.ack()
            if not self._pending:
                self._released()
            return
        if seq in self._pending:  # redelivered while buffered: it sat there longer than the ack wait
            self._pending[seq] = message  # acknowledge the latest delivery; the rows are buffered once
            return
        try:
            record_type, part = codec.decode_part(message.data)
        except codec.CodecError as reason:
            await self._dead_letter(js, message, str(reason))
            await message.ack()
            if not self._pending:
                self._released()
            return
        self._parts[record_type].append(part)
        self._pending[seq] = message
        self._buffered_rows += codec.part_rows(part)
        if self._oldest is None:
            self._oldest = time.monotonic()

    def _due(self) -> bool:
        if self._oldest is None:
            return False
        return (self._buffered_rows >= self.config.flush_rows
                or len(self._pending) >= self.config.max_buffered_messages
                or time.monotonic() - self._oldest >= self.config.flush_age_s)

    async def _flush(self, stop: asyncio.Event) -> None:
        """Files, then manifest, then acks (the module docstring says why in that order)."""
        if not self._pending:
            return
        first_seq, last_seq = min(self._pending), max(self._pending)
        self.last_time_ns = bus_time_ns(self._pending[last_seq])
        received = {record_type: codec.parts_to_arrow(record_type, parts) for record_type, parts in self._parts.items()}
        tables, keys = self._once_each(received)
        messages = list(self._pending.values())
        self._clear()
        written = await self._lake_io(stop, "flush", lambda: self._write(tables, first_seq, last_seq))
        if written is None:
            for message in messages:  # stopping: hand them back for redelivery now
                with contextlib.suppress(Exception):
                    await message.nak()
            return
        rows = sum(table.num_rows for table in tables.values())
        self._count_written(rows, len(written))
        self._count_duplicates(sum(table.num_rows for table in received.values()) - rows)
        self._recent_keys = keys
        self._set_last_seq(last_seq)
        self._observe_durable(messages)
        await self._acknowledge(messages)

    def _once_each(self, tables: dict[str, pa.Table]) -> tuple[dict[str, pa.Table], dict[str, pl.DataFrame]]:
        """Each venue event once: the first row of each key in the flush, less the keys the previous
        flush wrote (a redundant handler's copy arrives within seconds of the first); and the keys
        this flush writes. Copies further apart are merged by the day seal."""
        kept, keys = {}, {}
        for record_type, table in tables.items():
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            frame = first_per_key(frame, record_type)
            previous = self._recent_keys.get(record_type)
            if previous is not None:
                frame = without_keys(frame, record_type, previous)
            kept[record_type] = frame.to_arrow()
            keys[record_type] = keys_of(frame, record_type)
        return kept, keys

    async def _record_bus_gap(self, gap: BusGap) -> None:
        """The journal row as a file of its own (named by the gap's start: journaling the gap again
        replaces it), then the manifest with the moved offset."""
        record = gap.record()
        table = to_arrow([record])
        day = dt.datetime.fromtimestamp(record.ts_event / 1e9, dt.UTC).date()
        path = (f"{partition_path(self.root, 'feed_status', record.venue, day)}/"
                f"{self.config.consumer}-busgap-{gap.seq_from:012d}{SUFFIX}")

        def write() -> None:
            write_atomic(self.filesystem, path, table, "feed_status")
            self._write_manifest(self.last_seq, [path[len(self.root) + 1:]])

        await asyncio.to_thread(write)

    def _clear(self) -> None:
        self._parts.clear()
        self._pending.clear()
        self._buffered_rows = 0
        self._oldest = None

    def _write(self, tables: dict[str, pa.Table], first_seq: int, last_seq: int) -> list[str]:
        files = self._write_files(tables, first_seq, last_seq)
        self._write_manifest(last_seq, files)
        return files

    def _write_files(self, tables: dict[str, pa.Table], first_seq: int, last_seq: int) -> list[str]:
        """One file per (type, venue, day); returns their paths relative to the lake root."""
        name = file_name(self.config.consumer, first_seq, last_seq)
        metadata = {"ticklake.consumer": self.config.consumer, "ticklake.first_seq": str(first_seq),
                    "ticklake.last_seq": str(last_seq)}
        written = []
        for record_type, table in tables.items():
            for (venue, day), part in split_partitions(table).items():
                path = f"{partition_path(self.root, record_type, venue, day)}/{name}"
                write_atomic(self.filesystem, path, part, record_type, metadata)
                written.append(path[len(self.root) + 1:])
        return written

    def _write_manifest(self, last_seq: int, files: list[str]) -> None:
        """The flush's commit point: from here on its messages count as written."""
        manifest = {"consumer": self.config.consumer, "stream": self.config.stream, "last_seq": last_seq,
                    "stream_created": self.stream_created, "last_time_ns": self.last_time_ns,
                    "files": files, "written_at": dt.datetime.now(dt.UTC).isoformat()}
        write_bytes_atomic(self.filesystem, self.manifest_path, json.dumps(manifest, indent=1).encode())

    async def _acknowledge(self, messages: list[Msg]) -> None:
        for message in messages:
            await message.ack()
        if not self._pending:
            self._released()

    async def _lake_io(self, stop: asyncio.Event, what: str, call: Callable[[], T]) -> T | None:
        """Run blocking lake I/O in a thread (the bus connection stays serviced), retrying while
        the lake fails; None when stopped before it succeeded."""
        while True:
            try:
                return await asyncio.to_thread(call)
            except OSError as exc:
                log.warning("lake unavailable during %s, buffer kept unacknowledged: %s", what, exc)
                self._count_write_retry()
                if stop.is_set():
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.retry_s)
