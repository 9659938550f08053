"""The lake's hive layout: `<root>/<type>/venue=<venue>/date=<YYYY-MM-DD>/<part>.parquet`.

Dates are UTC days of ts_event. Polars (`hive_partitioning=True`) and DuckDB
(`hive_partitioning = true`) recover `venue` and `date` from the folder names.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

NS_PER_DAY = 86_400_000_000_000


def day_of(ts_ns: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ts_ns // NS_PER_DAY)


def partition_path(root: str, record_type: str, venue: str, day: dt.date) -> str:
    return f"{root.rstrip('/')}/{record_type}/venue={venue}/date={day.isoformat()}"


def split_partitions(table: pa.Table) -> dict[tuple[str, dt.date], pa.Table]:
    """Split a contract table into its (venue, UTC day) partitions."""
    ts = table.column("ts_event")
    days = pc.divide(ts.cast(pa.int64()), pa.scalar(NS_PER_DAY, pa.int64()))
    keyed = table.append_column("__day", days)
    parts: dict[tuple[str, dt.date], pa.Table] = {}
    for key in keyed.select(["venue", "__day"]).group_by(["venue", "__day"]).aggregate([]).to_pylist():
        venue, day = key["venue"], key["__day"]
        mask = pc.and_(pc.equal(keyed.column("venue"), venue), pc.equal(keyed.column("__day"), day))
        parts[(venue, dt.date(1970, 1, 1) + dt.timedelta(days=day))] = keyed.filter(mask).drop(["__day"])
    return parts
