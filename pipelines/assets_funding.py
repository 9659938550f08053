"""Funding assets: the day's settled funding rates per venue and instrument, and their cross-venue
spreads (pure maths in pipelines/funding.py), in the lake and in TimescaleDB."""

import datetime as dt
import warnings

import polars as pl
from dagster import AssetDep, AssetKey, AssetsDefinition, BetaWarning, PartitionsDefinition, TimeWindowPartitionMapping

from pipelines import funding
from pipelines.assets_seal import sealed_key
from pipelines.lake_io import read_day
from pipelines.partitions import day_bounds_ns
from pipelines.publish import derived_asset
from pipelines.resources import LakeResource


def _funding_window(lake: LakeResource, day: dt.date) -> pl.DataFrame:
    """Funding history from the records of the day before, the day and the day after: a settlement
    at the day's first hour is forecast the day before, and Hyperliquid stamps its settled rates a
    few ms after the hour, so the day's settlements need their neighbours."""
    records = pl.concat([read_day(lake.root, "funding", day + dt.timedelta(days=offset)) for offset in (-1, 0, 1)])
    return funding.funding_history(records)


def _within_day(frame: pl.DataFrame, column: str, day: dt.date) -> pl.DataFrame:
    start, end = day_bounds_ns(day)
    return frame.filter(pl.col(column).dt.epoch("ns").is_between(start, end, closed="left"))


def _funding_history_day(lake: LakeResource, day: dt.date) -> pl.DataFrame:
    """The settlements of the day; cumulative_funding restarts with the day (a partition's running sum)."""
    history = _within_day(_funding_window(lake, day), "funding_time", day)
    return history.with_columns(pl.col("rate").cum_sum().over(funding.KEYS).alias("cumulative_funding"))


with warnings.catch_warnings():  # Dagster flags the parameter as beta at import, on every command's stderr
    warnings.simplefilter("ignore", BetaWarning)
    FUNDING_WINDOW = [AssetDep(sealed_key("funding"), partition_mapping=TimeWindowPartitionMapping(
        start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True))]


def funding_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """funding_history and funding_spreads over `partitions`."""
    funding_history = derived_asset(
        "funding_history", "funding", partitions, FUNDING_WINDOW, _funding_history_day,
        "The settled funding rate of every funding time of the day, per venue and instrument (rate as a fraction "
        "per interval, annualized, stream vs venue history; pipelines/funding.py funding_history).")
    funding_spreads = derived_asset(
        "funding_spreads", "funding", partitions, [*FUNDING_WINDOW, AssetKey("funding_history")],
        lambda lake, day: _within_day(funding.funding_spreads(_funding_window(lake, day)), "funding_time", day),
        "Annualized funding of the same underlying across venues on the day's hourly grid, with the max - min "
        "spread (pipelines/funding.py funding_spreads; settlements of the next day cover the day's last hours).")
    return [funding_history, funding_spreads]
