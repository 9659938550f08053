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
there. Without a database (`dsn=None`), or with one that cannot be reached (a LakeOnlyWarning, once,
unless `strict`), everything comes from the lake.

Ranges are half-open, [start, end), on ts_event; a bound is int ns since the epoch, a datetime
(naive means UTC), a date (its UTC midnight) or an ISO string. Times come back as Datetime("ns", "UTC")
columns, as in the lake. Every value reaching SQL is a bound parameter.

A question the stores cannot answer as asked raises QueryError rather than returning an empty frame:
an unknown venue or instrument (the message names the closest known ones), a venue symbol given as
the instrument (it names the instrument id), start after end, an int that is not nanoseconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import adbc_driver_postgresql.dbapi as adbc
import duckdb
import polars as pl
import psycopg
import pyarrow.dataset as ds
from adbc_driver_postgresql.dbapi import Connection as AdbcConnection
from psycopg import sql
from pyarrow import fs

from normalize.arrow_schema import schema_for
from normalize.flags import GAP_BEFORE, MAYBE_BAD_BOOK, SNAPSHOT
from normalize.records import RECORD_TYPES
from storage.lake_layout import NS_PER_DAY, day_of, partition_path
from storage.parquet_files import days_under, filesystem_for, parquet_files, venues_under
from storage.pg import DatabaseUnavailable
from storage.pg import connect as pg_connect
from storage.seal_manifest import SEALED, SEALS_DIR, partition_files, read_manifest
from storage.timescale_rows import read_arrow, select_sql

Time = int | dt.datetime | dt.date | str
BOOK_BREAKING = ("gap", "checksum_failure", "resync_start", "disconnect", "stale", "queue_overflow")
"""feed_status events after which a book is unreliable until its next snapshot."""
Names = str | Sequence[str] | None
DERIVED = "derived"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
END_OF_TIME = 2**63 - 1
FEWEST_NS = 10**17
"""The smallest magnitude an int time may have (1973-03-03 in ns): below it the int is read as seconds
(< 1e11, years up to 5138), milliseconds (< 1e14) or microseconds, and refused. 0 is the epoch."""
_COARSER_UNITS = ((10**11, "seconds", 10**9), (10**14, "milliseconds", 10**6), (FEWEST_NS, "microseconds", 10**3))
NAME_COLUMNS = ("venue", "symbol", "instrument")
NAME_SOURCES = ("lake master", "lake rows", "database")
"""Where instrument ids are looked up, cheapest first: the instrument records of each venue's latest day
in the lake; every row of the record type in the lake; the database's instrument master and the ids in
the record type's table."""


class QueryError(ValueError):
    """A query the stores cannot answer as asked (an unknown venue or instrument, a venue symbol given as
    an instrument, start after end, an int time that is not ns): the message says what to pass instead."""


class LakeOnlyWarning(UserWarning):
    """The database could not be reached, so the query API reads the lake alone: rows the lake sink had
    not written yet, or that only TimescaleDB holds, are missing from the answers."""


def to_ns(value: Time) -> int:
    """A time bound as int ns since the epoch, UTC. An int must be ns: one that looks like seconds,
    milliseconds or microseconds since the epoch (0 < |value| < FEWEST_NS) raises QueryError."""
    if isinstance(value, bool):
        raise TypeError("a time bound cannot be a bool")
    if isinstance(value, int):
        for below, unit, scale in _COARSER_UNITS:
            if 0 < abs(value) < below:
                raise QueryError(f"time {value} looks like {unit} since the epoch: integer times are nanoseconds "
                                 f"({value * scale} ns), or pass a datetime or an ISO string")
        return value
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = dt.datetime.fromisoformat(text) if ("T" in text or " " in text) else dt.date.fromisoformat(text)
        except ValueError:
            raise QueryError(f"time {value!r} is not an ISO date or time (2024-08-08, 2024-08-08T23:59:00Z)") from None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * NS_PER_DAY
    raise TypeError(f"not a time: {value!r}")


def time_range(start: Time, end: Time) -> tuple[int, int]:
    """[start, end) in ns; start after end raises QueryError (swapped arguments would read nothing)."""
    start_ns, end_ns = to_ns(start), to_ns(end)
    if start_ns > end_ns:
        raise QueryError(f"start {start!r} is after end {end!r}")
    return start_ns, end_ns


def names(value: Names) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def live_filter(bounds: dict[str, int], instruments: list[str] | None,
                end_ns: int) -> tuple[sql.Composed, tuple[object, ...]]:
    """The WHERE clause of TimescaleDB rows: each venue's rows from its own bound (the later of start and
    its watermark) to end_ns, so no row the lake answers for is sent. The range is also stated on `time`,
    the hypertables' dimension (ts_event floored to the microsecond: ticklake_ts, immutable, so folded
    to constants at planning), which lets TimescaleDB skip the chunks outside it."""
    arms = sql.SQL(" OR ").join(sql.SQL("(venue = %s AND ts_event >= %s)") for _ in bounds)
    where = sql.SQL("time >= ticklake_ts(%s) AND time <= ticklake_ts(%s - 1) AND ts_event >= %s AND ts_event < %s"
                    " AND ({})").format(arms)
    lowest = min(bounds.values())
    params: list[object] = [lowest, end_ns, lowest, end_ns]
    for venue, bound in bounds.items():
        params += [venue, bound]
    if instruments is not None:
        where = sql.SQL("{} AND instrument = ANY(%s)").format(where)
        params.append(instruments)
    return where, tuple(params)


def _caller_level() -> int:
    """The warnings stacklevel of the first frame outside the query API's modules: the user's call,
    however deep inside the API (bars, book_at, scan_*) the warning is raised."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__") in ("storage.query", "ticklake.query"):
        frame, level = frame.f_back, level + 1
    return level


def _closest(name: str, known: Sequence[str]) -> list[str]:
    """Up to three known names like `name`, ignoring case."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]


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
    """Reads one lake (a path or s3:// URL) and, when `dsn` is given, one TimescaleDB database.

    A database that cannot be reached (at the first read that needs it, or again after a lost
    connection) makes the Query read the lake alone from then on, with one LakeOnlyWarning; with
    `strict=True` it raises storage.pg.DatabaseUnavailable instead."""

    venue_ids: tuple[str, ...] = ()
    """Venues known before any store is read (ticklake.query.Query: every venue ticklake speaks); the
    storage layer itself knows only the venues its stores hold."""

    def __init__(self, lake_root: str, dsn: str | None = None, strict: bool = False) -> None:
        self.lake_root = lake_root
        self.dsn = dsn
        self.strict = strict
        self._fs, self._base = filesystem_for(lake_root)
        self._conn: psycopg.Connection | None = None
        self._arrow: AdbcConnection | None = None
        """The ADBC connection live rows are read through (opened after `_conn` proved the database up)."""
        self._lake_only = dsn is None
        self._names: dict[tuple[str, str], pl.DataFrame] = {}
        """NAME_SOURCES' answers by (source, record type)."""

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._arrow is not None:
            with contextlib.suppress(adbc.Error):
                self._arrow.close()
            self._arrow = None

    def __enter__(self) -> Query:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contract tables -------------------------------------------------------------------------

    def records(self, record_type: str, venue: Names = None, instrument: Names = None, start: Time = 0,
                end: Time = END_OF_TIME) -> pl.DataFrame:
        """Rows of one record type in [start, end), sorted by (venue, instrument, ts_event, ts_recv)."""
        venues, instruments = names(venue), names(instrument)
        parts = pl.collect_all(self._parts(record_type, venues, instruments, start, end))
        if not parts:
            return pl.DataFrame(schema=self._schema(record_type))
        one_series = venues is not None and len(venues) == 1 and instruments is not None and len(instruments) == 1
        return _in_order(pl.concat(parts, how="vertical"), one_series)

    def scan_records(self, record_type: str, venue: Names = None, instrument: Names = None, start: Time = 0,
                     end: Time = END_OF_TIME) -> pl.LazyFrame:
        """records() as a LazyFrame: the lake's files are scanned lazily (a later filter or select is
        pushed into the Parquet read); TimescaleDB's rows past the watermark are read now. Names and the
        range are checked now, as by records()."""
        parts = self._parts(record_type, names(venue), names(instrument), start, end)
        if not parts:
            return pl.LazyFrame(schema=self._schema(record_type))
        return pl.concat(parts, how="vertical").sort(*ORDER, maintain_order=True)

    def trades(self, venue: Names = None, instrument: Names = None, start: Time = 0,
               end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("trade", venue, instrument, start, end)

    def scan_trades(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                    end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("trade", venue, instrument, start, end)

    def book_deltas(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                    end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("book_delta", venue, instrument, start, end)

    def scan_book_deltas(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                         end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("book_delta", venue, instrument, start, end)

    def bbo(self, venue: Names = None, instrument: Names = None, start: Time = 0,
            end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("bbo", venue, instrument, start, end)

    def scan_bbo(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                 end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("bbo", venue, instrument, start, end)

    def funding(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("funding", venue, instrument, start, end)

    def scan_funding(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                     end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("funding", venue, instrument, start, end)

    def mark_index(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                   end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("mark_index", venue, instrument, start, end)

    def scan_mark_index(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                        end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("mark_index", venue, instrument, start, end)

    def open_interest(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                      end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("open_interest", venue, instrument, start, end)

    def scan_open_interest(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                           end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("open_interest", venue, instrument, start, end)

    def liquidations(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                     end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("liquidation", venue, instrument, start, end)

    def scan_liquidations(self, venue: Names = None, instrument: Names = None, start: Time = 0,
                          end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("liquidation", venue, instrument, start, end)

    def instruments(self, venue: Names = None, instrument: Names = None) -> pl.DataFrame:
        """The instrument master: the latest record per (venue, instrument)."""
        rows = self.records("instrument", venue, instrument)
        return rows.unique(["venue", "instrument"], keep="last", maintain_order=True)

    def feed_status(self, venue: Names = None, start: Time = 0, end: Time = END_OF_TIME) -> pl.DataFrame:
        return self.records("feed_status", venue, None, start, end)

    def scan_feed_status(self, venue: Names = None, start: Time = 0, end: Time = END_OF_TIME) -> pl.LazyFrame:
        return self.scan_records("feed_status", venue, None, start, end)

    # -- derived ---------------------------------------------------------------------------------

    def derived(self, asset: str, start: Time = 0, end: Time = END_OF_TIME, venue: Names = None) -> pl.DataFrame:
        """A pipelines asset (`lake/derived/<asset>/`) for the UTC days [start, end) touches."""
        return self.scan_derived(asset, start, end, venue).collect()

    def scan_derived(self, asset: str, start: Time = 0, end: Time = END_OF_TIME, venue: Names = None) -> pl.LazyFrame:
        """derived() as a LazyFrame over the asset's files."""
        start_ns, end_ns = time_range(start, end)
        venues = self._checked_venues(names(venue))
        folder = f"{self._base}/{DERIVED}/{asset}"
        paths = [path for v in (venues or venues_under(self._fs, folder))
                 for path in self._derived_files(asset, v, self._days_in(folder, v, start_ns, end_ns))]
        return self._scan(paths) if paths else pl.LazyFrame()

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
        Without a database (none configured, or it could not be reached) the lake holds everything: the
        end of time."""
        if self._lake_only:
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

    def sealed(self, record_type: str, venue: str, day: dt.date) -> bool:
        """Whether the lake partition of (record_type, venue, day) is sealed: its rows no longer change."""
        manifest = read_manifest(self._fs, self._base, record_type, venue, day)
        return manifest is not None and manifest.state == SEALED

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

    def _parts(self, record_type: str, venues: list[str] | None, instruments: list[str] | None, start: Time,
               end: Time) -> list[pl.LazyFrame]:
        """The lake's rows before each venue's watermark (lazy) and TimescaleDB's from it (read now). A
        connection lost since the last call is opened again once; a database that cannot be reached
        leaves the lake alone (`_database`)."""
        if record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record type '{record_type}' (known: {', '.join(RECORD_TYPES)})")
        start_ns, end_ns = time_range(start, end)
        try:
            return self._stitched(record_type, self._checked_venues(venues), instruments, start_ns, end_ns)
        except (psycopg.OperationalError, adbc.OperationalError):  # the connection was lost: open it again (or
            # find it unreachable)
            self.close()
            return self._stitched(record_type, self._checked_venues(venues), instruments, start_ns, end_ns)

    def _stitched(self, record_type: str, venues: list[str] | None, instruments: list[str] | None, start_ns: int,
                  end_ns: int) -> list[pl.LazyFrame]:
        self._check_instruments(record_type, instruments)
        marks = {v: self.watermark(record_type, v) for v in (venues or self._all_venues(record_type))}
        bounds = {v: max(start_ns, mark) for v, mark in marks.items() if max(start_ns, mark) < end_ns}
        live: pl.DataFrame | None = None
        if bounds and not self._lake_only:  # a range all below the watermark never asks the database
            conn = self._database()
            if conn is None:  # unreachable: from now on the lake holds everything
                return self._stitched(record_type, venues, instruments, start_ns, end_ns)
            where, params = live_filter(bounds, instruments, end_ns)
            live = pl.DataFrame(read_arrow(self._arrow_connection(), record_type,
                                           select_sql(conn, record_type, where, params)))
        parts = [self._lake_rows(record_type, v, instruments, start_ns, min(end_ns, mark))
                 for v, mark in marks.items() if mark > start_ns]
        return [part for part in parts if part is not None] + ([live.lazy()] if live is not None else [])

    def _database(self) -> psycopg.Connection | None:
        """The read-only connection, opened on first need; None once the database proved unreachable
        (a LakeOnlyWarning then, once; with `strict`, DatabaseUnavailable instead)."""
        if self._lake_only:
            return None
        if self._conn is None:
            assert self.dsn is not None
            try:
                conn = pg_connect(self.dsn, autocommit=True)
            except DatabaseUnavailable as exc:
                if self.strict:
                    raise
                self._lake_only = True
                warnings.warn(f"{exc}; reading the lake alone", LakeOnlyWarning, stacklevel=_caller_level())
                return None
            conn.execute("SET default_transaction_read_only = on")
            self._conn = conn
        return self._conn

    def _arrow_connection(self) -> AdbcConnection:
        """Read-only, like `_conn`: rows travel as Arrow columns (storage.timescale_rows.read_arrow).
        Autocommit, like `_conn`: a Query left open in a notebook must hold no transaction between calls
        (its locks on the chunks read would stall the retention's chunk drops, and vacuum)."""
        if self._arrow is None:
            assert self.dsn is not None
            self._arrow = adbc.connect(self.dsn, autocommit=True)
            with self._arrow.cursor() as cursor:
                cursor.execute("SET default_transaction_read_only = on")
        return self._arrow

    def _all_venues(self, record_type: str) -> list[str]:
        """What venue=None reads: every venue ticklake speaks (`venue_ids`), and any other the lake lists
        for the record type."""
        return sorted(set(self.venue_ids) | set(self._lake_venues(record_type)))

    @cached_property
    def _known_venues(self) -> list[str]:
        """Venue ids a query may name without touching the database: those ticklake speaks and the lake's."""
        lake = {v for t in RECORD_TYPES for v in self._lake_venues(t)}
        derived = f"{self._base}/{DERIVED}"
        for info in self._fs.get_file_info(fs.FileSelector(derived, allow_not_found=True)):
            lake |= set(venues_under(self._fs, info.path))
        return sorted(set(self.venue_ids) | lake)

    def _checked_venues(self, venues: list[str] | None) -> list[str] | None:
        """`venues`, each known to the stores (the normalizers', the lake's, then the database's instrument
        master and gap journal), asked afresh once before a name is refused; QueryError naming the
        closest known ones otherwise."""
        for venue in venues or ():
            if venue in self._known_venues or venue in self._database_venues:
                continue
            self._forget_names()
            if venue in self._known_venues or venue in self._database_venues:
                continue
            known = sorted(set(self._known_venues) | self._database_venues)
            close = _closest(venue, known)
            hint = f"closest: {', '.join(close)}" if close else f"known: {', '.join(known)}"
            if venue in self._names_of("trade")["instrument"]:
                hint += "; that is an instrument id: the venue comes first"
            raise QueryError(f"unknown venue '{venue}' ({hint})")
        return venues

    @cached_property
    def _database_venues(self) -> set[str]:
        conn = self._database()
        if conn is None:
            return set()
        return {row[0] for row in conn.execute("SELECT venue FROM instrument UNION SELECT venue FROM feed_status")}

    def _check_instruments(self, record_type: str, instruments: list[str] | None) -> None:
        """Each instrument must be an instrument id the stores know (QueryError otherwise, naming the
        id a venue symbol maps to, or the closest known ids). Sources are asked cheapest first and only
        while a name is still unknown (NAME_SOURCES), each answer cached until a name is missing from
        them all; then they are asked afresh once before the name is refused."""
        unknown = set(instruments or ())
        for fresh in (False, True):
            if fresh:
                self._forget_names()
            for source in NAME_SOURCES:
                unknown -= set(self._names_from(source, record_type)["instrument"])
                if not unknown:
                    return
        catalog = self._names_of(record_type)
        name = sorted(unknown)[0]
        as_symbol = catalog.filter(pl.col("symbol") == name).select("venue", "instrument").unique().sort("venue")
        if as_symbol.height:
            ids = ", ".join(f"'{instrument}' on {venue}" for venue, instrument in as_symbol.rows())
            raise QueryError(f"'{name}' is a venue symbol, not an instrument id: pass {ids}")
        close = _closest(name, catalog["instrument"].unique().to_list())
        raise QueryError(f"unknown instrument '{name}'" + (f" (closest: {', '.join(close)})" if close else ""))

    def _forget_names(self) -> None:
        """Drop the cached names: a name is refused only after the stores were asked afresh, so a Query
        kept open (a notebook's) sees venues and instruments that arrived since it cached them."""
        self._names.clear()
        self.__dict__.pop("_known_venues", None)
        self.__dict__.pop("_database_venues", None)

    def _names_of(self, record_type: str) -> pl.DataFrame:
        """Every (venue, symbol, instrument) any source knows for the record type."""
        return pl.concat([self._names_from(source, record_type) for source in NAME_SOURCES])

    def _names_from(self, source: str, record_type: str) -> pl.DataFrame:
        """(venue, symbol, instrument) one of NAME_SOURCES knows (symbol null where it is not known)."""
        key = (source, "instrument" if source == "lake master" else record_type)
        if key not in self._names:
            if source == "database":
                self._names[key] = self._database_names(record_type)
            else:
                self._names[key] = self._lake_names(key[1], latest_day_only=source == "lake master")
        return self._names[key]

    def _lake_names(self, record_type: str, latest_day_only: bool) -> pl.DataFrame:
        folder = f"{self._base}/{record_type}"
        paths = [path for venue in self._lake_venues(record_type)
                 for day in days_under(self._fs, folder, venue)[-1 if latest_day_only else 0:]
                 for path in partition_files(self._fs, self._base, record_type, venue, day)]
        if not paths:
            return pl.DataFrame(schema=dict.fromkeys(NAME_COLUMNS, pl.String))
        return self._scan(paths, self._schema(record_type)).select(NAME_COLUMNS).unique().collect()

    def _database_names(self, record_type: str) -> pl.DataFrame:
        """The instrument master's (venue, symbol, instrument) and the record type's instrument ids, by a
        skip scan of its key index (which leads with instrument): one index probe per id and chunk."""
        conn = self._database()
        rows: list[tuple[str | None, ...]] = []
        if conn is not None:
            rows += conn.execute("SELECT DISTINCT venue, symbol, instrument FROM instrument").fetchall()
            rows += conn.execute(sql.SQL(
                "WITH RECURSIVE ids AS ((SELECT instrument FROM {t} ORDER BY instrument LIMIT 1) UNION ALL "
                "SELECT (SELECT instrument FROM {t} WHERE instrument > ids.instrument ORDER BY instrument LIMIT 1) "
                "FROM ids WHERE ids.instrument IS NOT NULL) "
                "SELECT NULL, NULL, instrument FROM ids WHERE instrument IS NOT NULL").format(
                    t=sql.Identifier(record_type))).fetchall()
        return pl.DataFrame(rows, schema=dict.fromkeys(NAME_COLUMNS, pl.String), orient="row")

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

    def _schema(self, record_type: str) -> pl.Schema:
        return pl.DataFrame(schema_for(record_type).empty_table()).schema

    def _scan(self, paths: list[str], schema: pl.Schema | None = None) -> pl.LazyFrame:
        """Lazy rows of the files (polars reads local files itself; other filesystems through Arrow)."""
        if isinstance(self._fs, fs.LocalFileSystem):
            return pl.scan_parquet(paths, schema=schema, missing_columns="insert", extra_columns="ignore")
        dataset = ds.dataset(paths, filesystem=self._fs, format="parquet",
                             schema=None if schema is None else pl.DataFrame(schema=schema).to_arrow().schema)
        return pl.scan_pyarrow_dataset(dataset)

    def _derived_files(self, asset: str, venue: str, days: list[dt.date]) -> list[str]:
        return [path for day in days
                for path in parquet_files(self._fs, partition_path(f"{self._base}/{DERIVED}", asset, venue, day))]

    def _days_in(self, folder: str, venue: str, start_ns: int, end_ns: int) -> list[dt.date]:
        """Days with a folder under `folder/venue=<venue>/` that [start_ns, end_ns) touches."""
        return [day for day in days_under(self._fs, folder, venue)
                if to_ns(day) + NS_PER_DAY > start_ns and to_ns(day) < end_ns]

    def _lake_venues(self, record_type: str) -> list[str]:
        return venues_under(self._fs, f"{self._base}/{record_type}")

    def _lake_rows(self, record_type: str, venue: str, instruments: list[str] | None, start_ns: int,
                   end_ns: int) -> pl.LazyFrame | None:
        """The lake's rows of one venue in [start_ns, end_ns), lazily; None when no file holds the range.
        A partition being rewritten is read whole, as it was or as it will be (partition_files)."""
        folder = f"{self._base}/{record_type}"
        paths = [path for day in self._days_in(folder, venue, start_ns, end_ns)
                 for path in partition_files(self._fs, self._base, record_type, venue, day)]
        if not paths:
            return None
        return self._select_rows(self._scan(paths, self._schema(record_type)), instruments, "ts_event", start_ns,
                                 end_ns)

    @staticmethod
    def _select_rows(frame: pl.LazyFrame, instruments: list[str] | None, ts: str, start_ns: int,
                     end_ns: int) -> pl.LazyFrame:
        condition = (pl.col(ts).dt.epoch("ns") >= start_ns) & (pl.col(ts).dt.epoch("ns") < end_ns)
        if instruments is not None:
            condition &= pl.col("instrument").is_in(instruments)
        return frame.filter(condition)


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
