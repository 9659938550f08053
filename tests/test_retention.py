"""Retention drops only the days the lake holds, per table, venue and day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pyarrow as pa

from normalize.arrow_schema import to_arrow
from normalize.flags import Flag
from normalize.records import Trade
from pipelines.seal import seal_partition
from storage.lake_layout import NS_PER_DAY
from storage.lake_write import write_records
from storage.retention import apply_retention, plan_table
from storage.timescale_rows import copy_table
from ticklake.stack.postgres import EmbeddedPostgres

DAY0 = dt.date(2019, 3, 1)


def _ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * NS_PER_DAY


def test_plan_pulls_the_cutoff_back_to_the_oldest_day_the_lake_lacks() -> None:
    d1, d2, d3 = DAY0, DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=2)
    db = {("a", d1): 10, ("a", d2): 5, ("b", d2): 7, ("a", d3): 3}
    lake = {("a", d1): 10, ("a", d2): 5, ("b", d2): 6, ("a", d3): 3}
    sealed = set(db)
    plan = plan_table("trade", _ns(d3) + NS_PER_DAY + 123, db, lake, sealed)
    assert plan.cutoff_ns == _ns(d2)
    assert plan.missing == [("b", d2, 7, 6)] and plan.unsealed == []
    complete = plan_table("trade", _ns(d3) + NS_PER_DAY + 123, db, {**lake, ("b", d2): 7}, sealed)
    assert complete.cutoff_ns == _ns(d3) + NS_PER_DAY and not complete.missing


def test_plan_keeps_days_the_lake_holds_but_has_not_sealed() -> None:
    d1, d2 = DAY0, DAY0 + dt.timedelta(days=1)
    db = {("a", d1): 10, ("a", d2): 5}
    plan = plan_table("trade", _ns(d2) + NS_PER_DAY, db, dict(db), sealed={("a", d1)})
    assert plan.cutoff_ns == _ns(d2)
    assert plan.unsealed == [("a", d2)] and plan.missing == []


def _trades(day: dt.date, count: int) -> list[Trade]:
    start = _ns(day)
    return [Trade("retention-test", "X", "X-USDT-PERP", start + i * 3_600_000_000_000, start, None, None,
                  int(Flag.LAST), 1.5, 2.0, 1, f"{day}-{i}") for i in range(count)]


def _days_in_db(conn: psycopg.Connection) -> list[tuple[dt.date, int]]:
    rows = conn.execute("SELECT ts_event / %s, count(*) FROM trade WHERE venue = 'retention-test' "
                        "GROUP BY 1 ORDER BY 1", (NS_PER_DAY,)).fetchall()
    return [(dt.date(1970, 1, 1) + dt.timedelta(days=day), count) for day, count in rows]


def test_drops_only_what_the_lake_holds(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    days = [DAY0 + dt.timedelta(days=i) for i in range(3)]
    lake = str(tmp_path / "lake")
    with psycopg.connect(postgres.dsn) as conn:
        with conn.cursor() as cursor:
            copy_table(cursor, "trade", pa.concat_tables([to_arrow(_trades(day, 24)) for day in days]))
        conn.commit()
        write_records(lake, _trades(days[0], 24), "sink")
        write_records(lake, _trades(days[2], 24), "sink")
        write_records(lake, _trades(days[1], 24)[:23], "partial")  # one row short: not held
        for day in (days[0], days[2]):
            seal_partition(lake, "trade", "retention-test", day)
        now = _ns(days[2]) + 40 * NS_PER_DAY
        results = dict((plan.table, (plan, dropped)) for plan, dropped in apply_retention(conn, lake, 7, now))
        plan, dropped = results["trade"]
        assert (days[1], 24, 23) in [(d, db, lk) for v, d, db, lk in plan.missing if v == "retention-test"]
        assert dropped >= 4 and plan.cutoff_ns <= _ns(days[1])
        assert _days_in_db(conn) == [(days[1], 24), (days[2], 24)]
        # a dry run drops nothing; once the lake holds the day it is kept until sealed, then it goes
        write_records(lake, _trades(days[1], 24), "partial")
        apply_retention(conn, lake, 7, now, dry_run=True)
        assert _days_in_db(conn) == [(days[1], 24), (days[2], 24)]
        plans = apply_retention(conn, lake, 7, now)
        trade_plan = next(p for p, _ in plans if p.table == "trade")
        assert ("retention-test", days[1]) in trade_plan.unsealed
        assert _days_in_db(conn) == [(days[1], 24), (days[2], 24)]
        seal_partition(lake, "trade", "retention-test", days[1])
        plans = apply_retention(conn, lake, 7, now)
        trade_plan = next(p for p, _ in plans if p.table == "trade")
        assert not [m for m in trade_plan.missing if m[0] == "retention-test"]
        assert _days_in_db(conn) == []


def test_cli_dry_run_reports_kept_days(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    with psycopg.connect(postgres.dsn) as conn:
        with conn.cursor() as cursor:
            copy_table(cursor, "trade", to_arrow(_trades(DAY0 - dt.timedelta(days=30), 3)))
        conn.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_PG_DSN=postgres.dsn, TICKLAKE_LAKE=str(tmp_path / "empty-lake"),
               TICKLAKE_HOME=str(tmp_path / "home"))
    result = subprocess.run([str(Path(sys.executable).with_name("ticklake")), "db", "retention", "--dry-run",
                             "--keep-days", "7"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "trade        would drop chunks before" in result.stdout
    assert "kept retention-test 2019-01-30: 3 rows in Timescale, 0 in the lake" in result.stdout
    with psycopg.connect(postgres.dsn) as conn:
        assert _days_in_db(conn)[0] == (DAY0 - dt.timedelta(days=30), 3)
        conn.execute("DELETE FROM trade WHERE venue = 'retention-test'")
