"""Reading a day of trades from TimescaleDB into Polars: psycopg rows (fetchall, the query API's old
path) against Arrow straight from the server (ADBC's PostgreSQL driver, the query API's path now).

One run, same rows, a throwaway EmbeddedPostgres (TimescaleDB, migrated): the real Binance USD-M
trades of ticklake/recordings cycled to N rows as bench_sink does (copy k: ts_event + k ns, trade id
+ k * 10^12), spread over one day, COPYed in. Each variant runs the query API's own SELECT (the
contract's columns of one venue over [start, end)) and ends with a polars DataFrame in the contract
schema; the frames must be equal. Interleaved, `--repeat` times; best and median rows/s, and the ratio.
Run: `python -m benchmarks.bench_pg_read [--rows N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import msgspec
import polars as pl
import psycopg

from benchmarks.bench_sink import cycled, load_trades, start_postgres
from benchmarks.versus import interleaved
from normalize.arrow_schema import to_arrow
from storage.query import live_filter
from storage.timescale_rows import copy_table, read_arrow, read_table, select_sql
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

VENUE = "bench-read"
DAY_NS = 86_400 * 10**9


def fill(dsn: str, rows: int) -> tuple[int, int]:
    """N trades over one day; returns the day's [start, end)."""
    base = load_trades()
    trades = cycled(base, rows, VENUE)
    start = min(t.ts_event for t in base) // DAY_NS * DAY_NS
    spread = [msgspec.structs.replace(t, ts_event=start + (i * DAY_NS) // rows) for i, t in enumerate(trades)]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        for offset in range(0, rows, 200_000):
            with conn.transaction():
                copy_table(cursor, "trade", to_arrow(spread[offset: offset + 200_000]))
        conn.execute("ANALYZE trade")
    return start, start + DAY_NS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ticklake-bench-read-", dir="/tmp"))
    os.chmod(root, 0o755)
    pg = EmbeddedPostgres(root / "pg", free_port())
    try:
        start_postgres(pg)
        start, end = fill(pg.dsn, args.rows)
        where, params = live_filter({VENUE: start}, None, end)
        import adbc_driver_postgresql.dbapi as adbc

        with psycopg.connect(pg.dsn, autocommit=True) as conn, adbc.connect(pg.dsn) as arrow_conn:
            text = select_sql(conn, "trade", where, params)

            def rows_path() -> pl.DataFrame:
                return pl.DataFrame(read_table(conn, "trade", where, params))

            def arrow_path() -> pl.DataFrame:
                return pl.DataFrame(read_arrow(arrow_conn, "trade", text))

            times, results = interleaved({"psycopg fetchall": rows_path, "ADBC Arrow": arrow_path}, args.repeat)
        assert results["ADBC Arrow"].equals(results["psycopg fetchall"]), "both paths read the same rows"
        count = results["ADBC Arrow"].height
        assert count == args.rows
        print(f"{count:,} trades of one day, one venue, into polars (best / median of {args.repeat}):")
        best = {name: count / min(t) for name, t in times.items()}
        for name, t in times.items():
            print(f"  {name:<18} {best[name]:>12,.0f} rows/s  median {count / statistics.median(t):>12,.0f}")
        print(f"  ratio ADBC / fetchall: {best['ADBC Arrow'] / best['psycopg fetchall']:.1f}x")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
