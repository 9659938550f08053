"""Market analytics from the lake's records and bars: pure polars functions, one table each.

Inputs are frames as read from the lake (contract columns, times Datetime("ns", "UTC"), plus `venue`) or
the bars of `pipelines.bars`. Outputs are sorted by their key columns. Units: prices in quote currency
per base unit, sizes in base units, notionals in quote currency, bps = 1e-4 (a basis point of the
reference price named per column), times Datetime("ns", "UTC") at the start of their hour, minute or
bucket, `date` a UTC day.
"""

from __future__ import annotations

import polars as pl

from normalize.flags import DERIVED, SAMPLED
from pipelines.funding import underlying

TS = pl.Datetime("ns", "UTC")
KEYS = ("venue", "instrument")
SECONDS_PER_YEAR = 365 * 24 * 3600
BPS = 10_000.0


def _seconds(every: str) -> float:
    """Length of a fixed polars duration ("1m", "5m", "1h") in seconds."""
    start = pl.datetime(1970, 1, 1, time_unit="ns", time_zone="UTC")
    return pl.select((start.dt.offset_by(every) - start).dt.total_nanoseconds()).item() / 1e9


def realized_volatility(bars: pl.DataFrame, horizons: tuple[str, ...] = ("1m", "5m", "1h")) -> pl.DataFrame:
    """Realized volatility from log returns of closes, per (venue, instrument, UTC day, horizon).

    For each horizon h (a multiple of the bars' interval), the close of each h bucket is the close of its
    last bar; r = ln(close / previous close) between consecutive non-empty buckets of the same instrument
    and day (a day's first bucket has no return: days are independent, as the daily partitions are), and
    such a return spans `periods` = buckets elapsed (more than 1 across empty buckets).

    Columns: venue, instrument, date, horizon, returns (count), periods, realized_variance = sum of r^2
    (the day's, over the covered span), annualized_vol = sqrt(realized_variance / periods * periods per
    year), with 365 * 24 h a year (crypto trades every day): a fraction per square-root year, 0.5 = 50 %.
    Instruments with no return on a day are left out.
    """
    frames = [_realized(bars, horizon) for horizon in horizons]
    schema = {"venue": pl.String(), "instrument": pl.String(), "date": pl.Date(), "horizon": pl.String(),
              "returns": pl.Int64(), "periods": pl.Int64(), "realized_variance": pl.Float64(),
              "annualized_vol": pl.Float64()}
    return pl.concat(frames).select([pl.col(n).cast(t) for n, t in schema.items()]) if frames else pl.DataFrame(
        schema=schema)


def _realized(bars: pl.DataFrame, horizon: str) -> pl.DataFrame:
    seconds = _seconds(horizon)
    closes = (bars.sort("ts").group_by(*KEYS, pl.col("ts").dt.truncate(horizon).alias("bucket"))
              .agg(pl.col("close").last()).sort(*KEYS, "bucket")
              .with_columns(pl.col("bucket").dt.date().alias("date")))
    day = [*KEYS, "date"]
    returns = closes.with_columns(
        (pl.col("close") / pl.col("close").shift(1).over(day)).log().alias("r"),
        ((pl.col("bucket") - pl.col("bucket").shift(1).over(day)).dt.total_nanoseconds() / (seconds * 1e9))
        .round(0).cast(pl.Int64).alias("periods")).filter(pl.col("r").is_not_null())
    return (returns.group_by(day)
            .agg(pl.len().alias("returns"), pl.col("periods").sum(),
                 (pl.col("r") ** 2).sum().alias("realized_variance"))
            .with_columns(pl.lit(horizon).alias("horizon"),
                          (pl.col("realized_variance") / pl.col("periods") * (SECONDS_PER_YEAR / seconds)).sqrt()
                          .alias("annualized_vol"))
            .sort(*day))


def spread_stats(bbo: pl.DataFrame) -> pl.DataFrame:
    """Quoted spread and top-of-book depth per (venue, instrument, UTC day, derived), over the bbo rows that
    have both sides (one sample per quote update, not time-weighted). `derived` tells BBOs ticklake derived
    from its own book (DERIVED) from the venue's own BBO feed: the two are summarized apart.

    Columns: quotes (rows used), spread_mean, spread_median, spread_p95 (ask - bid, price units),
    spread_bps_mean, spread_bps_median, spread_bps_p95 ((ask - bid) / mid * 1e4), bid_size_mean,
    ask_size_mean (base units), crossed_share (bid > ask), locked_share (bid = ask), as fractions of quotes.
    Percentiles interpolate linearly between the closest ranks.
    """
    both = bbo.filter(pl.col("bid_price").is_not_null() & pl.col("ask_price").is_not_null())
    spread = pl.col("ask_price") - pl.col("bid_price")
    keys = [*KEYS, pl.col("ts_event").dt.date().alias("date"), ((pl.col("flags") & DERIVED) != 0).alias("derived")]
    return (both.with_columns(spread.alias("_spread"),
                              (spread / ((pl.col("ask_price") + pl.col("bid_price")) / 2) * BPS).alias("_bps"))
            .group_by(keys)
            .agg(pl.len().cast(pl.Int64).alias("quotes"),
                 pl.col("_spread").mean().alias("spread_mean"), pl.col("_spread").median().alias("spread_median"),
                 pl.col("_spread").quantile(0.95, "linear").alias("spread_p95"),
                 pl.col("_bps").mean().alias("spread_bps_mean"), pl.col("_bps").median().alias("spread_bps_median"),
                 pl.col("_bps").quantile(0.95, "linear").alias("spread_bps_p95"),
                 pl.col("bid_size").mean().alias("bid_size_mean"), pl.col("ask_size").mean().alias("ask_size_mean"),
                 (pl.col("bid_price") > pl.col("ask_price")).mean().alias("crossed_share"),
                 (pl.col("bid_price") == pl.col("ask_price")).mean().alias("locked_share"))
            .sort(*KEYS, "date", "derived"))


def basis(mark_index: pl.DataFrame) -> pl.DataFrame:
    """Mark minus index per (venue, instrument, hour), time-weighted.

    Uses rows carrying both prices (Binance, Bybit and Hyperliquid publish them together; OKX publishes
    the index under its own `<BASE>-<QUOTE>-INDEX` instrument, which is not matched here). Each observation
    holds from its ts_event until the instrument's next one, the last until the end of its hour; an hour's
    averages weight each observation by the time it held within that hour (the hour before an instrument's
    first observation is not covered).

    Columns: hour, observations (made within the hour), covered_s (seconds of the hour with a value), mark,
    index (time-weighted mean prices), basis (mark - index, price units), basis_bps ((mark - index) /
    index * 1e4), both time-weighted means.
    """
    rows = (mark_index.filter(pl.col("mark_price").is_not_null() & pl.col("index_price").is_not_null())
            .sort(*KEYS, "ts_event", "ts_recv").select(*KEYS, "ts_event", "mark_price", "index_price"))
    hour_end = pl.col("ts_event").dt.truncate("1h").dt.offset_by("1h")
    held = rows.with_columns(pl.col("ts_event").shift(-1).over(KEYS).fill_null(hour_end).alias("_until"))
    hours = pl.datetime_ranges(pl.col("ts_event").dt.truncate("1h"), pl.col("_until") - pl.duration(nanoseconds=1),
                               interval="1h", time_unit="ns")
    spans = held.with_columns(hours.alias("hour")).explode("hour").with_columns(
        (pl.min_horizontal("_until", pl.col("hour").dt.offset_by("1h"))
         - pl.max_horizontal("ts_event", "hour")).dt.total_nanoseconds().alias("_held_ns"),
        (pl.col("ts_event").dt.truncate("1h") == pl.col("hour")).alias("_made_here"))
    weight = pl.col("_held_ns")
    spread = pl.col("mark_price") - pl.col("index_price")

    def weighted(value: pl.Expr) -> pl.Expr:
        return (value * weight).sum() / weight.sum()

    return (spans.filter(weight > 0).group_by(*KEYS, "hour")
            .agg(pl.col("_made_here").sum().cast(pl.Int64).alias("observations"),
                 (weight.sum() / 1e9).alias("covered_s"),
                 weighted(pl.col("mark_price")).alias("mark"), weighted(pl.col("index_price")).alias("index"),
                 weighted(spread).alias("basis"), weighted(spread / pl.col("index_price") * BPS).alias("basis_bps"))
            .sort(*KEYS, "hour"))


def open_interest_changes(open_interest: pl.DataFrame) -> pl.DataFrame:
    """Open interest over each hour per (venue, instrument): observations, first and last (base units, by
    ts_event then ts_recv), change = last - first (base units), pct = 100 * change / first (percent; null
    when first is 0), first_ts, last_ts."""
    return (open_interest.sort("ts_event", "ts_recv")
            .group_by(*KEYS, pl.col("ts_event").dt.truncate("1h").alias("hour"))
            .agg(pl.len().cast(pl.Int64).alias("observations"),
                 pl.col("open_interest").first().alias("first"), pl.col("open_interest").last().alias("last"),
                 pl.col("ts_event").first().alias("first_ts"), pl.col("ts_event").last().alias("last_ts"))
            .with_columns((pl.col("last") - pl.col("first")).alias("change"))
            .with_columns(pl.when(pl.col("first") != 0).then(pl.col("change") / pl.col("first") * 100).alias("pct"))
            .select(*KEYS, "hour", "observations", "first", "last", "change", "pct", "first_ts", "last_ts")
            .sort(*KEYS, "hour"))


def liquidation_aggregates(liquidations: pl.DataFrame) -> pl.DataFrame:
    """Liquidations per (venue, instrument, hour, side), side being the liquidated position (+1 long, -1
    short): count, size (base units), notional (price * size, quote units), and sampled: whether any row
    was SAMPLED (the venue publishes at most one liquidation per symbol and second, so count, size and
    notional are lower bounds)."""
    return (liquidations.group_by(*KEYS, pl.col("ts_event").dt.truncate("1h").alias("hour"), "side")
            .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("size").sum(),
                 (pl.col("price") * pl.col("size")).sum().alias("notional"),
                 ((pl.col("flags") & SAMPLED) != 0).any().alias("sampled"))
            .sort(*KEYS, "hour", "side"))


def price_dispersion(bars: pl.DataFrame) -> pl.DataFrame:
    """Cross-venue dispersion of the close per underlying and minute, over perpetuals (ids ending in -PERP:
    BTC-USDT-PERP, BTC-USDC-PERP and BTC-USD-PERP are all BTC; the quote currencies' own differences are
    part of what is measured). Each instrument's close of the minute is its last bar's close in it.

    Columns: underlying, ts (minute), instruments (count), max_close, min_close, mean_close, std_close
    (sample standard deviation, null for one instrument; price units), range_bps = (max - min) / mean * 1e4,
    std_bps = std / mean * 1e4.
    """
    closes = (bars.filter(pl.col("instrument").str.ends_with("-PERP")).sort("ts")
              .group_by(*KEYS, pl.col("ts").dt.truncate("1m"))
              .agg(pl.col("close").last())
              .with_columns(underlying(pl.col("instrument")).alias("underlying")))
    close = pl.col("close")
    return (closes.group_by("underlying", "ts")
            .agg(pl.len().cast(pl.Int64).alias("instruments"), close.max().alias("max_close"),
                 close.min().alias("min_close"), close.mean().alias("mean_close"), close.std().alias("std_close"))
            .with_columns(((pl.col("max_close") - pl.col("min_close")) / pl.col("mean_close") * BPS).alias("range_bps"),
                          (pl.col("std_close") / pl.col("mean_close") * BPS).alias("std_bps"))
            .sort("underlying", "ts"))


def order_flow_imbalance(trades: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """Aggressor imbalance per (venue, instrument, bucket of `every`, UTC-aligned as time bars): buy_volume
    and sell_volume (base units, aggressive buys side +1 and sells side -1; side 0 counts in neither) and
    imbalance = (buy - sell) / (buy + sell), in [-1, 1], null when both are 0."""
    size, side = pl.col("size"), pl.col("side")
    buy, sell = pl.col("buy_volume"), pl.col("sell_volume")
    return (trades.group_by(*KEYS, pl.col("ts_event").dt.truncate(every).alias("ts"))
            .agg(pl.when(side == 1).then(size).otherwise(0.0).sum().alias("buy_volume"),
                 pl.when(side == -1).then(size).otherwise(0.0).sum().alias("sell_volume"))
            .with_columns(pl.when(buy + sell > 0).then((buy - sell) / (buy + sell)).alias("imbalance"))
            .sort(*KEYS, "ts"))

