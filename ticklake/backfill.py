"""`ticklake backfill`: repair both stores from the raw captures, the source of truth.

The captures of a window (by receive time) are normalized again with the current normalizers, one
stream per capture writer (a feed's own files, in order), starting at the window's UTC day so books
sync from the REST snapshots recorded before the window; only records received inside it are kept.
Loading is idempotent in both stores: TimescaleDB takes only keys it does not hold (its unique key
index), and each lake partition only rows whose key none of its files holds (a new
`backfill-<id>.parquet`), so a second run adds nothing and a run over a partly present window adds
what is missing. This repairs a bus gap (messages that expired before a sink wrote them), a day a
sink lost, and journals a `repaired` row for every bus_gap the window covers.

`--replace` re-normalizes after a normalizer fix: in TimescaleDB one transaction deletes the window's
rows of the venues (market data; the journal is kept) and inserts the new ones; in the lake each
affected partition is rewritten in one seal commit (pipelines.seal.Rewrite), so a reader sees the
old version or the new, never both or neither. It rewrites closed days only: today's partition is
still being written by the sink. Every run leaves an audit row (`ticklake_backfills`, and
`_manifests/backfills/<id>.json` in the lake) naming the window, the mode, the rows per table and
each normalizer's version and source digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest.capture_log import SUFFIX, read_capture_log
from ingest.normalizing import normalize_frame
from ingest.venues.registry import NORMALIZERS
from normalize.arrow_schema import plain_rows, schema_for, to_arrow
from normalize.emitted import Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import RECORD_TYPES, FeedStatus, Record
from pipelines.seal import Rewrite, seal_partition
from storage.lake_layout import NS_PER_DAY, partition_path, split_partitions
from storage.lake_write import group_by_type
from storage.parquet_files import days_under, filesystem_for, write_atomic, write_bytes_atomic
from storage.record_keys import keys_of, once_per_key, stored_key_columns, without_keys
from storage.seal_manifest import partition_files
from storage.sink_consumer import BUS_VENUE
from storage.timescale_rows import insert_new_rows

KEPT_ON_REPLACE = ("feed_status", "book_top")
"""Not replaced: the journal of what happened live, and the samples of the live books."""
AUDIT_DIR = "_manifests/backfills"


class BackfillError(ValueError):
    """A window or option the user must fix."""


@dataclass
class BackfillResult:
    id: str
    start_ns: int
    end_ns: int
    venues: list[str]
    mode: str
    captures: list[str]
    normalizers: dict[str, str]
    records: dict[str, int] = field(default_factory=dict)
    """Rows re-normalized from the captures, per record type."""
    timescale_added: dict[str, int] = field(default_factory=dict)
    timescale_deleted: dict[str, int] = field(default_factory=dict)
    lake_added: dict[str, int] = field(default_factory=dict)
    repaired: int = 0
    dead_letters: int = 0


def normalizer_version(venue: str) -> str:
    """The ticklake version and a digest of the normalizer's source: which code produced a row."""
    from ticklake import __version__

    source = inspect.getsource(inspect.getmodule(NORMALIZERS[venue]))  # type: ignore[arg-type]
    return f"{__version__}+{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def _hour_of(path: Path) -> dt.datetime:
    return dt.datetime.strptime(path.name.removesuffix(SUFFIX).rsplit("-", 1)[1], "%Y%m%dT%H").replace(tzinfo=dt.UTC)


def capture_streams(capture_root: Path, venues: Sequence[str], start_ns: int, end_ns: int
                    ) -> dict[tuple[str, str], list[Path]]:
    """(venue, writer) -> its hourly files from the UTC day of `start_ns` up to `end_ns`, in order."""
    first_day = dt.datetime.fromtimestamp(start_ns // NS_PER_DAY * NS_PER_DAY / 1e9, dt.UTC)
    end = dt.datetime.fromtimestamp(end_ns / 1e9, dt.UTC)
    streams: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for venue in venues:
        for path in sorted((capture_root / venue).glob(f"*/*{SUFFIX}")):
            hour = _hour_of(path)
            if first_day <= hour < end:
                writer = path.name.removesuffix(SUFFIX).rsplit("-", 1)[0]
                streams[(venue, writer)].append(path)
    return dict(streams)


def renormalize(venue: str, files: Iterable[Path], start_ns: int, end_ns: int) -> Emitted:
    """The records of frames received in [start_ns, end_ns), by the current normalizer, fed every frame
    of the files in order (journal rows name the frames' own connections, as live)."""
    normalizer = NORMALIZERS[venue]()
    kept = Emitted()
    for path in files:
        for frame in read_capture_log(path):
            out = Emitted()
            normalizer.connection_id = frame.connection_id or normalizer.connection_id
            normalize_frame(normalizer, frame, out)
            if start_ns <= frame.ts_recv < end_ns:
                kept.records.extend(out.records)
                kept.dead_letters.extend(out.dead_letters)
    return kept


def _tables(records: list[Record]) -> dict[str, pa.Table]:
    return {record_type: once_per_key(to_arrow(group), record_type)
            for record_type, group in group_by_type(records).items()}


def _load_timescale(dsn: str, tables: dict[str, pa.Table], result: BackfillResult, replace: bool) -> None:
    """One transaction: (replace: the window's rows of the venues, less the journal) then the rows
    whose key is new, then the audit row."""
    with psycopg.connect(dsn) as conn, conn.transaction(), conn.cursor() as cursor:
        if replace:
            for record_type in RECORD_TYPES:
                if record_type in KEPT_ON_REPLACE:
                    continue
                cursor.execute(sql.SQL("DELETE FROM {} WHERE venue = ANY(%s) AND ts_recv >= %s AND ts_recv < %s")
                               .format(sql.Identifier(record_type)), (result.venues, result.start_ns, result.end_ns))
                result.timescale_deleted[record_type] = cursor.rowcount
        for record_type, table in tables.items():
            result.timescale_added[record_type] = insert_new_rows(cursor, record_type, list(plain_rows(table)))
        cursor.execute(
            "INSERT INTO ticklake_backfills (id, started_at, start_ns, end_ns, venues, mode, normalizers, rows, "
            "captures) VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s)",
            (result.id, result.start_ns, result.end_ns, result.venues, result.mode, Jsonb(result.normalizers),
             Jsonb({"records": result.records, "added": result.timescale_added, "deleted": result.timescale_deleted}),
             Jsonb(result.captures)))


def _partition_keys(filesystem: object, base: str, record_type: str, venue: str, day: dt.date) -> pl.DataFrame:
    frames = []
    for path in partition_files(filesystem, base, record_type, venue, day):  # type: ignore[arg-type]
        table = pq.read_table(path, filesystem=filesystem, columns=stored_key_columns(record_type))
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        frames.append(keys_of(frame, record_type))
    return pl.concat(frames) if frames else pl.DataFrame()


def _load_lake(lake_root: str, tables: dict[str, pa.Table], result: BackfillResult, replace: bool,
               today: dt.date) -> None:
    filesystem, base = filesystem_for(lake_root)
    name = f"backfill-{result.id}"
    touched: dict[str, set[tuple[str, dt.date]]] = defaultdict(set)
    parts: dict[tuple[str, str, dt.date], pa.Table] = {}
    for record_type, table in tables.items():
        for (venue, day), part in split_partitions(table).items():
            parts[(record_type, venue, day)] = part
            touched[record_type].add((venue, day))
    if replace:  # partitions that may hold rows received in the window, new rows or not
        first = dt.datetime.fromtimestamp(result.start_ns / 1e9, dt.UTC).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(result.end_ns / 1e9, dt.UTC).date()
        for record_type in RECORD_TYPES:
            if record_type in KEPT_ON_REPLACE:
                continue
            for venue in result.venues:
                day = first
                while day <= last:
                    if partition_files(filesystem, base, record_type, venue, day):
                        touched[record_type].add((venue, day))
                    day += dt.timedelta(days=1)
        open_days = sorted({day for days in touched.values() for _, day in days if day >= today})
        if open_days:
            raise BackfillError(f"--replace rewrites closed days only, and the window reaches {open_days[0]}, which "
                                "the sink is still writing: leave out --replace to add the missing rows")
    for record_type, partitions in sorted(touched.items()):
        for venue, day in sorted(partitions):
            part = parts.get((record_type, venue, day), schema_for(record_type).empty_table())
            folder = partition_path(base, record_type, venue, day)
            if replace and record_type not in KEPT_ON_REPLACE:
                pending = f"{name}.parquet.pending"
                write_atomic(filesystem, f"{folder}/{pending}", part, record_type)
                window = (pl.col("ts_recv").dt.epoch("ns") >= result.start_ns) & (
                    pl.col("ts_recv").dt.epoch("ns") < result.end_ns)
                seal_partition(lake_root, record_type, venue, day, rewrite=Rewrite(window, pending))
                added = part.num_rows
            else:
                frame = pl.from_arrow(part)
                assert isinstance(frame, pl.DataFrame)
                new = without_keys(frame, record_type, _partition_keys(filesystem, base, record_type, venue, day))
                added = new.height
                if added:
                    write_atomic(filesystem, f"{folder}/{name}.parquet", new.to_arrow(), record_type)
            result.lake_added[record_type] = result.lake_added.get(record_type, 0) + added
    audit = {"id": result.id, "start_ns": result.start_ns, "end_ns": result.end_ns, "venues": result.venues,
             "mode": result.mode, "normalizers": result.normalizers, "captures": result.captures,
             "records": result.records, "added": result.lake_added,
             "finished_at": dt.datetime.now(dt.UTC).isoformat()}
    write_bytes_atomic(filesystem, f"{base}/{AUDIT_DIR}/{result.id}.json", json.dumps(audit, indent=1).encode())


def _bus_gaps(dsn: str, lake_root: str, start_ns: int, end_ns: int) -> list[FeedStatus]:
    """bus_gap rows of either store inside the window: the gap starts after the window does, and
    its first message after the gap (ts_exch) comes before the window ends."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT venue, symbol, instrument, ts_event, ts_recv, ts_exch, exch_seq, flags, event, connection_id, "
            "detail, seq_from, seq_to FROM feed_status WHERE venue = %s AND event = 'bus_gap' AND ts_event >= %s "
            "AND coalesce(ts_exch, ts_event) <= %s", (BUS_VENUE, start_ns, end_ns)).fetchall()
    gaps = {(row[9], row[11], row[12]): FeedStatus(*row) for row in rows}
    filesystem, base = filesystem_for(lake_root)
    folder = f"{base}/feed_status"
    for day in days_under(filesystem, folder, BUS_VENUE):
        for path in partition_files(filesystem, base, "feed_status", BUS_VENUE, day):
            frame = pl.from_arrow(pq.read_table(path, filesystem=filesystem))
            assert isinstance(frame, pl.DataFrame)
            frame = frame.filter(pl.col("event") == "bus_gap").with_columns(
                pl.col("ts_event", "ts_recv", "ts_exch").dt.epoch("ns"))
            for row in frame.iter_rows(named=True):
                if row["ts_event"] >= start_ns and (row["ts_exch"] or row["ts_event"]) <= end_ns:
                    gaps.setdefault((row["connection_id"], row["seq_from"], row["seq_to"]), FeedStatus(
                        BUS_VENUE, row["symbol"], "", row["ts_event"], row["ts_recv"], row["ts_exch"], None,
                        row["flags"], "bus_gap", row["connection_id"], row["detail"], row["seq_from"], row["seq_to"]))
    return list(gaps.values())


def backfill(capture_root: Path, lake_root: str, dsn: str, start_ns: int, end_ns: int, venues: Sequence[str] = (),
             replace: bool = False, today: dt.date | None = None) -> BackfillResult:
    if end_ns <= start_ns:
        raise BackfillError("--to must be after --from")
    known = sorted(p.name for p in capture_root.glob("*") if p.is_dir()) if capture_root.exists() else []
    chosen = list(venues) or [v for v in known if v in NORMALIZERS]
    unknown = [v for v in chosen if v not in NORMALIZERS]
    if unknown:
        raise BackfillError(f"unknown venue {', '.join(unknown)} (known: {', '.join(NORMALIZERS)})")
    streams = capture_streams(capture_root, chosen, start_ns, end_ns)
    if not streams:
        raise BackfillError(f"no raw captures of {', '.join(chosen) or 'any venue'} under {capture_root} for the "
                            "window: nothing to backfill from")
    result = BackfillResult(uuid.uuid4().hex[:12], start_ns, end_ns, chosen, "replace" if replace else "add",
                            [str(p) for files in streams.values() for p in files],
                            {venue: normalizer_version(venue) for venue in chosen})
    records: list[Record] = []
    for (venue, _), files in sorted(streams.items()):
        out = renormalize(venue, files, start_ns, end_ns)
        records += out.records
        result.dead_letters += len(out.dead_letters)
    gaps = _bus_gaps(dsn, lake_root, start_ns, end_ns)
    covered = min((_hour_of(Path(p)) for p in result.captures), default=None)
    records += [FeedStatus(BUS_VENUE, gap.symbol, "", gap.ts_event, gap.ts_recv, gap.ts_exch, None, TS_EVENT_IMPUTED,
                           "repaired", gap.connection_id, f"backfill {result.id} from {len(result.captures)} capture "
                           f"files", gap.seq_from, gap.seq_to)
                for gap in gaps if covered is not None and covered.timestamp() * 1e9 <= gap.ts_event]
    result.repaired = sum(1 for r in records if isinstance(r, FeedStatus) and r.event == "repaired")
    tables = _tables(records)
    result.records = {record_type: table.num_rows for record_type, table in tables.items()}
    today = today or dt.datetime.now(dt.UTC).date()
    _load_lake(lake_root, tables, result, replace, today)
    _load_timescale(dsn, tables, result, replace)
    return result
