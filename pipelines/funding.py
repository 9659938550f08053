"""Funding: the settled rate of every funding time, from the stream and the venue's own history, and the
cross-venue spread of annualized rates.

Input: funding records as read from the lake (contract columns, times Datetime("ns", "UTC"), plus
`venue`). A record says: `funding_rate` (a fraction per interval) applies at `next_funding_ts`, the
interval is `interval_s`, and the venue forecasts `predicted_rate` for the funding after that.

Funding times: every venue settles on whole UTC hours, but Hyperliquid's history stamps a settlement when
it ran (12:00:00.048, once 00:23:53), so `funding_time` is `next_funding_ts` rounded to the nearest hour.
That is also what lets a history entry meet the stream records of the same settlement.

Venue history: records flagged FROM_REST whose ts_event is at or after their next_funding_ts (the record
states a settlement that happened: Hyperliquid's fundingHistory), plus every row of `venue_history`.
Everything else is stream: forecasts of a coming settlement, observed over time.

Trailing funding: a venue that charges funding continuously (Deribit) has no settlements; its records are
flagged TRAILING and state the funding of the `interval_s` before their ts_event. The record nearest to each
multiple of the interval (UTC: 00:00, 08:00, 16:00 for 8 h), within TRAILING_TOLERANCE_S of it, stands for a
settlement there: consecutive windows then cover time once, so the rates add up to what a position paid, and
the window is off the settlement's by at most the tolerance (60 s of 8 h). A boundary with no record that near
has no row: its window is unknown, not guessed.
"""

from __future__ import annotations

import polars as pl

from normalize.flags import FROM_REST, TRAILING

TS = pl.Datetime("ns", "UTC")
KEYS = ("venue", "instrument")
SECONDS_PER_YEAR = 365 * 24 * 3600
TRAILING_TOLERANCE_S = 60
"""How far from an interval boundary a TRAILING record may be to stand for a settlement there."""
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "venue": pl.String(), "instrument": pl.String(), "funding_time": TS,
    "rate": pl.Float64(), "predicted_rate": pl.Float64(), "interval_s": pl.Int32(),
    "annualized_rate": pl.Float64(), "cumulative_funding": pl.Float64(), "source": pl.String(),
    "stream_rate": pl.Float64(), "venue_rate": pl.Float64(), "rate_diff": pl.Float64(), "stream_ts": TS,
    "flags": pl.Int32(),
}
SPREAD_SCHEMA: dict[str, pl.DataType] = {
    "underlying": pl.String(), "funding_time": TS, "venue": pl.String(), "instrument": pl.String(),
    "annualized_rate": pl.Float64(), "interval_s": pl.Int32(), "instruments": pl.Int64(),
    "max_annualized": pl.Float64(), "min_annualized": pl.Float64(), "spread": pl.Float64(),
}


def funding_history(funding: pl.DataFrame, venue_history: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (venue, instrument, funding_time), sorted so, with (rates are fractions per interval):

    - funding_time (Datetime ns UTC): the settlement, rounded to the hour.
    - rate: venue_rate where the venue published it, else stream_rate.
    - stream_rate: funding_rate of the last stream record for this funding time observed at or before it
      (by ts_event, then ts_recv), or of the TRAILING record nearest to it; stream_ts (Datetime ns UTC): that
      record's ts_event.
    - venue_rate: the venue's settled rate (its history); rate_diff: venue_rate - stream_rate where both.
    - source: "stream", "venue" or "both"; flags: FROM_REST when rate is the venue's settled value, TRAILING
      when the stream's rate is a trailing one.
    - predicted_rate: the last forecast of this funding's rate, i.e. predicted_rate of the last stream
      record whose next_funding_ts + interval_s is this funding time (records of the funding before).
    - interval_s (s): the venue's, else the stream's.
    - annualized_rate (fraction per year): rate * 365 * 24 * 3600 / interval_s (null without interval).
    - cumulative_funding (fraction of notional): running sum of rate per instrument by funding_time over
      the rows given: what a long position paid (positive) or received per unit of notional.
    """
    records = pl.concat([funding.select(_FUNDING_COLUMNS).with_columns(_settled().alias("_venue")),
                         *([venue_history.select(_FUNDING_COLUMNS).with_columns(pl.lit(True).alias("_venue"))]
                           if venue_history is not None else [])])
    trailing = records.filter(~pl.col("_venue") & ((pl.col("flags") & TRAILING) != 0))
    records = records.filter(pl.col("next_funding_ts").is_not_null()).with_columns(
        pl.col("next_funding_ts").dt.round("1h").alias("funding_time")).sort("ts_event", "ts_recv")
    keys = [*KEYS, "funding_time"]
    stream = pl.concat([
        records.filter(~pl.col("_venue") & (pl.col("ts_event") <= pl.col("next_funding_ts")))
        .group_by(keys).agg(pl.col("funding_rate").last().alias("stream_rate"),
                            pl.col("ts_event").last().alias("stream_ts"),
                            pl.col("interval_s").last().alias("stream_interval"), pl.lit(0).alias("stream_flags")),
        _trailing_settlements(trailing)])
    venue = (records.filter(pl.col("_venue")).sort("ts_recv")
             .group_by(keys).agg(pl.col("funding_rate").last().alias("venue_rate"),
                                 pl.col("interval_s").last().alias("venue_interval")))
    forecasts = (records.filter(~pl.col("_venue") & pl.col("predicted_rate").is_not_null()
                                & pl.col("interval_s").is_not_null())
                 .with_columns((pl.col("next_funding_ts") + pl.duration(seconds=pl.col("interval_s"), time_unit="ns"))
                               .dt.round("1h").alias("funding_time"))
                 .group_by(keys).agg(pl.col("predicted_rate").last()))
    both = stream.join(venue, on=keys, how="full", coalesce=True).join(forecasts, on=keys, how="left")
    has_stream, has_venue = pl.col("stream_rate").is_not_null(), pl.col("venue_rate").is_not_null()
    rate = pl.coalesce("venue_rate", "stream_rate")
    interval = pl.coalesce("venue_interval", "stream_interval").cast(pl.Int32)
    return (both.with_columns(
        rate.alias("rate"), interval.alias("interval_s"),
        (pl.col("venue_rate") - pl.col("stream_rate")).alias("rate_diff"),
        pl.when(has_stream & has_venue).then(pl.lit("both")).when(has_venue).then(pl.lit("venue"))
        .otherwise(pl.lit("stream")).alias("source"),
        (pl.when(has_venue).then(FROM_REST).otherwise(0) | pl.col("stream_flags").fill_null(0)).cast(pl.Int32)
        .alias("flags"))
        .sort(*keys)
        .with_columns((pl.col("rate") * SECONDS_PER_YEAR / pl.col("interval_s")).alias("annualized_rate"),
                      pl.col("rate").cum_sum().over(KEYS).alias("cumulative_funding"))
        .select([pl.col(name).cast(dtype) for name, dtype in HISTORY_SCHEMA.items()]))


_FUNDING_COLUMNS = ("venue", "instrument", "ts_event", "ts_recv", "flags", "funding_rate", "predicted_rate",
                    "interval_s", "next_funding_ts")


def _trailing_settlements(trailing: pl.DataFrame) -> pl.DataFrame:
    """Per boundary, the TRAILING record nearest to it (see the module docstring), as the stream's rate there."""
    ts = pl.col("ts_event").cast(pl.Int64)
    interval = pl.col("interval_s").cast(pl.Int64) * 1_000_000_000
    boundary = (ts + interval // 2) // interval * interval
    return (trailing.filter(pl.col("interval_s") > 0)
            .with_columns(boundary.cast(TS).alias("funding_time"), (ts - boundary).abs().alias("_off"))
            .filter(pl.col("_off") <= TRAILING_TOLERANCE_S * 1_000_000_000)
            .sort("_off", "ts_event", "ts_recv")
            .group_by([*KEYS, "funding_time"])
            .agg(pl.col("funding_rate").first().alias("stream_rate"), pl.col("ts_event").first().alias("stream_ts"),
                 pl.col("interval_s").first().alias("stream_interval"), pl.lit(TRAILING).alias("stream_flags")))


def _settled() -> pl.Expr:
    """A FROM_REST record stating a settlement that already happened (see the module docstring)."""
    return ((pl.col("flags") & FROM_REST) != 0) & (pl.col("ts_event") >= pl.col("next_funding_ts"))


def underlying(instrument: pl.Expr) -> pl.Expr:
    """BTC-USDT-PERP, BTC-USDC-PERP and BTC-USD-PERP -> BTC: the base of a perpetual's id."""
    return instrument.str.split("-").list.first()


def funding_spreads(history: pl.DataFrame) -> pl.DataFrame:
    """Annualized funding of the same underlying across venues (perpetuals: ids ending in -PERP), on an
    hourly grid, with the spread between the highest and the lowest.

    A settlement at funding_time T with interval I pays for the hours ending T - I + 1h ... T, so each
    history row is spread over those hours at its annualized rate: an 8-hourly venue meets an hourly one on
    every hour, in the same unit (fraction per year). Hours are labelled by their end, the hourly funding
    time. One row per (underlying, funding_time, venue, instrument), sorted so:

    | column | unit | meaning |
    |---|---|---|
    | underlying | | BTC for BTC-USDT-PERP, BTC-USDC-PERP, BTC-USD-PERP |
    | funding_time | Datetime ns UTC | end of the hour |
    | annualized_rate, interval_s | fraction per year, s | of the settlement covering that hour |
    | instruments | | instruments of the underlying quoting that hour |
    | max_annualized, min_annualized | fraction per year | across them |
    | spread | fraction per year | max - min; null when fewer than two instruments quote |

    Rows without an interval (hence without an annualized rate) are left out. Where two settlements of one
    instrument cover the same hour, the first at or after it is kept.
    """
    hours = (pl.col("interval_s") + 3599) // 3600
    grid = (history.filter(pl.col("instrument").str.ends_with("-PERP") & pl.col("annualized_rate").is_not_null())
            .with_columns(underlying(pl.col("instrument")).alias("underlying"),
                          pl.int_ranges(0, hours).alias("_back"))
            .explode("_back")
            .with_columns(pl.col("funding_time") - pl.duration(hours=pl.col("_back"), time_unit="ns"))
            .sort("funding_time", "_back")
            .unique(subset=[*KEYS, "funding_time"], keep="first", maintain_order=True))
    per_hour = ["underlying", "funding_time"]
    quoting = pl.len().over(per_hour)
    return (grid.with_columns(
        quoting.cast(pl.Int64).alias("instruments"),
        pl.col("annualized_rate").max().over(per_hour).alias("max_annualized"),
        pl.col("annualized_rate").min().over(per_hour).alias("min_annualized"))
        .with_columns(pl.when(pl.col("instruments") >= 2)
                      .then(pl.col("max_annualized") - pl.col("min_annualized")).alias("spread"))
        .sort("underlying", "funding_time", "venue", "instrument")
        .select([pl.col(name).cast(dtype) for name, dtype in SPREAD_SCHEMA.items()]))
