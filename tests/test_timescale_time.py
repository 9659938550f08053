"""The `time timestamptz` dimension of every hypertable (migration 0011, docs/timescale.md): the sink fills
it exactly (ts_event floored to the microsecond), time_bucket and a `now() - interval` filter work on it
with chunk exclusion, and the migration carries rows stored before it over."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg import sql

from normalize.flags import Flag
from normalize.records import RECORD_TYPES, Trade
from storage.migrate import MIGRATIONS_DIR, migrate
from storage.query import live_filter
from storage.timescale_features import OHLCV_VIEW, apply_full_edition, full_edition_sql
from storage.timescale_rows import copy_rows, read_table
from tests.pg_databases import private_database
from ticklake.stack.postgres import EmbeddedPostgres

HOUR_NS = 3_600_000_000_000


def _trade(ts_event: int, trade_id: str, venue: str = "time-test") -> tuple[object, ...]:
    return msgspec.structs.astuple(Trade(venue, "X", "X-USDT-PERP", ts_event, ts_event + 1_000, None, None,
                                         int(Flag.LAST), 1.5, 2.0, 1, trade_id))


def _chunk_scans(plan: list[tuple[str]]) -> list[str]:
    """The chunks an EXPLAIN ANALYZE actually scanned (hypertable chunks are `_hyper_<n>_<m>_chunk`)."""
    return [line for (line,) in plan if "_chunk" in line and " on _hyper_" in line and "never executed" not in line]


@pytest.fixture(scope="module")
def dsn(postgres: EmbeddedPostgres) -> Iterator[str]:
    with private_database(postgres, "ticklake_time_test") as database:
        yield database


def test_the_sink_writes_time_as_ts_event_floored_to_the_microsecond(dsn: str) -> None:
    """copy_rows (the sink's binary COPY) appends `time`; it equals SQL's ticklake_ts and Python's floor."""
    stamps = [1_723_161_599_999_999_999, 1_723_161_600_000_000_000, 1_723_161_600_000_000_999,
              1_546_300_800_123_456_789]
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        copy_rows(cursor, "trade", [_trade(ns, f"exact-{i}") for i, ns in enumerate(stamps)])
        rows = cursor.execute("SELECT ts_event, time, time = ticklake_ts(ts_event) FROM trade "
                              "WHERE trade_id LIKE 'exact-%%' ORDER BY ts_event").fetchall()
        conn.rollback()
    assert [row[0] for row in rows] == sorted(stamps)
    for ts_event, stamp, same in rows:
        assert same
        expected = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_event // 1000)
        assert stamp == expected
    assert rows[-1][1] == dt.datetime(2024, 8, 9, tzinfo=dt.UTC)  # 999 ns past midnight is still that microsecond


def test_time_bucket_and_now_filter_scan_only_the_matching_chunks(dsn: str) -> None:
    """Trades 3 days, 2 days and 10 minutes old (three 6-hour chunks): `WHERE time > now() - interval '1 hour'`
    scans one chunk (excluded at executor startup, now() being stable), time_bucket('1 minute', time) works,
    and the query API's ns range on ts_event is pruned by the `time` bounds it adds (live_filter)."""
    now_ns = time.time_ns()
    ages = {"old-3d": 72 * HOUR_NS, "old-2d": 48 * HOUR_NS, "recent": 600_000_000_000}
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        copy_rows(cursor, "trade", [_trade(now_ns - age, name, "chunk-test") for name, age in ages.items()])
        chunks = cursor.execute("SELECT count(*) FROM show_chunks('trade')").fetchone()
        assert chunks is not None and chunks[0] >= 3
        plan = cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT time_bucket('1 minute', time) AS minute, "
            "count(*) FROM trade WHERE venue = 'chunk-test' AND time > now() - interval '1 hour' GROUP BY 1").fetchall()
        assert len(_chunk_scans(plan)) == 1, "\n".join(line for (line,) in plan)
        assert any("Chunks excluded during startup: " in line for (line,) in plan), "\n".join(line for (line,) in plan)
        buckets = cursor.execute("SELECT time_bucket('1 minute', time), count(*) FROM trade WHERE venue = 'chunk-test'"
                                 " AND time > now() - interval '1 hour' GROUP BY 1").fetchall()
        assert len(buckets) == 1 and buckets[0][1] == 1
        assert buckets[0][0] == dt.datetime.fromtimestamp((now_ns - ages["recent"]) // 60_000_000_000 * 60,
                                                          dt.UTC)

        where, params = live_filter({"chunk-test": now_ns - HOUR_NS}, None, now_ns)
        api_plan = cursor.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM trade "
                                          "WHERE {}").format(where), params).fetchall()
        assert len(_chunk_scans(api_plan)) == 1, "\n".join(line for (line,) in api_plan)
        [got] = read_table(conn, "trade", where, params).column("trade_id").to_pylist()
        assert got == "recent"
        conn.rollback()


def test_the_migration_moves_rows_stored_before_it(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """A database at 0010 holding trades and a bar gets 0011: every row is kept, with its `time`, the tables
    are partitioned on it, and the sink's COPY works on the moved table."""
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 10:
            shutil.copy(path, before / path.name)
    name = "ticklake_time_migration"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(database, before)
        stamps = [1_723_161_599_999_999_999, 1_723_075_200_000_001_000]
        with psycopg.connect(database) as conn:
            for i, ns in enumerate(stamps):
                conn.execute("INSERT INTO trade (venue, symbol, instrument, ts_event, ts_recv, flags, price, size,"
                             " side, trade_id) VALUES ('v', 'X', 'X-PERP', %s, %s, 0, 1.5, 2, 1, %s)", (ns, ns, str(i)))
            conn.execute("INSERT INTO bars_1m (venue, instrument, ts, close) VALUES ('v', 'X-PERP', %s, 3.5)",
                         (1_723_161_540_000_000_000,))
            conn.execute("INSERT INTO spread_stats (venue, instrument, date, quotes) VALUES ('v', 'X-PERP', %s, 7)",
                         (dt.date(2024, 8, 8),))
        assert 11 in [m.version for m in migrate(database)]
        with psycopg.connect(database) as conn:
            trades = conn.execute("SELECT ts_event, time FROM trade ORDER BY ts_event").fetchall()
            assert trades == [(ns, dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000))
                              for ns in sorted(stamps)]
            assert conn.execute("SELECT time, close FROM bars_1m").fetchall() == [
                (dt.datetime(2024, 8, 8, 23, 59, tzinfo=dt.UTC), 3.5)]
            assert conn.execute("SELECT time, quotes FROM spread_stats").fetchall() == [
                (dt.datetime(2024, 8, 8, tzinfo=dt.UTC), 7)]
            dimensions = dict(conn.execute("SELECT hypertable_name, column_name FROM timescaledb_information.dimensions"
                                           " WHERE hypertable_name IN ('trade', 'bars_1m', 'spread_stats')").fetchall())
            assert dimensions == {"trade": "time", "bars_1m": "time", "spread_stats": "time"}
            with conn.cursor() as cursor:
                copy_rows(cursor, "trade", [_trade(stamps[0] + 1, "after")])
            assert conn.execute("SELECT count(*) FROM trade").fetchone() == (3,)
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_full_edition_sql_is_refused_here_only_for_its_license(pg_conn: psycopg.Connection) -> None:
    """The full edition's statements (untested against that edition: none here) name every contract table and
    pass PostgreSQL's parsing and analysis: the Apache edition refuses each for its license alone, and the ones
    on the continuous aggregate because its CREATE was refused. apply_full_edition runs nothing on Apache."""
    statements = full_edition_sql()
    for record_type in RECORD_TYPES:
        assert sum(f"'{record_type}'" in s or f"TABLE {record_type} SET" in s for s in statements) == 2, record_type
    assert apply_full_edition(pg_conn) == []
    for statement in statements:
        with pytest.raises(psycopg.Error) as refused, pg_conn.transaction():
            pg_conn.execute(statement)  # type: ignore[arg-type]
        message = str(refused.value)
        assert '"apache" license' in message or f'"{OHLCV_VIEW}" does not exist' in message, (statement, message)
