"""Timescale DDL derived from the contract's Arrow schemas.

Every table is an integer-time hypertable on `ts_event` (int64 ns), so the exact nanosecond
value is the partition key itself and nothing is rounded to timestamptz's microseconds.
Dashboards use Grafana's `$__unixEpochNanoFilter(ts_event)` or `ticklake_ts(ts_event)`.

Run `python -m storage.ddl` to print the DDL a new migration starts from; the migration files
are the applied truth, and tests check that the migrated tables equal these schemas.
"""

from __future__ import annotations

import pyarrow as pa

from normalize.arrow_schema import schema_for
from normalize.records import RECORD_CLASSES, RECORD_TYPES

NS_PER_HOUR = 3_600_000_000_000

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


def key_index_columns(record_type: str) -> list[str]:
    """The unique key index's columns (SQL): instrument and ts_event first, so the one index also
    serves every query by instrument and time, then the rest of the record's key, then its key
    flag bits as an expression (normalize.records.Record.key_columns/key_flags)."""
    cls = RECORD_CLASSES[record_type]
    rest = [c for c in cls.key_columns if c not in ("instrument", "ts_event")]
    flags = [f"(flags & {cls.key_flags})"] if cls.key_flags else []
    return ["instrument", "ts_event", *rest, *flags]


def key_index_ddl(record_type: str) -> str:
    """One row per venue event: a second copy (a redundant handler's, a backfill's) is refused.
    NULLS NOT DISTINCT: a key column the venue leaves empty (exch_seq) still identifies."""
    return (f"CREATE UNIQUE INDEX {record_type}_key ON {record_type} ({', '.join(key_index_columns(record_type))})"
            " NULLS NOT DISTINCT;\n")


def table_ddl(record_type: str) -> str:
    columns = ",\n".join(
        f"    {name} {pg_type}{'' if nullable else ' NOT NULL'}"
        for name, pg_type, nullable in columns_sql(record_type)
    )
    chunk_ns = CHUNK_HOURS.get(record_type, DEFAULT_CHUNK_HOURS) * NS_PER_HOUR
    return (
        f"CREATE TABLE {record_type} (\n{columns}\n);\n"
        f"SELECT create_hypertable('{record_type}', by_range('ts_event', {chunk_ns}::bigint),"
        " create_default_indexes => false);\n" + key_index_ddl(record_type)
    )


def contract_ddl() -> str:
    return "\n".join(table_ddl(t) for t in RECORD_TYPES)


if __name__ == "__main__":
    print(contract_ddl())
