"""The pipelines' partitioning: one partition per UTC day, from the first day of the lake's history.

Venue is a column (and a hive folder in every output), not a partition dimension: a day's work for
all venues is small, the cross-venue assets (funding spreads, price dispersion) need every venue
of the day at once, and one date key keeps schedules and `--partition-range` backfills plain.
Every asset accepts a range of days in one run (`BackfillPolicy.single_run()`), which
`dagster asset materialize --partition-range` requires; it processes them day by day.

The first partition is the earliest day present in the lake (any record type), so history from
old captures can be sealed like yesterday's, or the day set by TICKLAKE_PIPELINES_START. Dagster
fixes a partition set when the definitions load: a day older than the first one becomes a
partition once they load again (a new `ticklake pipelines run`, or a reload in the Dagster UI).
"""

from __future__ import annotations

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

from normalize.records import RECORD_TYPES
from storage.lake_layout import NS_PER_DAY
from storage.parquet_files import lake_partitions

SINGLE_RUN = BackfillPolicy.single_run()


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def lake_days(lake_root: str) -> list[dt.date]:
    """UTC days with a folder of any record type in the lake, sorted (derived outputs not counted)."""
    return sorted({day for record_type in RECORD_TYPES for _, day in lake_partitions(lake_root, record_type)})


def first_partition_day(lake_root: str, configured: dt.date | None = None) -> dt.date:
    """The first partition: `configured` (TICKLAKE_PIPELINES_START) if set, else the lake's earliest
    day; today for an empty lake (nothing to run yet)."""
    if configured is not None:
        return configured
    days = lake_days(lake_root)
    return days[0] if days else utc_today()


def daily_partitions(first_day: dt.date, *, through_today: bool = False) -> DailyPartitionsDefinition:
    """Partitions from `first_day` through the last closed UTC day, or through today's open day.

    Schedules, sensors and the Dagster UI get closed days only (a backfill there never reaches a day
    still being written); `ticklake pipelines run` adds today, which it runs without the seal."""
    return DailyPartitionsDefinition(start_date=first_day.isoformat(), timezone="UTC",
                                     end_offset=1 if through_today else 0)


def run_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[dt.date]:
    """The UTC days of the run: its partition, or every partition of a backfill range."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def day_bounds_ns(day: dt.date) -> tuple[int, int]:
    """[start, end) of the UTC day in ns since the epoch."""
    start = (day - dt.date(1970, 1, 1)).days * NS_PER_DAY
    return start, start + NS_PER_DAY
