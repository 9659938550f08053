"""Publishing a day of a derived table to TimescaleDB for the dashboards, idempotently.

The day's rows are deleted and the new ones COPYed in one transaction, so a re-run (or a
backfill over days already done) leaves the same rows, and a failure leaves the old ones.
Each derived table has a time column (bigint ns UTC, or a date) that places every row inside its day,
and the `time` column (timestamptz, pipelines/timescale_tables.py) written here from it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
from psycopg import sql

from pipelines.partitions import day_bounds_ns
from pipelines.timescale_tables import DerivedTable


def table_rows(frame: pl.DataFrame, columns: list[str], time: str) -> pl.DataFrame:
    """`frame`'s `columns` as a derived table holds them: ns timestamps as bigint, then `time`, the `time`
    column (ns or a date) as a timestamptz floored to the microsecond."""
    return (frame.select(columns).with_columns(pl.col(time).cast(pl.Datetime("us", "UTC")).alias("time"))
            .with_columns(pl.col(pl.Datetime("ns", "UTC")).dt.epoch("ns")))


def copy_frame(cursor: psycopg.Cursor, name: str, rows: pl.DataFrame) -> None:
    """COPY table_rows' output into table `name` (text format: a float's repr comes back bit for bit)."""
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in rows.columns))
    with cursor.copy(copy) as writer:
        for row in rows.iter_rows():
            writer.write_row(row)


def replace_day(conn: psycopg.Connection, name: str, table: DerivedTable, day: dt.date, frame: pl.DataFrame) -> int:
    """Make table `name` hold exactly `frame`'s rows for `day` (by its time column); returns rows written."""
    columns, time = list(table.columns), table.time
    start_ns, end_ns = day_bounds_ns(day)
    bounds: tuple[dt.date, dt.date] | tuple[int, int] = ((day, day + dt.timedelta(days=1)) if table.by_date
                                                         else (start_ns, end_ns))
    rows = pl.DataFrame()  # an empty output may lack columns: nothing to write, the day's old rows still go
    if frame.height:
        rows = table_rows(frame, columns, time)
        outside = rows.filter((pl.col(time) < bounds[0]) | (pl.col(time) >= bounds[1])).height
        if outside:
            raise ValueError(f"{outside} rows of {name} lie outside {day}")
    with conn.transaction(), conn.cursor() as cursor:  # by `time`, the dimension: only the day's chunk is read
        cursor.execute(sql.SQL("DELETE FROM {} WHERE time >= %s AND time < %s").format(sql.Identifier(name)),
                       (dt.datetime.combine(day, dt.time(), dt.UTC),
                        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)))
        if rows.height:
            copy_frame(cursor, name, rows)
    return rows.height
