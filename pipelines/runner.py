"""Running the pipelines from the `ticklake` command line, with Dagster's history under TICKLAKE_HOME.

`ticklake pipelines run --from D --to D` checks the range with `plan_days` (one line of error for a
bad one: `PipelinesError`), then `run_days` runs the daily job once per UTC day of the range that has
data in the lake, in-process, recorded in `$TICKLAKE_HOME/dagster` (DAGSTER_HOME), so `dagster dev`
started with the same environment (`pipelines_env`) shows them. `ticklake demo` calls `run_days` for
the days its data covers. The caller resolves the database DSN (the embedded stack's, which pipelines
cannot import) and passes it here.

Today's open day runs partially: every asset but the `sealed_<type>` seals, from the files present
(bars, funding, analytics and their checks), tagged `ticklake/partial_day` in Dagster. Sealing a day
still being written would move the query API's watermark past rows that are only in TimescaleDB yet
(storage/query.py), so only the run after midnight seals it, and that run replaces the partial outputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions

from normalize.records import RECORD_TYPES
from pipelines.assets_seal import sealed_key
from pipelines.definitions import build_definitions
from pipelines.partitions import first_partition_day, lake_days, utc_today
from ticklake.settings import SettingsError

TODAY = "today"
PARTIAL_TAG = "ticklake/partial_day"


class PipelinesError(SettingsError):
    """A day range or selection the pipelines cannot run, worded for the user (the CLI prints it as one
    line, like every SettingsError)."""


@dataclass(frozen=True)
class DayRun:
    day: dt.date
    run_id: str
    success: bool
    partial: bool = False
    """Today's open day: derived assets from the files present, not sealed."""


@dataclass(frozen=True)
class DayPlan:
    days: list[dt.date]
    """The range's days with data in the lake, in order: one run each."""
    skipped: list[dt.date]
    """The range's days without data in the lake: nothing to run."""


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


def parse_day(text: str, option: str, today: dt.date) -> dt.date:
    """`text` as a UTC day: YYYY-MM-DD, or 'today'."""
    if text.strip().lower() == TODAY:
        return today
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PipelinesError(f"{option} '{text}' is not a day: give YYYY-MM-DD or 'today'") from None


def plan_days(first: dt.date, last: dt.date, *, lake_root: str, first_day: dt.date | None = None,
              today: dt.date | None = None) -> DayPlan:
    """The days of [first, last] to run, or a PipelinesError saying why the range cannot run: reversed,
    in the future, before the first partition (`first_day`, else the lake's earliest day), or without
    any data in the lake."""
    today = today or utc_today()
    if last < first:
        raise PipelinesError(f"--to {last} is before --from {first}")
    if last > today:
        raise PipelinesError(f"{last} is in the future: today is {today} (UTC)")
    start = first_partition_day(lake_root, first_day)
    if first < start:
        origin = "TICKLAKE_PIPELINES_START" if first_day is not None else "the earliest day in the lake"
        raise PipelinesError(f"--from {first} is before the first partition, {start} ({origin})")
    with_data = {day for day in lake_days(lake_root) if first <= day <= last}
    if not with_data:
        raise PipelinesError(f"no data in the lake on {first}" if first == last
                             else f"no data in the lake from {first} to {last}")
    every_day = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return DayPlan(sorted(with_data), [day for day in every_day if day not in with_data])


def _selections(definitions: Definitions, selection: list[str] | None) -> tuple[list[AssetKey], list[AssetKey]]:
    """Asset keys to run on a closed day and on today's open day (the same without the seals)."""
    known = {spec.key for spec in definitions.resolve_all_asset_specs()}
    keys = [AssetKey(name) for name in selection] if selection else sorted(known, key=AssetKey.to_user_string)
    unknown = [key.to_user_string() for key in keys if key not in known]
    if unknown:
        names = ", ".join(sorted(key.to_user_string() for key in known))
        raise PipelinesError(f"unknown asset {', '.join(unknown)} (known: {names})")
    seals = {sealed_key(record_type) for record_type in RECORD_TYPES}
    return keys, [key for key in keys if key not in seals]


def run_days(days: Iterable[dt.date], *, ticklake_home: Path, lake_root: str, pg_dsn: str,
             selection: list[str] | None = None, first_day: dt.date | None = None) -> Iterator[DayRun]:
    """Run the daily job (or the selected assets and their checks) for each of `days` (only days with
    data, say), yielding each run as it ends; today's open day without its seals."""
    days = list(days)
    today = utc_today()
    definitions = build_definitions(lake_root, pg_dsn, first_day, through_today=True)
    closed_keys, open_keys = _selections(definitions, selection)
    if today in days and not open_keys:
        raise PipelinesError(f"today ({today}) is still open and is never sealed: select other assets, or end "
                             "the range yesterday")
    job = definitions.resolve_implicit_global_asset_job_def()
    instance = DagsterInstance.from_config(str(dagster_home(ticklake_home)))
    for day in days:
        partial = day == today
        result = job.execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False,
                                        asset_selection=open_keys if partial else closed_keys,
                                        tags={PARTIAL_TAG: "true"} if partial else None)
        yield DayRun(day, result.run_id, result.success, partial)
