"""Writing one derived asset's days: Parquet in the lake always, TimescaleDB for dashboard tables."""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from pipelines.lake_io import write_derived
from pipelines.partitions import SINGLE_RUN, run_days
from pipelines.resources import LakeResource, TimescaleResource
from pipelines.timescale_out import replace_day
from pipelines.timescale_tables import TIMESCALE_TABLES


def publish_day(asset: str, day: dt.date, frame: pl.DataFrame, lake: LakeResource,
                timescale: TimescaleResource | None = None) -> dict[str, object]:
    """Replace the day's lake files of `asset` and, when it is a dashboard table, its Timescale rows;
    returns what was written (rows per venue, Timescale rows)."""
    written: dict[str, object] = {"rows": frame.height, "venues": write_derived(lake.root, asset, day, frame)}
    if timescale is not None:
        with timescale.connect() as conn:
            written["timescale_rows"] = replace_day(conn, asset, TIMESCALE_TABLES[asset], day, frame)
    return written


def days_result(per_day: dict[dt.date, dict[str, object]], **metadata: object) -> MaterializeResult:
    """One materialization for the run's days (one day, or a backfill range run at once)."""
    rows = sum(int(entry["rows"]) for entry in per_day.values())  # type: ignore[call-overload]
    days = MetadataValue.json({day.isoformat(): entry for day, entry in per_day.items()})
    everything: dict[str, Any] = {"rows": rows, "days": days, **metadata}
    return MaterializeResult(metadata=everything)


def derived_asset(name: str, group: str, partitions: PartitionsDefinition, deps: Sequence[AssetKey | AssetDep],
                  compute: Callable[[LakeResource, dt.date], pl.DataFrame], description: str) -> AssetsDefinition:
    """A daily asset whose day is `compute(lake, day)`, published under `name`."""
    published = name in TIMESCALE_TABLES

    @asset(name=name, partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name=group, deps=deps,
           kinds={"parquet", "timescaledb"} if published else {"parquet"},
           description=description + (" Also in TimescaleDB." if published else ""))
    def derived(context: AssetExecutionContext, lake: LakeResource, timescale: TimescaleResource) -> MaterializeResult:
        return days_result({day: publish_day(name, day, compute(lake, day), lake, timescale if published else None)
                            for day in run_days(context)})

    return derived
