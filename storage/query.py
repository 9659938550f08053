"""Reading the lake and TimescaleDB as one store, into Polars frames (the query API's storage half).

Users start from `ticklake.query` (`q = query.connect()`), which adds the configured stores and bars;
this module holds the reads themselves:

    Query(lake_root, dsn).trades("binance-usdm", "BTC-USDT-PERP", "2024-08-08", "2024-08-09")
    Query(lake_root, dsn).book_at("BTC-USDT-PERP", "2024-08-08T23:59:00Z", venue="binance-usdm", depth=10)

Where rows come from: per record type and venue, the *watermark* is the UTC midnight after the latest
day whose lake partition is sealed (compacted and verified, storage/seal_manifest.py). Rows before it
are read from the lake, rows at or after it from TimescaleDB, so a range across the watermark is
stitched with no gap and no overlap: each row comes from exactly one store, chosen by its ts_event.
Retention only drops sealed days from TimescaleDB, so everything at or after the watermark is still
there. Without a database (`dsn=None`) everything comes from the lake.

Ranges are half-open, [start, end), on ts_event; a bound is int ns since the epoch, a datetime
(naive means UTC), a date (its UTC midnight) or an ISO string. Times come back as Datetime("ns", "UTC")
columns, as in the lake. Every value reaching SQL is a bound parameter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import duckdb
import polars as pl
import psycopg
import pyarrow.dataset as ds
from psycopg import sql
from pyarrow import fs

from normalize.arrow_schema import schema_for
from normalize.flags import GAP_BEFORE, MAYBE_BAD_BOOK, SNAPSHOT
from normalize.records import RECORD_TYPES
from storage.lake_layout import NS_PER_DAY, day_of, partition_path
from storage.parquet_files import days_under, filesystem_for, parquet_files, venues_under
from storage.pg import connect as pg_connect
from storage.seal_manifest import SEALED, SEALS_DIR, partition_files
from storage.timescale_rows import read_table

Time = int | dt.datetime | dt.date | str
BOOK_BREAKING = ("gap", "checksum_failure", "resync_start", "disconnect", "stale", "queue_overflow")
"""feed_status events after which a book is unreliable until its next snapshot."""
Names = str | Sequence[str] | None
DERIVED = "derived"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
END_OF_TIME = 2**63 - 1


def to_ns(value: Time) -> int:
    """A time bound as int ns since the epoch, UTC."""
    if isinstance(value, bool):
        raise TypeError("a time bound cannot be a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        value = dt.datetime.fromisoformat(text) if ("T" in text or " " in text) else dt.date.fromisoformat(text)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * NS_PER_DAY
    raise TypeError(f"not a time: {value!r}")


def names(value: Names) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class Book:
    """An L2 book rebuilt at `ts`: `bids` (best first) and `asks` (best first), columns price, size.

    `snapshot_ts` is the snapshot it starts from; `messages` the venue messages applied after it.
    `maybe_bad` is True when, since the snapshot and up to ts, a row said data may be missing
    (GAP_BEFORE) or the book suspect (MAYBE_BAD_BOOK), or the gap journal (feed_status) recorded an
    event that breaks a book (BOOK_BREAKING) for the instrument or its whole connection, and no later
    snapshot repaired it: a handler that lost sequence stops applying deltas until it resyncs, so
    such a book may be frozen at the gap.
    """

    venue: str
    instrument: str
    ts: int
    snapshot_ts: int
    messages: int
    maybe_bad: bool
    bids: pl.DataFrame
    asks: pl.DataFrame

    @property
    def mid(self) -> float | None:
        if self.bids.is_empty() or self.asks.is_empty():
            return None
        return (self.bids["price"][0] + self.asks["price"][0]) / 2


class Query:
    """Reads one lake (a path or s3:// URL) and, when `dsn` is given, one TimescaleDB database."""

    def __init__(self, lake_root: str, dsn: str | None = None) -> None:
        self.lake_root = lake_root
        self.dsn = dsn
        self._fs, self._base = filesystem_for(lake_root)
        self._conn: psycopg.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Query:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contract tables -------------------------------------------------------------------------

    def records(self, record_type: str, venue: Names = None, instrument: Names = None, start: Time = 0,
                end: Time = END_OF_TIME) -> pl.DataFrame:
        """Rows of one record type in [start, end), sorted by (venue, instrument, ts_event, ts_recv)."""
        if record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record type '{record_type}' (known: {', '.join(RECORD_TYPES)})")
        start_ns, end_ns = to_ns(start), to_ns(end)
        venues, instruments = names(venue), names(instrument)
        marks = {v: self.watermark(record_type, v) for v in (venues or self._lake_venues(record_type))}
        parts = [self._lake_rows(record_type, v, instruments, start_ns, min(end_ns, mark))
                 for v, mark in marks.items() if mark > start_ns]
        live_from = start_ns if venues is None else max(start_ns, min(marks.values(), default=0))
        if self.dsn is not None and live_from < end_ns:  # a range all below the watermark never asks the database
            parts.append(self._timescale_rows(record_type, venues, instruments, live_from, end_ns, marks))
        if not parts:
            return pl.DataFrame(schema=self._schema(record_type))
        one_series = venues is not None and len(venues) == 1 and instruments is not None and len(instruments) == 1
        return _in_order(pl.concat(parts, how="vertical"), one_series)

    def trades(self, venue: Names = None, instrument: Names = None, start: Time = 0,
               end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("trade", venue, instrument, start, end)

    def book_deltas(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                    end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("book_delta", venue, instrument, start, end)

    def bbo(self, venue: Names = None, instrument: Names = None, start: Time = 0,
            end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("bbo", venue, instrument, start, end)

    def funding(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("funding", venue, instrument, start, end)

    def mark_index(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                   end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("mark_index", venue, instrument, start, end)

    def open_interest(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                      end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("open_interest", venue, instrument, start, end)

    def liquidations(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                     end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("liquidation", venue, instrument, start, end)

    def instruments(self, venue: Names = None, instrument: Names = None) -> pl.DataFrame:
        """The instrument master: the latest record per (venue, instrument)."""
        rows = self.records("instrument", venue, instrument)
        return rows.unique(["venue", "instrument"], keep="last", maintain_order=True)

    def feed_status(self, venue: Names = None, start: Time = 0, end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("feed_status", venue, None, start, end)

    # -- derived ---------------------------------------------------------------------------------

    def derived(self, asset: str, start: Time = 0, end: Time = END_OF_TIME, venue: Names = None) -> pl.DataFrame:
        """A pipelines asset (`lake/derived/<asset>/`) for the UTC days [start, end) touches."""
        start_ns, end_ns = to_ns(start), to_ns(end)
        venues = names(venue)
        folder = f"{self._base}/{DERIVED}/{asset}"
        paths = [path for v in (venues or venues_under(self._fs, folder))
                 for day in self._days_in(folder, v, start_ns, end_ns)
                 for path in parquet_files(self._fs, partition_path(f"{self._base}/{DERIVED}", asset, v, day))]
        if not paths:
            return pl.DataFrame()
        return self._scan(paths).collect()

    # -- book ------------------------------------------------------------------------------------

    def book_at(self, instrument: str, ts: Time, venue: str | None = None, depth: int | None = None,
                lookback_days: int = 2) -> Book:
        """The L2 book of `instrument` as it stood after every venue message with ts_event <= ts: the
        last snapshot at or before ts (searched back `lookback_days` UTC days) plus the deltas after it.
        `depth` keeps that many levels per side."""
        at_ns = to_ns(ts)
        rows = self.book_deltas(venue, instrument, (day_of(at_ns) - dt.timedelta(days=lookback_days)), at_ns + 1)
        venues = rows["venue"].unique().to_list()
        if len(venues) > 1:
            raise ValueError(f"{instrument} trades on {', '.join(sorted(venues))}: pass venue=")
        rows = rows.with_columns(pl.col("ts_event", "ts_recv").dt.epoch("ns"))
        snapshot = (pl.col("flags") & SNAPSHOT) != 0
        snapshots = rows.filter(snapshot)
        if snapshots.is_empty():
            raise LookupError(f"no book snapshot of {instrument} in the {lookback_days} days before {ts}")
        snapshot_ts, snapshot_recv = snapshots.select("ts_event", "ts_recv").row(-1)
        first = (rows.with_row_index("_row")
                 .filter(snapshot, pl.col("ts_event") == snapshot_ts, pl.col("ts_recv") == snapshot_recv)["_row"][0])
        since = rows.slice(first)
        levels = (since.group_by("side", "price", maintain_order=True).agg(pl.col("size").last())
                  .filter(pl.col("size") > 0))
        bids = levels.filter(pl.col("side") == 1).select("price", "size").sort("price", descending=True)
        asks = levels.filter(pl.col("side") == -1).select("price", "size").sort("price")
        if depth is not None:
            bids, asks = bids.head(depth), asks.head(depth)
        deltas = since.filter(~snapshot)
        book_venue = str(since["venue"][0])
        journal = self.feed_status(book_venue, snapshot_ts, at_ns + 1).filter(
            pl.col("event").is_in(BOOK_BREAKING), pl.col("instrument").is_in([instrument, ""]))
        flagged = bool(((since["flags"] & (GAP_BEFORE | MAYBE_BAD_BOOK)) != 0).any())
        return Book(venue=book_venue, instrument=instrument, ts=at_ns, snapshot_ts=snapshot_ts,
                    messages=deltas.select(pl.struct("ts_event", "ts_recv").n_unique()).item(),
                    maybe_bad=flagged or journal.height > 0, bids=bids, asks=asks)

    # -- where rows live -------------------------------------------------------------------------

    def watermark(self, record_type: str, venue: str) -> int:
        """ns of the UTC midnight after the latest sealed day of (record_type, venue); 0 if none is sealed.
        Without a database the lake holds everything: the end of time."""
        if self.dsn is None:
            return END_OF_TIME
        folder = f"{self._base}/{SEALS_DIR}/{record_type}/{venue}"
        infos = self._fs.get_file_info(fs.FileSelector(folder, allow_not_found=True))
        for info in sorted((i for i in infos if i.base_name.endswith(".json")), key=lambda i: i.base_name,
                           reverse=True):
            with self._fs.open_input_stream(info.path) as stream:
                if json.loads(stream.read())["state"] == SEALED:
                    day = dt.date.fromisoformat(info.base_name.removesuffix(".json"))
                    return to_ns(day + dt.timedelta(days=1))
        return 0

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per record type and derived asset of the lake
        (hive columns `venue` and `date` included), e.g. `SELECT * FROM trade WHERE date = '2024-08-08'`."""
        if "://" in self.lake_root:
            raise ValueError("duckdb() reads a local lake; for s3:// configure DuckDB's httpfs yourself")
        conn = duckdb.connect()
        for name, folder in self._view_folders():
            relation = conn.read_parquet(f"{folder}/*/*/*.parquet", hive_partitioning=True, union_by_name=True)
            relation.create_view(name)
        return conn

    # -- internals -------------------------------------------------------------------------------

    def _view_folders(self) -> list[tuple[str, str]]:
        folders = [(t, f"{self._base}/{t}") for t in RECORD_TYPES if self._has_files(f"{self._base}/{t}")]
        derived = f"{self._base}/{DERIVED}"
        for info in self._fs.get_file_info(fs.FileSelector(derived, allow_not_found=True)):
            if info.type == fs.FileType.Directory and self._has_files(info.path) and info.base_name not in RECORD_TYPES:
                folders.append((info.base_name, info.path))
        return folders

    def _has_files(self, folder: str) -> bool:
        selector = fs.FileSelector(folder, recursive=True, allow_not_found=True)
        return any(i.base_name.endswith(".parquet") for i in self._fs.get_file_info(selector))

    @cached_property
    def _connection(self) -> psycopg.Connection:
        assert self.dsn is not None
        conn = pg_connect(self.dsn, autocommit=True)
        conn.execute("SET default_transaction_read_only = on")
        return conn

    def _schema(self, record_type: str) -> pl.Schema:
        return pl.DataFrame(schema_for(record_type).empty_table()).schema

    def _scan(self, paths: list[str], schema: pl.Schema | None = None) -> pl.LazyFrame:
        """Lazy rows of the files (polars reads local files itself; other filesystems through Arrow)."""
        if isinstance(self._fs, fs.LocalFileSystem):
            return pl.scan_parquet(paths, schema=schema, missing_columns="insert", extra_columns="ignore")
        dataset = ds.dataset(paths, filesystem=self._fs, format="parquet",
                             schema=None if schema is None else pl.DataFrame(schema=schema).to_arrow().schema)
        return pl.scan_pyarrow_dataset(dataset)

    def _days_in(self, folder: str, venue: str, start_ns: int, end_ns: int) -> list[dt.date]:
        """Days with a folder under `folder/venue=<venue>/` that [start_ns, end_ns) touches."""
        return [day for day in days_under(self._fs, folder, venue)
                if to_ns(day) + NS_PER_DAY > start_ns and to_ns(day) < end_ns]

    def _lake_venues(self, record_type: str) -> list[str]:
        return venues_under(self._fs, f"{self._base}/{record_type}")

    def _lake_rows(self, record_type: str, venue: str, instruments: list[str] | None, start_ns: int,
                   end_ns: int) -> pl.DataFrame:
        folder = f"{self._base}/{record_type}"
        paths = [path for day in self._days_in(folder, venue, start_ns, end_ns)
                 for path in partition_files(self._fs, self._base, record_type, venue, day)]
        schema = self._schema(record_type)
        if not paths:
            return pl.DataFrame(schema=schema)
        return self._select_rows(self._scan(paths, schema), instruments, "ts_event", start_ns, end_ns).collect()

    @staticmethod
    def _select_rows(frame: pl.LazyFrame | pl.DataFrame, instruments: list[str] | None, ts: str, start_ns: int,
                     end_ns: int) -> pl.LazyFrame | pl.DataFrame:
        condition = (pl.col(ts).dt.epoch("ns") >= start_ns) & (pl.col(ts).dt.epoch("ns") < end_ns)
        if instruments is not None:
            condition &= pl.col("instrument").is_in(instruments)
        return frame.filter(condition)

    def _timescale_rows(self, record_type: str, venues: list[str] | None, instruments: list[str] | None,
                        start_ns: int, end_ns: int, marks: dict[str, int]) -> pl.DataFrame:
        """Rows in [start_ns, end_ns) at or after each venue's watermark (a venue the lake has never
        sealed: all of them)."""
        where = [sql.SQL("ts_event >= %s"), sql.SQL("ts_event < %s")]
        params: list[object] = [start_ns, end_ns]
        if venues is not None:
            where.append(sql.SQL("venue = ANY(%s)"))
            params.append(venues)
        if instruments is not None:
            where.append(sql.SQL("instrument = ANY(%s)"))
            params.append(instruments)
        table = read_table(self._connection, record_type, sql.SQL(" AND ").join(where), tuple(params))
        frame = pl.DataFrame(table)
        if not marks or frame.is_empty():
            return frame
        mark = pl.col("venue").replace_strict(marks, default=0, return_dtype=pl.Int64)
        return frame.filter(pl.col("ts_event").dt.epoch("ns") >= mark)


ORDER = ("venue", "instrument", "ts_event", "ts_recv")


def _in_order(frame: pl.DataFrame, one_series: bool) -> pl.DataFrame:
    """`frame` sorted by ORDER (stable). Rows of one venue and instrument from sealed files are in that
    order already: checking (ts_event, ts_recv) costs a tenth of sorting a day of one instrument."""
    if one_series and frame.height > 1:
        ts, recv = pl.col("ts_event"), pl.col("ts_recv")
        ordered = (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (recv >= recv.shift(1)))
        if frame.select(ordered.slice(1).all()).item():
            return frame
    return frame.sort(*ORDER, maintain_order=True)


def interval_ns(interval: str) -> int:
    """"1s", "1m", "5m", "1h", "1d" (any count of s, m, h or d) in ns."""
    units = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": NS_PER_DAY}
    number, unit = interval[:-1], interval[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ValueError(f"interval '{interval}' is not like 1s, 1m, 5m, 1h, 1d")
    return int(number) * units[unit]
