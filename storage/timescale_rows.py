"""Moving contract tables in and out of the Timescale hypertables.

Writes use binary COPY (the fastest path psycopg offers); timestamps travel as their exact
int64 nanoseconds, and each row's `time` column (storage.ddl: ts_event floored to the
microsecond) is appended here as PostgreSQL's binary timestamptz, which is an int8 of
microseconds since 2000-01-01: one integer operation a row, where a datetime object would cost
a microsecond. Reads return Arrow tables with the contract schema: through ADBC's PostgreSQL
driver for the query API (read_arrow), through psycopg where a session's scratch tables matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
from psycopg import sql

from normalize.arrow_schema import plain_rows, schema_for
from storage.ddl import table_columns

if TYPE_CHECKING:
    from adbc_driver_postgresql.dbapi import Connection as AdbcConnection

COPY_TYPES = {"bigint": "int8", "integer": "int4", "smallint": "int2", "double precision": "float8",
              "text": "text", "boolean": "bool", "timestamp with time zone": "int8"}
"""Binary COPY types; timestamptz goes as the int8 it is on the wire (see the module docstring)."""
PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01 UTC, PostgreSQL's timestamp epoch, in microseconds since 1970."""


def time_value(ts_event_ns: int) -> int:
    """The `time` column of a row with this ts_event, as binary COPY takes it: microseconds since 2000,
    floored like SQL's ticklake_ts (ts_event is never before 1970, where the two would differ)."""
    return ts_event_ns // 1000 - PG_EPOCH_US


@cache
def _copy_statement(record_type: str, table: str | None = None) -> tuple[sql.Composed, tuple[str, ...], int]:
    """The COPY statement, its column types, and the position of ts_event in a contract row."""
    columns = table_columns(record_type)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table or record_type), sql.SQL(", ").join(sql.Identifier(name) for name, _, _ in columns)
    )
    ts_event = [name for name, _, _ in columns].index("ts_event")
    return statement, tuple(COPY_TYPES[pg_type] for _, pg_type, _ in columns), ts_event


def copy_rows(cursor: psycopg.Cursor, record_type: str, rows: Iterable[tuple[object, ...]],
              table: str | None = None) -> None:
    """Binary COPY of rows already in contract column order (into `table`, by default the type's),
    each with its `time` appended."""
    statement, types, ts_event = _copy_statement(record_type, table)
    epoch = PG_EPOCH_US
    with cursor.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            # time_value, inlined: a call per row would cost as much again as the rest of this line
            copy.write_row((*row, row[ts_event] // 1000 - epoch))  # type: ignore[operator]


def insert_new_rows(cursor: psycopg.Cursor, record_type: str, rows: list[tuple[object, ...]]) -> int:
    """Write the rows whose key the table does not hold yet; returns how many were new.

    COPY into a session's staging table (created once, emptied at each commit), then one INSERT
    ... ON CONFLICT DO NOTHING against the table's unique key index: about two thirds of a plain
    COPY's rate (benchmarks/bench_sink.py), and duplicates within `rows` count once. Call inside a
    transaction."""
    stage = f"ticklake_stage_{record_type}"
    cursor.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(stage), sql.Identifier(record_type)))
    copy_rows(cursor, record_type, rows, stage)
    cursor.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING").format(
        sql.Identifier(record_type), sql.Identifier(stage)))
    return cursor.rowcount


def copy_table(cursor: psycopg.Cursor, record_type: str, table: pa.Table) -> int:
    """Binary COPY an Arrow table of one record type (any column order); returns rows written."""
    table = table.select(schema_for(record_type).names)
    copy_rows(cursor, record_type, plain_rows(table))
    return table.num_rows


def create_scratch_table(conn: psycopg.Connection, record_type: str) -> None:
    """A temporary table shaped LIKE the real hypertable that shadows it for this session.

    Unqualified names resolve to pg_temp first, so copy_table/read_table then use the scratch
    table: checks and tests exercise the real column definitions without touching real data.
    """
    conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} (LIKE public.{})").format(
        sql.Identifier(record_type), sql.Identifier(record_type)))


def _select(record_type: str, where: sql.Composable | None) -> sql.Composed:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in schema_for(record_type).names), sql.Identifier(record_type))
    return query + sql.SQL(" WHERE ") + where if where is not None else query


def read_table(conn: psycopg.Connection, record_type: str, where: sql.Composable | None = None,
               params: tuple[object, ...] = ()) -> pa.Table:
    """SELECT a hypertable (optionally filtered) into an Arrow table with the contract schema, through
    psycopg's Python rows: sees the session's scratch tables (create_scratch_table); the query API
    reads with read_arrow instead."""
    schema = schema_for(record_type)
    rows = conn.execute(_select(record_type, where), params).fetchall()
    columns: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    return pa.Table.from_arrays(
        [pa.array(list(column), type=field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def select_sql(conn: psycopg.Connection, record_type: str, where: sql.Composable | None = None,
               params: tuple[object, ...] = ()) -> str:
    """The SELECT of read_table as one SQL text with its parameters bound (quoted by psycopg), for a
    client that takes plain text (read_arrow)."""
    return psycopg.ClientCursor(conn).mogrify(_select(record_type, where), params)


def read_arrow(connection: AdbcConnection, record_type: str, text: str) -> pa.Table:
    """Run select_sql's text on an ADBC PostgreSQL connection: the driver reads the server's binary
    rows into Arrow columns in C, with no Python object per value (benchmarks/bench_pg_read.py:
    several times psycopg's fetchall); the columns are then cast to the contract schema (int8 ns to
    timestamps, smallint to int8)."""
    with connection.cursor() as cursor:
        cursor.execute(text)
        table = cursor.fetch_arrow_table()
    schema = schema_for(record_type)
    return pa.Table.from_arrays([table.column(i).cast(field.type) for i, field in enumerate(schema)], schema=schema)
