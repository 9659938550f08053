"""Timescale retention that never drops what the Parquet lake does not hold.

Timescale keeps recent days for live queries; the lake keeps everything. `apply_retention`
drops hypertable chunks older than a cutoff (drop_chunks works in the Apache edition; chunks are by
`time`, and a cutoff at a UTC midnight in ns is the same instant there), but
first checks, per table, venue and UTC day before the cutoff, that the lake's partition is sealed
(its seal manifest, storage/seal_manifest.py, says `sealed`: compacted, deduplicated and verified)
and compares the rows in Timescale with the rows in that partition (Parquet footers only, no data
read). The cutoff is pulled back to the oldest day the lake does not fully hold yet, so a sink
that fell behind, a day not yet sealed, or a lake on another disk that is missing files stops the
drop at that day, per table.

Row counts suffice as the check because both sinks write exactly once: a lake partition with
at least as many rows as Timescale for that day holds that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from normalize.records import RECORD_TYPES
from storage.lake_layout import NS_PER_DAY, day_of, partition_path
from storage.parquet_files import filesystem_for, parquet_files
from storage.seal_manifest import sealed_days

DayKey = tuple[str, dt.date]
"""(venue, UTC day)."""


@dataclass(frozen=True)
class TablePlan:
    table: str
    cutoff_ns: int
    """Chunks entirely before this are dropped (a UTC midnight)."""
    checked_days: int
    missing: list[tuple[str, dt.date, int, int]] = field(default_factory=list)
    """(venue, day, rows in Timescale, rows in the lake) for days the lake does not hold."""
    unsealed: list[DayKey] = field(default_factory=list)
    """Days the lake holds but has not sealed yet: kept too."""


def plan_table(table: str, wanted_cutoff_ns: int, db_rows: Mapping[DayKey, int],
               lake_rows: Mapping[DayKey, int], sealed: Collection[DayKey]) -> TablePlan:
    """Pure: the cutoff actually safe for one table, given per-day row counts on both sides and
    the days whose lake partition is sealed."""
    cutoff = wanted_cutoff_ns - wanted_cutoff_ns % NS_PER_DAY
    missing = sorted(
        (venue, day, rows, lake_rows.get((venue, day), 0))
        for (venue, day), rows in db_rows.items()
        if lake_rows.get((venue, day), 0) < rows
    )
    lacking = {(venue, day) for venue, day, _, _ in missing}
    unsealed = sorted(key for key in db_rows if key not in sealed and key not in lacking)
    kept = [day for _, day, _, _ in missing] + [day for _, day in unsealed]
    if kept:
        cutoff = min(cutoff, (min(kept) - dt.date(1970, 1, 1)).days * NS_PER_DAY)
    return TablePlan(table, cutoff, len(db_rows), missing, unsealed)


def timescale_day_rows(conn: psycopg.Connection, table: str, before_ns: int) -> dict[DayKey, int]:
    query = sql.SQL("SELECT venue, ts_event / {day} AS day, count(*) FROM {table} WHERE time < ticklake_ts(%s) "
                    "GROUP BY 1, 2")
    rows = conn.execute(query.format(day=sql.Literal(NS_PER_DAY), table=sql.Identifier(table)),
                        (before_ns,)).fetchall()
    return {(venue, day_of(day * NS_PER_DAY)): count for venue, day, count in rows}


def lake_day_rows(lake_root: str, table: str, days: list[DayKey]) -> dict[DayKey, int]:
    """Rows per partition from the Parquet footers (`.tmp` files are not the lake's yet)."""
    filesystem, base = filesystem_for(lake_root)
    counts: dict[DayKey, int] = {}
    for venue, day in days:
        total = 0
        for path in parquet_files(filesystem, partition_path(base, table, venue, day)):
            with filesystem.open_input_file(path) as handle:
                total += pq.read_metadata(handle).num_rows
        counts[(venue, day)] = total
    return counts


def apply_retention(conn: psycopg.Connection, lake_root: str, keep_days: int, now_ns: int,
                    dry_run: bool = False) -> list[tuple[TablePlan, int]]:
    """Per table: the plan and the number of chunks dropped (0 in a dry run)."""
    wanted = now_ns - keep_days * NS_PER_DAY
    results = []
    for table in RECORD_TYPES:
        db_rows = timescale_day_rows(conn, table, wanted - wanted % NS_PER_DAY)
        plan = plan_table(table, wanted, db_rows, lake_day_rows(lake_root, table, sorted(db_rows)),
                          sealed_days(lake_root, table))
        dropped = 0
        if not dry_run and plan.checked_days:
            dropped = len(conn.execute("SELECT drop_chunks(%s, older_than => ticklake_ts(%s))",
                                       (table, plan.cutoff_ns)).fetchall())
        results.append((plan, dropped))
    conn.commit()
    return results
