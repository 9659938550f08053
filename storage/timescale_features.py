"""What the full (Timescale License) edition adds, used only where it is installed.

The Apache edition (what infra/install.sh builds, and every test machine has) lacks compression,
continuous aggregates and job policies; there ticklake's own code does the work (storage/retention.py
drops chunks, bars_live is kept by storage/live_bars.py), and nothing here runs. On the full edition
(storage.pg.timescale_info says `timescale`), `ticklake db migrate` also applies full_edition_sql:

* native compression of every contract hypertable's chunks older than `compress_after`, segmented by
  (venue, instrument) and ordered by ts_event, as ticks are read;
* a continuous aggregate `trade_ohlcv_1m` of market trades (trade_type null) with its refresh policy:
  minute OHLCV for long dashboard ranges. It is approximate where bars_1m and bars_live are exact
  (open and close by `time`, so trades within one microsecond tie arbitrarily; float sums), which is
  why the live bars are not built on it.

Untested against a full-edition server here (none can be installed on the development machines): the
tests check the statements generated, and that the Apache edition refuses each of them for its license
and for no other reason (so the SQL parses and names real tables and columns).
"""

from __future__ import annotations

import psycopg

from normalize.records import RECORD_TYPES
from storage.pg import timescale_info

COMPRESS_AFTER = "7 days"
"""Chunks older than this are compressed: past the days dashboards and the live path write and read."""
OHLCV_VIEW = "trade_ohlcv_1m"


def compression_sql(table: str, compress_after: str = COMPRESS_AFTER) -> list[str]:
    return [
        f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'venue, instrument', "
        "timescaledb.compress_orderby = 'ts_event, time')",
        f"SELECT add_compression_policy('{table}', compress_after => INTERVAL '{compress_after}', "
        "if_not_exists => true)",
    ]


def ohlcv_aggregate_sql() -> list[str]:
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {OHLCV_VIEW} WITH (timescaledb.continuous) AS "
        "SELECT venue, instrument, time_bucket('1 minute', time) AS time, first(price, time) AS open, "
        "max(price) AS high, min(price) AS low, last(price, time) AS close, sum(size) AS volume, "
        "sum(price * size) AS notional, count(*) AS trades FROM trade WHERE trade_type IS NULL "
        "GROUP BY venue, instrument, time_bucket('1 minute', time) WITH NO DATA",
        f"SELECT add_continuous_aggregate_policy('{OHLCV_VIEW}', start_offset => INTERVAL '1 day', "
        "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true)",
        f"GRANT SELECT ON {OHLCV_VIEW} TO ticklake_reader",
    ]


def full_edition_sql(compress_after: str = COMPRESS_AFTER) -> list[str]:
    """Every statement the full edition gets, in order; each is idempotent."""
    return [*(s for table in RECORD_TYPES for s in compression_sql(table, compress_after)), *ohlcv_aggregate_sql()]


def apply_full_edition(conn: psycopg.Connection) -> list[str]:
    """Run full_edition_sql when the full edition is installed; returns what ran (nothing on Apache)."""
    info = timescale_info(conn)
    if info is None or not info.full:
        return []
    statements = full_edition_sql()
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]
    return statements
