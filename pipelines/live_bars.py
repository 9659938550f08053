"""Live bars: 1 s and 1 m bars of the trades in TimescaleDB, rewritten every second into `bars_live`.

The pipelines' bars exist for sealed days only; a live chart needs today's. `ticklake sink live-bars`
(started by `ticklake run` beside the two sinks) runs `refresh` every `interval_s`: it reads the
trades of a trailing window from the `trade` hypertable, builds the bars with the very function the
sealed bars come from (pipelines.bars.time_bars: market prints only, open and close in trade order,
exact decimal sums), and replaces the window's rows of `bars_live` in one transaction. The same
trades therefore give the same bars bit for bit: once a day is sealed, its live bars equal its
sealed bars (the `live_bars_equal_sealed` asset check, pipelines/checks.py). Prices and sizes are
doubles in both stores (docs/contract.md); floats travel as their repr, which round-trips exactly.

The window starts at the minute boundary before the oldest trade that may have been stored since the
last pass: the Timescale sinks' progress (`ticklake_sink_offsets.last_time_ns`, the bus time of the
last message each committed) minus LATE_NS (10 s), and a window is never longer than `max_window_s` (a
stale offset row of a retired consumer cannot make every pass read a day). A sink catching up a
backlog is thus followed wherever it writes. A trade whose event time lies further before its
message's bus time (a trade backfill after a handler restarted, a spool sent after a bus outage, a
recorded market replayed on its own clock) is marked by the sink in its batch's transaction
(storage/late_trades.py): the pass also rebuilds the minutes of the marked span and deletes the marks
it read.
Each pass reads every trade of its window: about (window) x (trade rate) rows, a minute or two of
trades, plus the marked minutes.

Continuous aggregates (the full edition) are not used for this: they order `first`/`last` by one
column and sum in float, so their bars could not equal the sealed ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
import psycopg
from adbc_driver_postgresql.dbapi import Connection as AdbcConnection
from psycopg import sql

from pipelines import bars
from pipelines.partitions import day_bounds_ns
from pipelines.timescale_out import copy_frame, table_rows
from storage.late_trades import KEPT_DAYS, LATE_NS, merge
from storage.pg import DatabaseUnavailable, connect
from storage.timescale_rows import read_arrow, select_sql

log = logging.getLogger(__name__)

TABLE = "bars_live"
RESOLUTIONS = ("1s", "1m")
"""Bar widths kept live; each divides the widest, so a window starting on its boundary holds whole bars."""
WIDEST_NS = 60 * 10**9
LIVE_COLUMNS = [*bars.BAR_SCHEMA, "resolution"]


@dataclass(frozen=True)
class LiveBarsConfig:
    pg_dsn: str
    interval_s: float = 1.0
    """Seconds between the starts of two passes."""
    max_window_s: float = 3600.0
    """The longest window a pass reads."""
    keep_days: int = KEPT_DAYS
    """Days of live bars kept; older ones are deleted (the sealed bars are in bars_1m and the lake)."""


def window_start(now_ns: int, sink_time_ns: int | None, config: LiveBarsConfig) -> int:
    """Pure: the first ns a pass recomputes, on a minute boundary (see the module docstring)."""
    since = now_ns if sink_time_ns is None else min(now_ns, sink_time_ns)
    start = max(since - LATE_NS, now_ns - int(config.max_window_s * 1e9))
    return start - start % WIDEST_NS


@dataclass(frozen=True)
class LateMarks:
    """The sinks' marks of trades stored late (storage/late_trades.py), as one pass read them."""
    span: tuple[int, int] | None
    """The first and last event time of every marked trade."""
    ids: list[int]
    """The rows read: deleted once their minutes are rebuilt (a row added meanwhile stays)."""


def late_marks(conn: psycopg.Connection) -> LateMarks:
    rows = conn.execute("SELECT id, from_ns, to_ns FROM ticklake_late_trades").fetchall()
    return LateMarks(merge((int(row[1]), int(row[2])) for row in rows), [int(row[0]) for row in rows])


def clear_marks(conn: psycopg.Connection, marks: LateMarks) -> None:
    if marks.ids:
        conn.execute("DELETE FROM ticklake_late_trades WHERE id = ANY(%s)", (marks.ids,))


def late_window(span: tuple[int, int] | None, window_start_ns: int, keep_before_ns: int) -> tuple[int, int] | None:
    """Pure: the whole minutes holding the marked span that the trailing window (from window_start_ns) does
    not rebuild anyway, as [start, end), from keep_before_ns at the earliest (a trade from a week ago beside
    one from today rebuilds what is kept, not everything between); None when there is nothing to rebuild."""
    if span is None or span[1] < keep_before_ns:
        return None
    start = max(span[0], keep_before_ns)
    start -= start % WIDEST_NS
    end = min(span[1] - span[1] % WIDEST_NS + WIDEST_NS, window_start_ns)
    return (start, end) if start < end else None


def live_bars(trades: pl.DataFrame) -> pl.DataFrame:
    """The bars of every resolution, with its name in `resolution` (LIVE_COLUMNS)."""
    return pl.concat([bars.time_bars(trades, every).with_columns(pl.lit(every).alias("resolution"))
                      for every in RESOLUTIONS])


def sink_time_ns(conn: psycopg.Connection) -> int | None:
    """The bus time of the last message every Timescale sink has committed (the slowest one's)."""
    row = conn.execute("SELECT min(last_time_ns) FROM ticklake_sink_offsets").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def connect_arrow(dsn: str) -> AdbcConnection:
    """The connection refresh reads trades through: Arrow columns from the server's binary rows, in C (a
    pass spent 86 % of its time turning psycopg's rows into columns). Autocommit: a transaction left open
    between passes would hold back vacuum and block the retention's chunk drops."""
    return adbc.connect(dsn, autocommit=True)


def refresh(conn: psycopg.Connection, arrow: AdbcConnection, start_ns: int, keep_before_ns: int,
            end_ns: int | None = None) -> int:
    """Rebuild `bars_live` from start_ns on (to end_ns, both on minute boundaries) from the trades stored
    (read through `arrow`, connect_arrow), and delete the rows before keep_before_ns, in one transaction;
    returns the bars written. The filter on `time` (the dimension) keeps the read to the window's chunks."""
    window: sql.Composable = sql.SQL("time >= ticklake_ts(%s)")
    params: tuple[int, ...] = (start_ns,)
    if end_ns is not None:
        window, params = sql.SQL("{} AND time < ticklake_ts(%s)").format(window), (start_ns, end_ns)
    frame = pl.from_arrow(read_arrow(arrow, "trade", select_sql(conn, "trade", window, params)))
    assert isinstance(frame, pl.DataFrame)
    rows = table_rows(live_bars(frame), LIVE_COLUMNS, "ts")
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(sql.SQL("DELETE FROM bars_live WHERE ({}) OR time < ticklake_ts(%s)").format(window),
                       (*params, keep_before_ns))
        if rows.height:
            copy_frame(cursor, TABLE, rows)
    return rows.height


def read_live_bars(conn: psycopg.Connection, every: str, day: dt.date) -> pl.DataFrame:
    """The live bars of one resolution whose bucket starts on `day` (UTC), with the bars' schema."""
    start_ns, end_ns = day_bounds_ns(day)
    cursor = conn.execute(sql.SQL("SELECT {} FROM bars_live WHERE resolution = %s AND time >= ticklake_ts(%s) "
                                  "AND time < ticklake_ts(%s)").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in bars.BAR_SCHEMA)), (every, start_ns, end_ns))
    frame = pl.DataFrame(cursor.fetchall(), schema=[(name, pl.Int64 if isinstance(dtype, pl.Datetime) else dtype)
                                                    for name, dtype in bars.BAR_SCHEMA.items()], orient="row")
    return frame.with_columns(pl.col(name).cast(dtype) for name, dtype in bars.BAR_SCHEMA.items()
                              if isinstance(dtype, pl.Datetime))


def run_live_bars(config: LiveBarsConfig, stopping: threading.Event,
                  on_pass: Callable[[int, int], None] | None = None) -> None:
    """Refresh every interval_s until `stopping` is set. A lost database costs one log line a pass,
    and the next pass connects again; `on_pass(window_start_ns, bars)` is told of every pass."""
    conn: psycopg.Connection | None = None
    arrow: AdbcConnection | None = None
    while not stopping.is_set():
        began = time.monotonic()
        try:
            if conn is None or conn.closed or arrow is None:
                _close(conn, arrow)
                conn = connect(config.pg_dsn, autocommit=True)
                arrow = connect_arrow(config.pg_dsn)
            now_ns = time.time_ns()
            marks = late_marks(conn)  # before the trades are read: each trade it counts is then in the read
            start = window_start(now_ns, sink_time_ns(conn), config)
            keep_before = now_ns - config.keep_days * 86_400 * 10**9
            written = refresh(conn, arrow, start, keep_before)
            if (late := late_window(marks.span, start, keep_before)) is not None:
                written += refresh(conn, arrow, late[0], 0, late[1])
            clear_marks(conn, marks)
            if on_pass is not None:
                on_pass(start, written)
        except (DatabaseUnavailable, psycopg.OperationalError, adbc.OperationalError) as exc:
            log.warning("live bars: database unavailable, retrying: %s", " ".join(str(exc).split()))
            _close(conn, arrow)
            conn, arrow = None, None
        stopping.wait(max(0.0, config.interval_s - (time.monotonic() - began)))
    _close(conn, arrow)


def _close(conn: psycopg.Connection | None, arrow: AdbcConnection | None) -> None:
    if conn is not None:
        conn.close()
    if arrow is not None:
        with contextlib.suppress(adbc.Error):
            arrow.close()
