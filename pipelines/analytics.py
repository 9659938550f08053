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



DOLLARS = ("USD", "USDT", "USDC")
"""Quote currencies compared as one dollar: spot BTC-USD meets BTC-USDT-PERP, their own difference being part
of the basis measured (as in price_dispersion)."""


def quote_mids(bbo: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """The last mid of each (venue, instrument, bucket of `every`, UTC-aligned as time bars), from bbo rows with
    both sides: the venue's own quotes where the bucket has any, else ticklake's book-derived BBO (DERIVED),
    so a venue quoting through both is not counted twice and one quoting only by book still has a mid.

    Columns: venue, instrument, ts (bucket start), mid ((bid + ask) / 2, price units), quote_ts (ts_event of
    the quote used)."""
    both = bbo.filter(pl.col("bid_price").is_not_null() & pl.col("ask_price").is_not_null())
    derived = (pl.col("flags") & DERIVED) != 0
    mid = (pl.col("bid_price") + pl.col("ask_price")) / 2
    return (both.sort("ts_event", "ts_recv")
            .group_by(*KEYS, pl.col("ts_event").dt.truncate(every).alias("ts"))
            .agg(mid.filter(~derived).last().alias("_native"), pl.col("ts_event").filter(~derived).last().alias("_nts"),
                 mid.filter(derived).last().alias("_derived"), pl.col("ts_event").filter(derived).last().alias("_dts"))
            .select(*KEYS, "ts", pl.coalesce("_native", "_derived").alias("mid"),
                    pl.when(pl.col("_native").is_not_null()).then("_nts").otherwise("_dts").alias("quote_ts"))
            .sort(*KEYS, "ts"))


def _id_parts(instrument: str = "instrument") -> list[pl.Expr]:
    """base, quote and the id's third part ("PERP", an expiry "YYYYMMDD", or null for spot) of a normalized id."""
    parts = pl.col(instrument).str.split("-")
    return [parts.list.get(0, null_on_oob=True).alias("base"), parts.list.get(1, null_on_oob=True).alias("quote"),
            parts.list.get(2, null_on_oob=True).alias("_third"), parts.list.len().alias("_parts")]


def _dollar(quote: pl.Expr) -> pl.Expr:
    return pl.when(quote.is_in(DOLLARS)).then(pl.lit("USD")).otherwise(quote)


def spot_perp_basis(bbo: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """Perpetual minus spot per bucket, for every spot instrument (`BASE-QUOTE`) against every perpetual
    (`BASE-QUOTE-PERP`) of the same base and quote, any venue, USD, USDT and USDC counting as one quote
    (DOLLARS). A pair has a row only for the buckets where both legs quoted (quote_mids: the last mid of the
    bucket, so the legs are at most one bucket apart).

    Columns: underlying (the base), ts (bucket start), spot_venue, spot_instrument, perp_venue,
    perp_instrument, spot_mid, perp_mid (price units), spot_ts, perp_ts (the quotes' ts_event), basis =
    perp_mid - spot_mid (price units), basis_bps = basis / spot_mid * 1e4.
    """
    mids = quote_mids(bbo, every).with_columns(_id_parts()).with_columns(_dollar(pl.col("quote")).alias("_dollar"))
    legs = ["venue", "instrument", "mid", "quote_ts"]
    spot = mids.filter(pl.col("_parts") == 2).select("base", "_dollar", "ts", *[pl.col(c).alias(f"spot_{c}")
                                                                                 for c in legs])
    perp = mids.filter((pl.col("_parts") == 3) & (pl.col("_third") == "PERP")).select(
        "base", "_dollar", "ts", *[pl.col(c).alias(f"perp_{c}") for c in legs])
    basis = pl.col("perp_mid") - pl.col("spot_mid")
    return (spot.join(perp, on=["base", "_dollar", "ts"], how="inner")
            .select(pl.col("base").alias("underlying"), "ts", "spot_venue", "spot_instrument", "perp_venue",
                    "perp_instrument", "spot_mid", "perp_mid", pl.col("spot_quote_ts").alias("spot_ts"),
                    pl.col("perp_quote_ts").alias("perp_ts"), basis.alias("basis"),
                    (basis / pl.col("spot_mid") * BPS).alias("basis_bps"))
            .sort("underlying", "ts", "spot_venue", "spot_instrument", "perp_venue", "perp_instrument"))


def term_structure(bbo: pl.DataFrame, instruments: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """Each dated future against its venue's perpetual of the same base and quote, per bucket where both
    quoted (quote_mids), with the basis annualized to the future's expiry: the curve of a venue's futures
    (Deribit, Kraken Futures, OKX, Binance quarterlies) in one frame.

    Futures are ids `BASE-QUOTE-YYYYMMDD`; their expiry is the exact `expiry_ts` of the venue's instrument
    records given (the latest per instrument): a future without one is left out, as is a bucket at or after
    its expiry.

    Columns: venue, underlying (the base), quote, ts (bucket start), instrument (the future), expiry
    (Datetime ns UTC), reference_instrument (the perpetual), future_mid, reference_mid (price units),
    basis = future_mid - reference_mid (price units), basis_bps = basis / reference_mid * 1e4,
    days_to_expiry (days of 86,400 s, fractional), annualized_basis = (future_mid / reference_mid - 1) *
    365 / days_to_expiry (simple, a fraction per year), rank (1 = nearest expiry at that bucket).
    """
    mids = quote_mids(bbo, every).with_columns(_id_parts())
    expiries = (instruments.filter(pl.col("expiry_ts").is_not_null()).sort("ts_event", "ts_recv")
                .group_by(*KEYS).agg(pl.col("expiry_ts").last().alias("expiry")))
    future = (mids.filter((pl.col("_parts") == 3) & pl.col("_third").str.contains(r"^\d{8}$"))
              .join(expiries, on=KEYS, how="inner")
              .select("venue", "base", "quote", "ts", "instrument", "expiry", pl.col("mid").alias("future_mid")))
    reference = mids.filter((pl.col("_parts") == 3) & (pl.col("_third") == "PERP")).select(
        "venue", "base", "quote", "ts", pl.col("instrument").alias("reference_instrument"),
        pl.col("mid").alias("reference_mid"))
    days = (pl.col("expiry") - pl.col("ts")).dt.total_nanoseconds() / (86_400 * 1e9)
    basis = pl.col("future_mid") - pl.col("reference_mid")
    curve = ["venue", "base", "quote", "reference_instrument", "ts"]
    return (future.join(reference, on=["venue", "base", "quote", "ts"], how="inner")
            .filter(pl.col("expiry") > pl.col("ts"))
            .with_columns(days.alias("days_to_expiry"))
            .select("venue", pl.col("base").alias("underlying"), "quote", "ts", "instrument", "expiry",
                    "reference_instrument", "future_mid", "reference_mid", basis.alias("basis"),
                    (basis / pl.col("reference_mid") * BPS).alias("basis_bps"), "days_to_expiry",
                    ((pl.col("future_mid") / pl.col("reference_mid") - 1) * 365 / pl.col("days_to_expiry"))
                    .alias("annualized_basis"),
                    pl.col("expiry").rank("dense").over(curve)
                    .cast(pl.Int64).alias("rank"))
            .sort("venue", "underlying", "quote", "ts", "expiry", "reference_instrument"))


EIGHT_HOURS_S = 8 * 3600


def funding_comparison(history: pl.DataFrame) -> pl.DataFrame:
    """Funding of every perpetual in one unit per (venue, instrument, UTC day of the settlement), from
    `pipelines.funding.funding_history` rows: venues settle every hour (Hyperliquid, Kraken Futures), 4 h or
    8 h (Binance, Bybit, OKX, BitMEX, Deribit), so each settled rate is restated per 8 hours (rate *
    28,800 / interval_s) and per year. Rates are the contract's fractions of notional per interval as the
    normalizers give them (Kraken Futures' relative rate, not its absolute one in quote currency per
    contract). A perpetual whose interval is unknown keeps its row with null restated rates (the
    `funding_intervals_known` check names it).

    Columns: venue, instrument, underlying, date, settlements, interval_s (of the day's last settlement,
    s), rate_last (fraction per interval), rate_8h_last, rate_8h_mean (fraction per 8 h), annualized_last,
    annualized_mean (fraction per year), funding_paid (sum of the day's rates: what a long position paid per
    unit of notional, negative when it received).
    """
    rate_8h = pl.col("rate") * EIGHT_HOURS_S / pl.col("interval_s")
    return (history.filter(pl.col("instrument").str.ends_with("-PERP")).sort("funding_time")
            .with_columns(rate_8h.alias("_rate_8h"), pl.col("funding_time").dt.date().alias("date"))
            .group_by(*KEYS, "date")
            .agg(pl.len().cast(pl.Int64).alias("settlements"), pl.col("interval_s").last(),
                 pl.col("rate").last().alias("rate_last"), pl.col("_rate_8h").last().alias("rate_8h_last"),
                 pl.col("_rate_8h").mean().alias("rate_8h_mean"),
                 pl.col("annualized_rate").last().alias("annualized_last"),
                 pl.col("annualized_rate").mean().alias("annualized_mean"), pl.col("rate").sum().alias("funding_paid"))
            .with_columns(underlying(pl.col("instrument")).alias("underlying"))
            .select(*KEYS, "underlying", "date", "settlements", "interval_s", "rate_last", "rate_8h_last",
                    "rate_8h_mean", "annualized_last", "annualized_mean", "funding_paid")
            .sort(*KEYS, "date"))
