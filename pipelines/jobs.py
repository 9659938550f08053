"""The daily job and its schedule, and retention run after each successful day.

The schedule runs every asset (and its checks) for the previous UTC day at 00:30 UTC; a backfill
is the same job over a range of partitions. The job takes the assets' partitions (the definitions
choose them: pipelines/partitions.py), and the schedule the job's last one, the day just closed.
When a daily run succeeds, the sensor starts the retention job, which drops Timescale chunks only
for days the lake holds and has sealed (storage/retention.py).
"""

import time

from dagster import (
    AssetSelection,
    Config,
    DagsterRunStatus,
    OpExecutionContext,
    RunRequest,
    RunStatusSensorContext,
    build_schedule_from_partitioned_job,
    define_asset_job,
    job,
    op,
    run_status_sensor,
)

from pipelines.resources import LakeResource, TimescaleResource
from storage.retention import apply_retention
from ticklake.settings import load_settings

daily_job = define_asset_job("daily", selection=AssetSelection.all(),
                             description="Seal the day's lake partitions, then every derived asset and check.")

daily_schedule = build_schedule_from_partitioned_job(daily_job, hour_of_day=0, minute_of_hour=30,
                                                     name="daily_schedule")


class RetentionConfig(Config):
    keep_days: int | None = None
    """Days of ticks kept in TimescaleDB; None: TICKLAKE_RETENTION_DAYS (30)."""
    dry_run: bool = False


@op(description="Drop TimescaleDB chunks older than the kept days, only for days the lake holds and has sealed.")
def retention_op(context: OpExecutionContext, config: RetentionConfig, lake: LakeResource,
                 timescale: TimescaleResource) -> None:
    keep_days = config.keep_days if config.keep_days is not None else load_settings().retention_days
    with timescale.connect() as conn:
        results = apply_retention(conn, lake.root, keep_days, time.time_ns(), dry_run=config.dry_run)
    for plan, dropped in results:
        context.log.info(f"{plan.table}: dropped {dropped} chunks before {plan.cutoff_ns}; "
                         f"kept {len(plan.missing)} days the lake lacks, {len(plan.unsealed)} not sealed")


@job(description="Timescale retention honouring the lake's seals.")
def retention_job() -> None:
    retention_op()


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[daily_job], request_job=retention_job,
                   name="retention_after_daily", description="Run retention after each successful daily run.")
def retention_after_daily(context: RunStatusSensorContext) -> RunRequest:
    return RunRequest(run_key=context.dagster_run.run_id)
