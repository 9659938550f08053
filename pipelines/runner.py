"""Running the pipelines from the `ticklake` command line, with Dagster's history under TICKLAKE_HOME.

`ticklake pipelines run --from D --to D` calls `run_pipelines`: one in-process run of the daily
job per UTC day, recorded in `$TICKLAKE_HOME/dagster` (DAGSTER_HOME), so `dagster dev` started
with the same environment (`pipelines_env`) shows them; `run_days` does the same for chosen days
(`ticklake demo`: only the days its data covers). The caller resolves the database DSN
(the embedded stack's, which pipelines cannot import) and passes it here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from pipelines.definitions import build_definitions


@dataclass(frozen=True)
class DayRun:
    day: dt.date
    run_id: str
    success: bool


def dagster_home(ticklake_home: Path) -> Path:
    """`$TICKLAKE_HOME/dagster`, created: Dagster's runs, event logs and schedules live there.

    A new one gets a dagster.yaml that turns telemetry off: a market data host should not phone out."""
    path = ticklake_home.absolute() / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return path


def pipelines_env(ticklake_home: Path, lake_root: str, pg_dsn: str) -> dict[str, str]:
    """Environment for `dagster dev -m pipelines` / `dagster asset materialize -m pipelines`."""
    return {"DAGSTER_HOME": str(dagster_home(ticklake_home)), "TICKLAKE_LAKE": lake_root, "TICKLAKE_PG_DSN": pg_dsn}


def run_pipelines(first: dt.date, last: dt.date, *, ticklake_home: Path, lake_root: str, pg_dsn: str,
                  selection: list[str] | None = None) -> list[DayRun]:
    """Run the daily job (or the selected assets and their checks) for each day of [first, last]."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return list(run_days(days, ticklake_home=ticklake_home, lake_root=lake_root, pg_dsn=pg_dsn, selection=selection))


def run_days(days: Iterable[dt.date], *, ticklake_home: Path, lake_root: str, pg_dsn: str,
             selection: list[str] | None = None) -> Iterator[DayRun]:
    """Run the daily job for each of `days` (only days with data, say), yielding each run as it ends."""
    definitions = build_definitions(lake_root, pg_dsn)
    job = definitions.resolve_implicit_global_asset_job_def()
    instance = DagsterInstance.from_config(str(dagster_home(ticklake_home)))
    for day in days:
        result = job.execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False,
                                        asset_selection=[AssetKey(name) for name in selection or []] or None)
        yield DayRun(day, result.run_id, result.success)
