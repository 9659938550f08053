"""The pipelines' partitioning: one partition per closed UTC day.

Venue is a column (and a hive folder in every output), not a partition dimension: a day's work for
all venues is small, the cross-venue assets (funding spreads, price dispersion) need every venue
of the day at once, and one date key keeps schedules and `--partition-range` backfills plain.
Every asset accepts a range of days in one run (`BackfillPolicy.single_run()`), which
`dagster asset materialize --partition-range` requires; it processes them day by day.
"""

from __future__ import annotations

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition

from storage.lake_layout import NS_PER_DAY

START_DATE = "2021-07-01"
"""Early enough for the bundled sample captures (the first is 2021-07-22)."""

DAILY = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
"""Partitions end at the last closed day: today's partition appears after midnight UTC."""

SINGLE_RUN = BackfillPolicy.single_run()


def run_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[dt.date]:
    """The UTC days of the run: its partition, or every partition of a backfill range."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def day_bounds_ns(day: dt.date) -> tuple[int, int]:
    """[start, end) of the UTC day in ns since the epoch."""
    start = (day - dt.date(1970, 1, 1)).days * NS_PER_DAY
    return start, start + NS_PER_DAY
