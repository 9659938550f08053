"""Day seal: compact one closed lake partition into sorted, deduplicated files, exactly.

The Parquet sink leaves many small files per partition (one per flush), re-deliveries and
re-runs can leave the same rows twice, and `ticklake normalize` adds its own files. Sealing a
`<type>/venue=<v>/date=<d>/` partition merges every committed `*.parquet` in it into
`sealed-g<generation>-<n>.parquet` files of at most `max_file_rows` rows (row groups of
`row_group_rows`), sorted by (instrument, ts_event, ts_recv), one row per key
(storage.record_keys; the first copy in (instrument, ts_event, ts_recv, file, row) order is kept,
so a book message keeps its level order and its LAST row). Rows sharing a key must agree on every
venue value: if they do not, two events share a key and the seal fails rather than drop one.

Memory stays bounded: instruments are processed in groups of about `batch_rows` rows, and an
instrument with more is cut into ts_event ranges (every key includes the instrument, and all but the
small feed_status and book_top also ts_event, so deduplication per batch is exact).

The swap, designed so that a crash at any point leaves a lake without duplicates and loses nothing:
1. outputs are written as `.tmp` (invisible to `*.parquet` globs), fsynced, then read back and
   checked: row count == distinct keys of the inputs, and an order-free digest of the key set
   read from disk == the digest of the inputs' distinct keys;
2. the seal manifest is written with state `committing` (inputs, outputs, counts): the commit point;
3. inputs are renamed to `<name>.replaced` (hidden, still on disk), outputs renamed into place;
4. the manifest is rewritten with state `sealed`, then the hidden inputs are deleted.
A crash before 2 leaves the old files and some `.tmp` (deleted by the next run). After 2, the next
run (any seal of that partition) rolls forward from the manifest. Plain glob readers see either
the old files or the new ones, never both; during the sub-second step 3, or after a crash inside
it, they may see only part of the day until the roll-forward. Files that arrive while a seal runs
are not among its inputs and stay; the next seal (a new generation) merges them.

Sink files of a flush that never reached its sink manifest (first sequence above the consumer's
`last_seq`) are not inputs: the sink deletes them at start and writes their rows again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import itertools
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from normalize.arrow_schema import conform, schema_for
from normalize.records import RECORD_TYPES
from pipelines.lake_io import partition_venues
from storage.lake_layout import partition_path
from storage.parquet_files import COMPRESSION, TMP_SUFFIX, filesystem_for, fsync
from storage.parquet_sink import MANIFEST_DIR, parse_file_name
from storage.record_keys import first_per_key, key_collisions, key_names, keys_of, stored_key_columns
from storage.seal_manifest import (
    COMMITTING,
    SEALED,
    SealedFile,
    SealManifest,
    manifest_path,
    read_manifest,
    write_manifest,
)

SUFFIX = ".parquet"
HIDDEN_SUFFIX = ".replaced"
SEALED_PREFIX = "sealed-g"
ROW_GROUP_ROWS = 128 * 1024
MAX_FILE_ROWS = 8 * ROW_GROUP_ROWS
BATCH_ROWS = 4 * MAX_FILE_ROWS
ORDER = ["instrument", "ts_event", "ts_recv"]
_FILE, _ROW = "__seal_file", "__seal_row"
_SEED = 20_240_808
_TS = pa.timestamp("ns", tz="UTC")


class SealError(RuntimeError):
    """A seal that could not be completed safely; the partition is left as it was (or committing)."""


@dataclass(frozen=True)
class SealResult:
    record_type: str
    venue: str
    day: dt.date
    files_before: int
    rows_before: int
    files_after: int
    rows_after: int
    seconds: float
    generation: int
    skipped: bool
    """True when the partition was already sealed and nothing new had arrived."""
    batches: int = 0
    """Batches merged in memory (instrument groups or ts_event ranges of one instrument)."""

    @property
    def duplicates_removed(self) -> int:
        return self.rows_before - self.rows_after

    @property
    def rows_per_second(self) -> float:
        return self.rows_before / self.seconds if self.seconds > 0 else 0.0


def seal_day(lake_root: str, day: dt.date, record_types: Iterable[str] = RECORD_TYPES,
             today: dt.date | None = None) -> list[SealResult]:
    """Seal every venue's partition of `day` for each record type; refuses a day not yet closed."""
    today = today or dt.datetime.now(dt.UTC).date()
    if day >= today:
        raise SealError(f"{day} is not a closed UTC day yet (today is {today})")
    results = []
    for record_type in record_types:
        for venue in partition_venues(lake_root, record_type, day):
            result = seal_partition(lake_root, record_type, venue, day)
            if result is not None:
                results.append(result)
    return results


@dataclass(frozen=True)
class Rewrite:
    """A seal that also swaps rows (`ticklake backfill --replace`): the partition's current rows
    matching `drop` are left out, and the rows of `extra` (a file in the partition whose name no
    `*.parquet` glob sees) come in, in the same commit, so a reader sees the old rows or the new
    ones, never both, never neither (storage.seal_manifest.partition_files)."""

    drop: pl.Expr
    extra: str


def seal_partition(lake_root: str, record_type: str, venue: str, day: dt.date, *,
                   max_file_rows: int = MAX_FILE_ROWS, row_group_rows: int = ROW_GROUP_ROWS,
                   batch_rows: int = BATCH_ROWS, rewrite: Rewrite | None = None) -> SealResult | None:
    """Seal one partition (see the module docstring); None when it holds no files."""
    filesystem, base = filesystem_for(lake_root)
    with _partition_lock(filesystem, base, record_type, venue, day):
        return _seal_locked(filesystem, base, record_type, venue, day, max_file_rows, row_group_rows, batch_rows,
                            rewrite)


@contextlib.contextmanager
def _partition_lock(filesystem: fs.FileSystem, base: str, record_type: str, venue: str,
                    day: dt.date) -> Iterator[None]:
    """One seal of a partition at a time on a local lake (an advisory lock the OS releases if the
    process dies). Object stores have no such lock: run one seal per partition there."""
    if not isinstance(filesystem, fs.LocalFileSystem):
        yield
        return
    path = Path(manifest_path(base, record_type, venue, day) + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _seal_locked(filesystem: fs.FileSystem, base: str, record_type: str, venue: str, day: dt.date,
                 max_file_rows: int, row_group_rows: int, batch_rows: int,
                 rewrite: Rewrite | None = None) -> SealResult | None:
    started = time.perf_counter()
    folder = partition_path(base, record_type, venue, day)
    manifest = read_manifest(filesystem, base, record_type, venue, day)
    if manifest is not None:
        manifest = _finish(filesystem, base, folder, manifest)
    _delete_stale_tmp(filesystem, folder)
    inputs = _committed_inputs(filesystem, base, folder)
    current = {f"{folder}/{name}" for name in inputs}
    if rewrite is not None:
        inputs.append(rewrite.extra)
    if not inputs:
        return None
    if rewrite is None and manifest is not None and sorted(inputs) == sorted(f.name for f in manifest.outputs):
        return SealResult(record_type, venue, day, len(inputs), manifest.rows, len(inputs), manifest.rows,
                          time.perf_counter() - started, manifest.generation, skipped=True)
    generation = manifest.generation + 1 if manifest is not None else 1
    paths = [f"{folder}/{name}" for name in inputs]
    input_rows = [_footer_rows(filesystem, path) for path in paths]
    writer = _SealWriter(filesystem, folder, record_type, generation, max_file_rows, row_group_rows)
    expected = _Digest()
    batches = _batches(filesystem, paths, batch_rows)
    try:
        for batch in batches:
            merged, distinct = _merge(filesystem, paths, batch, record_type, folder,
                                      (rewrite.drop, current) if rewrite is not None else None)
            if merged.height != distinct.len():
                raise SealError(f"{folder}: {merged.height} rows kept for {distinct.len()} distinct keys")
            expected.add(distinct)
            writer.write(merged)
        outputs = writer.close()
        _verify(filesystem, folder, outputs, record_type, expected)
    except BaseException:
        writer.discard()
        raise
    committing = SealManifest(record_type, venue, day.isoformat(), COMMITTING, generation, key_names(record_type),
                              [SealedFile(name, rows) for name, rows in zip(inputs, input_rows, strict=True)],
                              outputs, sum(input_rows), expected.count)
    write_manifest(filesystem, base, committing)
    _finish(filesystem, base, folder, committing)
    return SealResult(record_type, venue, day, len(inputs), sum(input_rows), len(outputs), expected.count,
                      time.perf_counter() - started, generation, skipped=False, batches=len(batches))


def _finish(filesystem: fs.FileSystem, base: str, folder: str, manifest: SealManifest) -> SealManifest:
    """Roll a committing seal forward (idempotent), and clear what a sealed one left hidden."""
    if manifest.state == COMMITTING:
        for entry in manifest.inputs:
            _move_if_present(filesystem, f"{folder}/{entry.name}", f"{folder}/{entry.name}{HIDDEN_SUFFIX}")
        for entry in manifest.outputs:
            _move_if_present(filesystem, f"{folder}/{entry.name}{TMP_SUFFIX}", f"{folder}/{entry.name}")
            if filesystem.get_file_info(f"{folder}/{entry.name}").type != fs.FileType.File:
                raise SealError(f"cannot finish the seal of {folder}: {entry.name} is missing; the replaced "
                                f"inputs are kept as *{HIDDEN_SUFFIX} (rename them back to restore the day)")
        if isinstance(filesystem, fs.LocalFileSystem):
            fsync(folder)
        manifest = dataclasses.replace(manifest, state=SEALED)
        write_manifest(filesystem, base, manifest)
    for entry in manifest.inputs:
        hidden = f"{folder}/{entry.name}{HIDDEN_SUFFIX}"
        if filesystem.get_file_info(hidden).type == fs.FileType.File:
            filesystem.delete_file(hidden)
    return manifest


def _delete_stale_tmp(filesystem: fs.FileSystem, folder: str) -> None:
    """Outputs of a seal that died before its manifest: never committed, so never needed."""
    for info in filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True)):
        if info.base_name.startswith(SEALED_PREFIX) and info.base_name.endswith(TMP_SUFFIX):
            filesystem.delete_file(info.path)


def _committed_inputs(filesystem: fs.FileSystem, base: str, folder: str) -> list[str]:
    """The partition's `*.parquet` names, minus sink files that their sink has not committed yet."""
    sink_offsets: dict[str, int | None] = {}
    names = []
    for info in filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True)):
        if info.type != fs.FileType.File or not info.base_name.endswith(SUFFIX):
            continue
        parsed = parse_file_name(info.base_name)
        if parsed is not None:
            consumer, first_seq, _ = parsed
            if consumer not in sink_offsets:
                sink_offsets[consumer] = _sink_last_seq(filesystem, base, consumer)
            last_seq = sink_offsets[consumer]
            if last_seq is not None and first_seq > last_seq:
                continue
        names.append(info.base_name)
    return sorted(names)


def _sink_last_seq(filesystem: fs.FileSystem, base: str, consumer: str) -> int | None:
    """The Parquet sink manifest's last sequence; None when no sink of that name wrote this lake."""
    try:
        with filesystem.open_input_stream(f"{base}/{MANIFEST_DIR}/{consumer}.json") as stream:
            return int(json.loads(stream.read())["last_seq"])
    except FileNotFoundError:
        return None


def _footer_rows(filesystem: fs.FileSystem, path: str) -> int:
    with filesystem.open_input_file(path) as handle:
        return int(pq.read_metadata(handle).num_rows)


@dataclass(frozen=True)
class _Batch:
    """Rows merged in memory at once: whole instruments, or one instrument's ts_event range."""

    instruments: list[str]
    ts_from: int | None = None
    """Inclusive lower bound of ts_event (ns), for a slice of one instrument."""
    ts_to: int | None = None
    """Exclusive upper bound of ts_event (ns); None: no bound."""

    def filters(self) -> list[tuple[str, str, object]]:
        bounds: list[tuple[str, str, object]] = [("instrument", "in", self.instruments)]
        if self.ts_from is not None:
            bounds.append(("ts_event", ">=", pa.scalar(self.ts_from, _TS)))
        if self.ts_to is not None:
            bounds.append(("ts_event", "<", pa.scalar(self.ts_to, _TS)))
        return bounds


def _batches(filesystem: fs.FileSystem, paths: list[str], batch_rows: int) -> list[_Batch]:
    """Instruments in sorted order, grouped so each batch holds about `batch_rows` input rows.

    An instrument with more rows is cut into ts_event ranges of about `batch_rows` (copies of a record
    share its ts_event when the key includes it, so they meet in one range; the order (instrument,
    ts_event) is kept across ranges). Keys without ts_event (feed_status, book_top) keep whole
    instruments: those types are small."""
    counts: dict[str, int] = {}
    for path in paths:
        column = pq.read_table(path, columns=["instrument"], filesystem=filesystem).column("instrument")
        for value, count in pl.Series(column).value_counts().iter_rows():
            counts[value] = counts.get(value, 0) + count
    batches: list[_Batch] = []
    rows = 0
    for instrument in sorted(counts):
        if counts[instrument] > batch_rows:  # every key holds ts_event: ranges of it split exactly
            batches.extend(_time_slices(filesystem, paths, instrument, counts[instrument], batch_rows))
            rows = batch_rows  # nothing joins a slice
            continue
        if not batches or rows + counts[instrument] > batch_rows:
            batches.append(_Batch([]))
            rows = 0
        batches[-1].instruments.append(instrument)
        rows += counts[instrument]
    return batches


def _time_slices(filesystem: fs.FileSystem, paths: list[str], instrument: str, count: int,
                 batch_rows: int) -> list[_Batch]:
    """One instrument cut at the ts_event values that split its rows into about equal ranges."""
    stamps = pl.concat([pl.Series(pq.read_table(path, columns=["ts_event"], filesystem=filesystem,
                                                filters=[("instrument", "=", instrument)]).column("ts_event"))
                        for path in paths]).dt.epoch("ns").sort()
    pieces = -(-count // batch_rows)
    cuts = sorted({int(stamps[len(stamps) * i // pieces]) for i in range(1, pieces)})
    bounds = [None, *cuts, None]
    return [_Batch([instrument], lo, hi) for lo, hi in itertools.pairwise(bounds)]


def _merge(filesystem: fs.FileSystem, paths: list[str], batch: _Batch, record_type: str, folder: str,
           drop: tuple[pl.Expr, set[str]] | None = None) -> tuple[pl.DataFrame, pl.Series]:
    """The batch's rows from every file, sorted, first copy of each key kept; and the distinct key
    hashes of the input rows (what the written files must hold). Rows that share a key but not
    the venue's values are two events under one key: merging them would lose one, so the seal
    stops (storage.record_keys.key_collisions)."""
    frames = []
    for index, path in enumerate(paths):
        table = pq.read_table(path, filesystem=filesystem, filters=batch.filters())
        frame = pl.from_arrow(conform(table, record_type))
        assert isinstance(frame, pl.DataFrame)
        if drop is not None and path in drop[1]:
            frame = frame.filter(~drop[0])
        frames.append(frame.with_columns(pl.lit(index, pl.Int32).alias(_FILE)).with_row_index(_ROW))
    rows = pl.concat(frames).sort([*ORDER, _FILE, _ROW], maintain_order=True)
    collisions = key_collisions(rows.drop(_FILE, _ROW), record_type)
    if not collisions.is_empty():
        raise SealError(f"{folder}: {collisions.select(key_names(record_type)).n_unique()} keys are shared by rows "
                        f"that differ in venue values (distinct events under one key), e.g. "
                        f"{collisions.head(2).to_dicts()}")
    merged = first_per_key(rows, record_type).drop(_FILE, _ROW)
    return merged, key_hashes(keys_of(rows, record_type)).unique()


def key_hashes(keys: pl.DataFrame) -> pl.Series:
    return keys.hash_rows(seed=_SEED)


class _Digest:
    """Count and order-free sum of distinct 64-bit key hashes: equal key sets give equal digests, and
    a written duplicate or a missing key changes the count or the sums."""

    def __init__(self) -> None:
        self.count = 0
        self.high = 0
        self.low = 0

    def add(self, hashes: pl.Series) -> None:
        self.count += hashes.len()
        self.high += int((hashes // 2**32).sum())
        self.low += int((hashes % 2**32).sum())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Digest) and (self.count, self.high, self.low) == (other.count, other.high,
                                                                                      other.low)

    __hash__ = None  # type: ignore[assignment]


def _verify(filesystem: fs.FileSystem, folder: str, outputs: list[SealedFile], record_type: str,
            expected: _Digest) -> None:
    """Read the written keys back from disk: as many rows as distinct input keys, the same key set."""
    found = _Digest()
    for entry in outputs:
        path = f"{folder}/{entry.name}{TMP_SUFFIX}"
        with filesystem.open_input_file(path) as handle:
            keys = pl.from_arrow(pq.read_table(handle, columns=stored_key_columns(record_type)))
        assert isinstance(keys, pl.DataFrame)
        if keys.height != entry.rows:
            raise SealError(f"{path} holds {keys.height} rows, {entry.rows} were written")
        found.add(key_hashes(keys_of(keys, record_type)))
    if found != expected:
        raise SealError(f"seal of {folder} does not match its inputs: {found.count} rows written for "
                        f"{expected.count} distinct keys, or a different key set")


class _SealWriter:
    """Writes sorted batches into `.tmp` files of at most `max_file_rows`, in full row groups."""

    def __init__(self, filesystem: fs.FileSystem, folder: str, record_type: str, generation: int,
                 max_file_rows: int, row_group_rows: int) -> None:
        self.filesystem = filesystem
        self.folder = folder
        self.schema = schema_for(record_type)
        self.generation = generation
        self.max_file_rows = max_file_rows
        self.row_group_rows = row_group_rows
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.outputs: list[SealedFile] = []
        self._stream: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        self.pending.append(frame.to_arrow().cast(self.schema))
        self.pending_rows += frame.height
        while self.pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def close(self) -> list[SealedFile]:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self._close_file()
        return self.outputs

    def discard(self) -> None:
        """Delete every `.tmp` this writer made (a failed seal leaves the partition as it was)."""
        self._close_file()
        for entry in self.outputs:
            path = self._path(entry.name)
            if self.filesystem.get_file_info(path).type == fs.FileType.File:
                self.filesystem.delete_file(path)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self.pending)
        head, rest = table.slice(0, rows), table.slice(rows)
        self.pending, self.pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        while head.num_rows:
            if self._writer is None or self._file_rows >= self.max_file_rows:
                self._open_file()
            assert self._writer is not None
            take = min(head.num_rows, self.max_file_rows - self._file_rows)
            self._writer.write_table(head.slice(0, take), row_group_size=self.row_group_rows)
            self._file_rows += take
            self.outputs[-1] = SealedFile(self.outputs[-1].name, self._file_rows)
            head = head.slice(take)

    def _open_file(self) -> None:
        self._close_file()
        name = f"{SEALED_PREFIX}{self.generation:04d}-{len(self.outputs):05d}{SUFFIX}"
        self.filesystem.create_dir(self.folder, recursive=True)
        self._stream = self.filesystem.open_output_stream(self._path(name))
        self._writer = pq.ParquetWriter(self._stream, self.schema, compression=COMPRESSION)
        self._file_rows = 0
        self.outputs.append(SealedFile(name, 0))

    def _close_file(self) -> None:
        if self._writer is not None and self._stream is not None:
            self._writer.close()
            self._stream.close()
            if isinstance(self.filesystem, fs.LocalFileSystem):
                fsync(self._path(self.outputs[-1].name))
        self._writer, self._stream = None, None

    def _path(self, name: str) -> str:
        return f"{self.folder}/{name}{TMP_SUFFIX}"


def _move_if_present(filesystem: fs.FileSystem, source: str, target: str) -> None:
    if filesystem.get_file_info(source).type == fs.FileType.File:
        filesystem.move(source, target)
