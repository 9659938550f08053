"""The Dagster definitions: assets, checks, the daily schedule, retention, and their resources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dagster import Definitions

from pipelines.assets_analytics import analytics_assets
from pipelines.assets_bars import bar_assets
from pipelines.assets_funding import funding_assets
from pipelines.assets_seal import sealed_assets
from pipelines.checks import CHECKS
from pipelines.jobs import daily_job, daily_schedule, retention_after_daily, retention_job
from pipelines.partitions import daily_partitions, first_partition_day
from pipelines.resources import LakeResource, TimescaleResource
from ticklake.settings import load_settings


def build_definitions(lake_root: str | None = None, pg_dsn: str | None = None, first_day: dt.date | None = None,
                      *, through_today: bool = False) -> Definitions:
    """Definitions bound to a lake and a database; by default those of `ticklake.settings`
    (TICKLAKE_LAKE, TICKLAKE_PG_DSN, and TICKLAKE_PIPELINES_START for `first_day`).

    Partitions start at `first_day`, else at the lake's earliest day (pipelines/partitions.py), and end
    at the last closed UTC day, or at today's open day with `through_today`."""
    if lake_root is None or pg_dsn is None:
        settings = load_settings()
        lake_root = lake_root or settings.lake_root
        pg_dsn = pg_dsn or settings.pg_dsn
        first_day = first_day or settings.pipelines_start
    if "://" not in lake_root:
        lake_root = str(Path(lake_root).absolute())
    partitions = daily_partitions(first_partition_day(lake_root, first_day), through_today=through_today)
    return Definitions(
        assets=[*sealed_assets(partitions), *bar_assets(partitions), *funding_assets(partitions),
                *analytics_assets(partitions)],
        asset_checks=CHECKS,
        jobs=[daily_job, retention_job],
        schedules=[daily_schedule],
        sensors=[retention_after_daily],
        resources={"lake": LakeResource(root=lake_root), "timescale": TimescaleResource(dsn=pg_dsn)},
    )
