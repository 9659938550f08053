"""The Dagster definitions: assets, checks, the daily schedule, retention, and their resources."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions

from pipelines.assets_analytics import ANALYTICS_ASSETS
from pipelines.assets_bars import TIME_BAR_ASSETS, bars_dollar, bars_tick, bars_volume
from pipelines.assets_funding import funding_history, funding_spreads
from pipelines.assets_seal import SEALED_ASSETS
from pipelines.checks import CHECKS
from pipelines.jobs import daily_job, daily_schedule, retention_after_daily, retention_job
from pipelines.resources import LakeResource, TimescaleResource
from ticklake.settings import load_settings


def build_definitions(lake_root: str | None = None, pg_dsn: str | None = None) -> Definitions:
    """Definitions bound to a lake and a database; by default those of `ticklake.settings`
    (TICKLAKE_LAKE, TICKLAKE_PG_DSN)."""
    if lake_root is None or pg_dsn is None:
        settings = load_settings()
        lake_root = lake_root or settings.lake_root
        pg_dsn = pg_dsn or settings.pg_dsn
    if "://" not in lake_root:
        lake_root = str(Path(lake_root).absolute())
    return Definitions(
        assets=[*SEALED_ASSETS.values(), *TIME_BAR_ASSETS.values(), bars_tick, bars_volume, bars_dollar,
                funding_history, funding_spreads, *ANALYTICS_ASSETS],
        asset_checks=CHECKS,
        jobs=[daily_job, retention_job],
        schedules=[daily_schedule],
        sensors=[retention_after_daily],
        resources={"lake": LakeResource(root=lake_root), "timescale": TimescaleResource(dsn=pg_dsn)},
    )
