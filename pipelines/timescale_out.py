"""Publishing a day of a derived table to TimescaleDB for the dashboards, idempotently.

The day's rows are deleted and the new ones COPYed in one transaction, so a re-run (or a
backfill over days already done) leaves the same rows, and a failure leaves the old ones.
Each derived table has a time column (bigint ns UTC, or a date) that places every row inside its day.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
from psycopg import sql

from pipelines.partitions import day_bounds_ns
from pipelines.timescale_tables import DerivedTable


def replace_day(conn: psycopg.Connection, name: str, table: DerivedTable, day: dt.date, frame: pl.DataFrame) -> int:
    """Make table `name` hold exactly `frame`'s rows for `day` (by its time column); returns rows written."""
    columns, time = list(table.columns), table.time
    start_ns, end_ns = day_bounds_ns(day)
    bounds: tuple[dt.date, dt.date] | tuple[int, int] = ((day, day + dt.timedelta(days=1)) if table.by_date
                                                         else (start_ns, end_ns))
    rows = pl.DataFrame()  # an empty output may lack columns: nothing to write, the day's old rows still go
    if frame.height:
        rows = frame.select(columns).with_columns(pl.col(pl.Datetime).dt.epoch("ns"))
        outside = rows.filter((pl.col(time) < bounds[0]) | (pl.col(time) >= bounds[1])).height
        if outside:
            raise ValueError(f"{outside} rows of {name} lie outside {day}")
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(
            sql.Identifier(name), sql.Identifier(time), sql.Identifier(time)), bounds)
        with cursor.copy(copy) as writer:
            for row in rows.iter_rows():
                writer.write_row(row)
    return rows.height
