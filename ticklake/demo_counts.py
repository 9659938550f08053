"""What a demo run left in the stores, counted for its report: Timescale by SQL, the lake from the
Parquet footers (no data read), both per venue and UTC day as retention counts them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg import sql

from normalize.flags import GAP_BEFORE
from normalize.records import RECORD_TYPES
from pipelines.assets_bars import TIME_BARS
from pipelines.lake_io import DERIVED
from storage.parquet_files import lake_partitions
from storage.retention import DayKey, lake_day_rows, timescale_day_rows

BAR_ASSETS = (*(f"bars_{every}" for every in TIME_BARS), "bars_tick", "bars_volume", "bars_dollar")
_END = 2**63 - 1


def record_counts(conn: psycopg.Connection, lake_root: str) -> dict[str, dict[DayKey, tuple[int, int]]]:
    """Record type -> (venue, UTC day) -> (rows in Timescale, rows in the lake), over every
    partition either side has."""
    counts: dict[str, dict[DayKey, tuple[int, int]]] = {}
    for table in RECORD_TYPES:
        db = timescale_day_rows(conn, table, _END)
        lake = lake_day_rows(lake_root, table, sorted(set(db) | set(lake_partitions(lake_root, table))))
        counts[table] = {key: (db.get(key, 0), lake.get(key, 0)) for key in sorted(set(db) | set(lake))
                         if db.get(key, 0) or lake.get(key, 0)}
    return counts


def per_venue(counts: dict[str, dict[DayKey, tuple[int, int]]]) -> dict[str, dict[str, tuple[int, int]]]:
    """record_counts summed over days: record type -> venue -> (Timescale, lake)."""
    totals: dict[str, dict[str, tuple[int, int]]] = {}
    for table, per_day in counts.items():
        sums: dict[str, tuple[int, int]] = {}
        for (venue, _), (db_rows, lake_rows) in per_day.items():
            db_sum, lake_sum = sums.get(venue, (0, 0))
            sums[venue] = (db_sum + db_rows, lake_sum + lake_rows)
        totals[table] = dict(sorted(sums.items()))
    return totals


def trade_days(counts: dict[str, dict[DayKey, tuple[int, int]]], first: dt.date, before: dt.date) -> list[dt.date]:
    """UTC days in [first, before) with trades (any venue, either store): the days the demo seals."""
    return sorted({day for _, day in counts.get("trade", {}) if first <= day < before})


def feed_events(conn: psycopg.Connection) -> dict[str, dict[str, int]]:
    """Venue -> feed_status event -> rows (the gap journal: connects, gaps, resyncs, ...)."""
    events: dict[str, dict[str, int]] = defaultdict(dict)
    for venue, event, rows in conn.execute("SELECT venue, event, count(*) FROM feed_status GROUP BY 1, 2 "
                                           "ORDER BY 1, 2"):
        events[venue][event] = rows
    return dict(events)


def gap_flagged(conn: psycopg.Connection) -> dict[str, int]:
    """Venue -> rows of any record type flagged GAP_BEFORE (data may be missing before them)."""
    flagged: dict[str, int] = defaultdict(int)
    for table in RECORD_TYPES:
        query = sql.SQL("SELECT venue, count(*) FROM {} WHERE flags & %s <> 0 GROUP BY venue").format(
            sql.Identifier(table))
        for venue, rows in conn.execute(query, (GAP_BEFORE,)):
            flagged[venue] += rows
    return dict(sorted(flagged.items()))


def bar_rows(lake_root: str, days: list[dt.date]) -> dict[str, dict[dt.date, int]]:
    """Bar asset -> day -> rows in the lake's derived outputs (every venue)."""
    bars: dict[str, dict[dt.date, int]] = {}
    for asset in BAR_ASSETS:
        keys = [key for key in lake_partitions(lake_root, f"{DERIVED}/{asset}") if key[1] in days]
        per_day = dict.fromkeys(days, 0)
        for (_, day), rows in lake_day_rows(lake_root, f"{DERIVED}/{asset}", keys).items():
            per_day[day] += rows
        bars[asset] = per_day
    return bars


def normalizer_dead_letters(home: Path) -> dict[str, int]:
    """Venue -> frames the handlers could not read (`$TICKLAKE_HOME/dead_letters/<venue>.jsonl`)."""
    folder = home / "dead_letters"
    return {path.stem: sum(1 for line in path.read_bytes().splitlines() if line.strip())
            for path in sorted(folder.glob("*.jsonl"))}
