"""Bar assets from the day's sealed trades: time bars at five intervals and threshold bars.

Time bars (pipelines/bars.py `time_bars`, empty buckets omitted) go to the lake as
`derived/bars_<interval>/`; 1m, 5m, 1h and 1d are also published to TimescaleDB. Tick, volume and
dollar bars are lake-only; their thresholds are run config (`ThresholdBarsConfig`).
"""

from collections.abc import Callable

import polars as pl
from dagster import AssetExecutionContext, AssetsDefinition, Config, MaterializeResult, PartitionsDefinition, asset
from pydantic import Field

from pipelines import bars
from pipelines.assets_seal import sealed_key
from pipelines.lake_io import read_day
from pipelines.partitions import SINGLE_RUN, run_days
from pipelines.publish import days_result, publish_day
from pipelines.resources import LakeResource, TimescaleResource
from pipelines.timescale_tables import TIMESCALE_TABLES

TIME_BARS = ("1s", "1m", "5m", "1h", "1d")
TRADES = [sealed_key("trade")]


def _time_bars_asset(every: str, partitions: PartitionsDefinition) -> AssetsDefinition:
    name = f"bars_{every}"
    published = name in TIMESCALE_TABLES

    @asset(name=name, partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="bars", deps=TRADES,
           kinds={"parquet", "timescaledb"} if published else {"parquet"},
           description=f"{every} OHLCV bars per venue and instrument from the day's sealed trades (UTC buckets, "
                       "empty buckets omitted)." + (" Also in TimescaleDB." if published else ""))
    def time_bars_asset(context: AssetExecutionContext, lake: LakeResource,
                        timescale: TimescaleResource) -> MaterializeResult:
        return days_result({day: publish_day(name, day, bars.time_bars(read_day(lake.root, "trade", day), every),
                                             lake, timescale if published else None)
                            for day in run_days(context)})

    return time_bars_asset


class ThresholdBarsConfig(Config):
    """Thresholds of the tick, volume and dollar bars.

    Volume and dollar thresholds are per instrument (a BTC lot is not an XRP lot): an instrument in
    `volume` / `notional` uses that threshold (base units / quote units); any other gets its day's
    total divided by `bars_per_day`, so each instrument has about that many bars a day.
    """

    ticks: int = 1000
    bars_per_day: int = 50
    volume: dict[str, float] = Field(default_factory=dict)
    notional: dict[str, float] = Field(default_factory=dict)


def _per_instrument(trades: pl.DataFrame, configured: dict[str, float], bars_per_day: int, measure: pl.Expr,
                    build: Callable[[pl.DataFrame, float], pl.DataFrame]) -> pl.DataFrame:
    """Threshold bars built one (venue, instrument) at a time with that instrument's threshold."""
    frames = []
    for (_, instrument), group in trades.partition_by(["venue", "instrument"], as_dict=True,
                                                      maintain_order=True).items():
        threshold = configured.get(str(instrument)) or group.select(measure.sum()).item() / bars_per_day
        frames.append(build(group, threshold))
    return pl.concat(frames) if frames else pl.DataFrame(schema=bars.BAR_SCHEMA)


def bar_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """The time bars of every interval of TIME_BARS, then tick, volume and dollar bars, over `partitions`."""

    @asset(partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="bars", deps=TRADES, kinds={"parquet"},
           description="Bars of `ticks` consecutive trades per venue and instrument (lake only).")
    def bars_tick(context: AssetExecutionContext, config: ThresholdBarsConfig, lake: LakeResource) -> MaterializeResult:
        return days_result({day: publish_day("bars_tick", day, bars.tick_bars(read_day(lake.root, "trade", day),
                                                                              config.ticks), lake)
                            for day in run_days(context)}, ticks=config.ticks)

    @asset(partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="bars", deps=TRADES, kinds={"parquet"},
           description="Bars closed when their volume (base units) reaches the instrument's threshold (lake only).")
    def bars_volume(context: AssetExecutionContext, config: ThresholdBarsConfig,
                    lake: LakeResource) -> MaterializeResult:
        return days_result({day: publish_day("bars_volume", day, _per_instrument(
            read_day(lake.root, "trade", day), config.volume, config.bars_per_day, pl.col("size"), bars.volume_bars),
            lake) for day in run_days(context)}, bars_per_day=config.bars_per_day)

    @asset(partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="bars", deps=TRADES, kinds={"parquet"},
           description="Bars closed when their notional (quote units) reaches the instrument's threshold (lake only).")
    def bars_dollar(context: AssetExecutionContext, config: ThresholdBarsConfig,
                    lake: LakeResource) -> MaterializeResult:
        return days_result({day: publish_day("bars_dollar", day, _per_instrument(
            read_day(lake.root, "trade", day), config.notional, config.bars_per_day,
            pl.col("price") * pl.col("size"), bars.dollar_bars), lake) for day in run_days(context)},
            bars_per_day=config.bars_per_day)

    return [*(_time_bars_asset(every, partitions) for every in TIME_BARS), bars_tick, bars_volume, bars_dollar]
