"""Timescale DDL derived from the contract's Arrow schemas.

Every table is a hypertable on a `time timestamptz` column, after the contract's columns: `ts_event`
floored to the microsecond (`ticklake_ts(ts_event)`; the sink computes it, storage.timescale_rows).
The exact int64 nanoseconds stay in `ts_event`, which the unique key and the query API use; `time`
is what `time_bucket('1 minute', time)`, Grafana's `$__timeFilter(time)` and chunk exclusion work on
(docs/timescale.md). A generated column cannot be a hypertable dimension, hence a stored one.

Run `python -m storage.ddl` to print the DDL a new migration starts from; the migration files
are the applied truth, and tests check that the migrated tables equal these schemas.
"""

from __future__ import annotations

import pyarrow as pa

from normalize.arrow_schema import schema_for
from normalize.records import RECORD_CLASSES, RECORD_TYPES

CHUNK_HOURS: dict[str, int] = {
    "trade": 6,
    "book_delta": 2,
    "bbo": 6,
    "book_top": 6,
    "feed_status": 24 * 7,
    "instrument": 24 * 7,
}
"""Chunk interval per table: a few hours for the high-rate tables (tens of millions of rows a day
on a small host keeps each chunk's indexes in memory), a day or a week for the sparse ones."""
DEFAULT_CHUNK_HOURS = 24
TIME_COLUMN = ("time", "timestamp with time zone", False)
"""The partitioning column every hypertable ends with: microseconds, as timestamptz holds them."""


def postgres_type(arrow_type: pa.DataType) -> str:
    """The column type that holds an Arrow type without loss."""
    if pa.types.is_timestamp(arrow_type) or pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_int32(arrow_type):
        return "integer"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type):
        return "smallint"
    if pa.types.is_float64(arrow_type):
        return "double precision"
    if pa.types.is_string(arrow_type):
        return "text"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    raise TypeError(f"no PostgreSQL type for {arrow_type}")


def columns_sql(record_type: str) -> list[tuple[str, str, bool]]:
    """(column, PostgreSQL type, nullable) for a record type, in contract order."""
    return [(f.name, postgres_type(f.type), f.nullable) for f in schema_for(record_type)]


def table_columns(record_type: str) -> list[tuple[str, str, bool]]:
    """columns_sql plus the `time` column: the table as stored (and as the sink COPYs it)."""
    return [*columns_sql(record_type), TIME_COLUMN]


def key_index_columns(record_type: str) -> list[str]:
    """The unique key index's columns (SQL): instrument and ts_event first, so the one index also
    serves every query by instrument and time, then the rest of the record's key, then its key
    flag bits as an expression (normalize.records.Record.key_columns/key_flags), then `time`: a
    unique index of a hypertable must hold its partitioning column (a function of ts_event, so
    the key means the same)."""
    cls = RECORD_CLASSES[record_type]
    rest = [c for c in cls.key_columns if c not in ("instrument", "ts_event")]
    flags = [f"(flags & {cls.key_flags})"] if cls.key_flags else []
    return ["instrument", "ts_event", *rest, *flags, "time"]


def key_index_ddl(record_type: str) -> str:
    """One row per venue event: a second copy (a redundant handler's, a backfill's) is refused.
    NULLS NOT DISTINCT: a key column the venue leaves empty (exch_seq) still identifies."""
    return (f"CREATE UNIQUE INDEX {record_type}_key ON {record_type} ({', '.join(key_index_columns(record_type))})"
            " NULLS NOT DISTINCT;\n")


def chunk_interval(record_type: str) -> str:
    return f"INTERVAL '{CHUNK_HOURS.get(record_type, DEFAULT_CHUNK_HOURS)} hours'"


def table_ddl(record_type: str) -> str:
    columns = ",\n".join(
        f"    {name} {pg_type}{'' if nullable else ' NOT NULL'}"
        for name, pg_type, nullable in table_columns(record_type)
    )
    return (
        f"CREATE TABLE {record_type} (\n{columns}\n);\n"
        f"SELECT create_hypertable('{record_type}', by_range('time', {chunk_interval(record_type)}),"
        " create_default_indexes => false);\n" + key_index_ddl(record_type)
    )


def retime_ddl(table: str, time_sql: str, interval: str, index_ddl: str) -> str:
    """Move an existing hypertable, rows and all, to one partitioned on a new last column `time`
    (`time_sql` computes it from the old row): a hypertable's dimension cannot be changed in place.
    The old table is renamed, copied into its successor and dropped; the index is built after the
    copy (cheaper than maintaining it row by row) and the roles' grants are given again."""
    return (
        f"ALTER TABLE {table} RENAME TO {table}_before_time;\n"
        f"CREATE TABLE {table} (LIKE {table}_before_time);\n"
        f"ALTER TABLE {table} ADD COLUMN time timestamptz NOT NULL;\n"
        f"SELECT create_hypertable('{table}', by_range('time', {interval}), create_default_indexes => false);\n"
        f"INSERT INTO {table} SELECT *, {time_sql} FROM {table}_before_time;\n"
        f"DROP TABLE {table}_before_time;\n"
        f"{index_ddl}"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO ticklake_writer;\n"
        f"GRANT SELECT ON {table} TO ticklake_reader;\n"
    )


def retime_contract_ddl() -> str:
    """retime_ddl of every contract table (migration 0011)."""
    return "\n".join(retime_ddl(t, "ticklake_ts(ts_event)", chunk_interval(t), key_index_ddl(t)) for t in RECORD_TYPES)


def contract_ddl() -> str:
    return "\n".join(table_ddl(t) for t in RECORD_TYPES)


if __name__ == "__main__":
    print(contract_ddl())
