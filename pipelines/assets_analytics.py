"""Market analytics assets: each reads the day's sealed ticks (or 1m bars) and calls one pure function
of pipelines/analytics.py; outputs go to the lake and, for the dashboard tables, to TimescaleDB."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from pipelines import analytics, bars, funding
from pipelines.assets_seal import sealed_key
from pipelines.lake_io import read_day, read_derived
from pipelines.partitions import SINGLE_RUN, run_days
from pipelines.publish import days_result, derived_asset, publish_day
from pipelines.resources import LakeResource, TimescaleResource

MINUTE_BARS = [AssetKey("bars_1m")]


class VolatilityConfig(Config):
    horizons: list[str] = Field(default_factory=lambda: ["1m", "5m", "1h"])
    """Horizons of the realized volatility, polars durations that are multiples of a minute."""


def analytics_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """Every analytics asset over `partitions`."""
    spread_stats = derived_asset(
        "spread_stats", "analytics", partitions, [sealed_key("bbo")],
        lambda lake, day: analytics.spread_stats(read_day(lake.root, "bbo", day)),
        "Quoted spread (price units and bps of mid) and top-of-book depth per venue, instrument and day, derived "
        "and venue-native BBO apart (pipelines/analytics.py spread_stats).")
    basis = derived_asset(
        "basis", "analytics", partitions, [sealed_key("mark_index")],
        lambda lake, day: analytics.basis(read_day(lake.root, "mark_index", day)),
        "Time-weighted mark, index and mark - index basis (price units and bps of index) per venue, instrument and "
        "hour (pipelines/analytics.py basis).")
    open_interest_changes = derived_asset(
        "open_interest_changes", "analytics", partitions, [sealed_key("open_interest")],
        lambda lake, day: analytics.open_interest_changes(read_day(lake.root, "open_interest", day)),
        "Open interest first, last and change per hour (base units, percent) (pipelines/analytics.py "
        "open_interest_changes).")
    liquidation_aggregates = derived_asset(
        "liquidation_aggregates", "analytics", partitions, [sealed_key("liquidation")],
        lambda lake, day: analytics.liquidation_aggregates(read_day(lake.root, "liquidation", day)),
        "Liquidations per venue, instrument, hour and liquidated side: count, size (base units), notional (quote "
        "units), sampled (pipelines/analytics.py liquidation_aggregates).")
    price_dispersion = derived_asset(
        "price_dispersion", "analytics", partitions, MINUTE_BARS,
        lambda lake, day: analytics.price_dispersion(read_derived(lake.root, "bars_1m", day, bars.BAR_SCHEMA)),
        "Cross-venue dispersion of perpetuals' 1m closes per underlying and minute (price units, bps of the mean); "
        "lake folder venue=all (pipelines/analytics.py price_dispersion).")
    order_flow_imbalance = derived_asset(
        "order_flow_imbalance", "analytics", partitions, [sealed_key("trade")],
        lambda lake, day: analytics.order_flow_imbalance(read_day(lake.root, "trade", day), every="1m"),
        "Aggressive buy and sell volume (base units) and imbalance (buy - sell) / (buy + sell) per venue, "
        "instrument and minute (pipelines/analytics.py order_flow_imbalance).")

    spot_perp_basis = derived_asset(
        "spot_perp_basis", "analytics", partitions, [sealed_key("bbo")],
        lambda lake, day: analytics.spot_perp_basis(read_day(lake.root, "bbo", day)),
        "Perpetual minus spot mid per minute for each spot instrument and perpetual of the same base and (dollar) "
        "quote, across venues, where both quoted in the minute (price units, bps of spot); lake folder venue=all "
        "(pipelines/analytics.py spot_perp_basis).")
    term_structure = derived_asset(
        "term_structure", "analytics", partitions, [sealed_key("bbo"), sealed_key("instrument")],
        lambda lake, day: analytics.term_structure(read_day(lake.root, "bbo", day),
                                                   read_day(lake.root, "instrument", day)),
        "Each dated future's mid against its venue's perpetual per minute: basis (price units, bps), days to the "
        "instrument master's expiry, annualized basis and rank on the curve (pipelines/analytics.py "
        "term_structure).")
    funding_comparison = derived_asset(
        "funding_comparison", "funding", partitions, [AssetKey("funding_history")],
        lambda lake, day: analytics.funding_comparison(
            read_derived(lake.root, "funding_history", day, funding.HISTORY_SCHEMA)),
        "Every perpetual's funding of the day restated per 8 hours and per year, whatever its venue's interval: "
        "last and mean, settlements, what a long paid (pipelines/analytics.py funding_comparison).")

    @asset(partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="analytics", deps=MINUTE_BARS,
           kinds={"parquet", "timescaledb"},
           description="Realized variance of log returns of 1m closes and annualized volatility (fraction per "
                       "square-root year) per venue, instrument, day and horizon (pipelines/analytics.py "
                       "realized_volatility). Also in TimescaleDB.")
    def realized_volatility(context: AssetExecutionContext, config: VolatilityConfig, lake: LakeResource,
                            timescale: TimescaleResource) -> MaterializeResult:
        per_day = {}
        for day in run_days(context):
            minute_bars = read_derived(lake.root, "bars_1m", day, bars.BAR_SCHEMA)
            frame = analytics.realized_volatility(minute_bars, tuple(config.horizons))
            per_day[day] = publish_day("realized_volatility", day, frame, lake, timescale)
        return days_result(per_day, horizons=config.horizons)

    return [spread_stats, basis, open_interest_changes, liquidation_aggregates, price_dispersion,
            order_flow_imbalance, spot_perp_basis, term_structure, funding_comparison, realized_volatility]
