"""Data-quality checks over lake frames: pure functions returning a `Check` (pass/fail, metadata, the
offending rows) or, for completeness, a table per venue and day. The Dagster asset checks turn them into
results; nothing here reads or writes. (The as-of joins below sort both sides by time over all groups, which
polars cannot verify per group: hence check_sortedness=False.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from normalize.flags import DERIVED, MAYBE_BAD_BOOK, SNAPSHOT
from pipelines.bars import exact_sum

DAY_S = 86_400


@dataclass(frozen=True)
class Check:
    """One check's outcome: `passed`, numbers for the check's metadata, and the rows that failed it."""

    passed: bool
    metadata: dict[str, int | float]
    failures: pl.DataFrame = field(default_factory=pl.DataFrame)


def duplicate_keys(df: pl.DataFrame, key_columns: Sequence[str]) -> Check:
    """Rows sharing a key: pass `normalize.records.RECORD_CLASSES[record_type].key_columns` (the columns that
    identify one record across re-deliveries; null equals null). Fails when any key occurs twice.

    Metadata: rows, distinct_keys, duplicate_keys (keys occurring more than once), extra_rows (rows beyond
    the first of each key). Failures: each duplicated key with its `copies`.
    """
    keys = list(key_columns)
    counts = df.group_by(keys).agg(pl.len().cast(pl.Int64).alias("copies"))
    duplicated = counts.filter(pl.col("copies") > 1).sort(keys, nulls_last=True)
    extra = int(duplicated["copies"].sum() - duplicated.height)
    return Check(duplicated.is_empty(), {"rows": df.height, "distinct_keys": counts.height,
                                         "duplicate_keys": duplicated.height, "extra_rows": extra}, duplicated)


def out_of_order(df: pl.DataFrame) -> Check:
    """Rows whose ts_event is earlier than the previous row's of the same (venue, instrument), in the frame's
    order: give it one file, or records in the order they were delivered. Fails when any.

    Metadata: rows, out_of_order. Failures: per (venue, instrument) the count `out_of_order` and the largest
    step back `max_back_ns`.
    """
    back = pl.col("ts_event").shift(1).over("venue", "instrument") - pl.col("ts_event")
    steps = df.select("venue", "instrument", back.dt.total_nanoseconds().alias("back_ns")).filter(
        pl.col("back_ns") > 0)
    per_instrument = (steps.group_by("venue", "instrument")
                      .agg(pl.len().cast(pl.Int64).alias("out_of_order"), pl.col("back_ns").max().alias("max_back_ns"))
                      .sort("venue", "instrument"))
    return Check(steps.is_empty(), {"rows": df.height, "out_of_order": steps.height}, per_instrument)


def crossed_books(bbo: pl.DataFrame) -> Check:
    """BBO rows derived from ticklake's own books (DERIVED) that are flagged MAYBE_BAD_BOOK or have
    bid >= ask: a book built wrong. Venue-native BBOs are not judged. Fails when any.

    Metadata: derived_rows, crossed. Failures: per (venue, instrument) the count `crossed` and the first and
    last ts_event of such rows.
    """
    derived = bbo.filter((pl.col("flags") & DERIVED) != 0)
    bad = derived.filter(((pl.col("flags") & MAYBE_BAD_BOOK) != 0) | (pl.col("bid_price") >= pl.col("ask_price")))
    per_instrument = (bad.group_by("venue", "instrument")
                      .agg(pl.len().cast(pl.Int64).alias("crossed"), pl.col("ts_event").min().alias("first_ts"),
                           pl.col("ts_event").max().alias("last_ts"))
                      .sort("venue", "instrument"))
    return Check(bad.is_empty(), {"derived_rows": derived.height, "crossed": bad.height}, per_instrument)


def bar_consistency(bars: pl.DataFrame, trades: pl.DataFrame) -> Check:
    """Time bars against the trades they were built from: low <= open, close <= high, and per bar the
    volume equals the exact sum of its trades' sizes (`bars.exact_sum`, bit for bit) and `trades` their count.

    Each trade belongs to the last bar of its (venue, instrument) starting at or before its ts_event, so a
    trade in an interval that has no bar lands in the bar before and shows as a mismatch there; a trade
    before its instrument's first bar (or of an instrument without bars) is counted as unassigned. Meant for
    time bars (threshold bars may start at the time of the previous bar's last trade).

    Metadata: bars, ohlc_violations, volume_mismatches, count_mismatches, unassigned_trades. Failures: the
    bars failing any part, with `trade_volume` and `trade_count` from the trades.
    """
    keys = ["venue", "instrument"]
    assigned = (trades.select(*keys, "ts_event", "size").sort("ts_event")
                .join_asof(bars.select(*keys, pl.col("ts").alias("bar_ts")).sort("bar_ts"), left_on="ts_event",
                           right_on="bar_ts", by=keys, strategy="backward", check_sortedness=False))
    sums = (assigned.filter(pl.col("bar_ts").is_not_null()).group_by(*keys, "bar_ts")
            .agg(exact_sum(pl.col("size")).alias("trade_volume"), pl.len().cast(pl.Int64).alias("trade_count")))
    checked = (bars.join(sums, left_on=[*keys, "ts"], right_on=[*keys, "bar_ts"], how="left")
               .with_columns(pl.col("trade_volume").fill_null(0.0), pl.col("trade_count").fill_null(0))
               .with_columns(
                   ~((pl.col("low") <= pl.col("open")) & (pl.col("open") <= pl.col("high"))
                     & (pl.col("low") <= pl.col("close")) & (pl.col("close") <= pl.col("high"))).alias("_ohlc"),
                   (pl.col("volume") != pl.col("trade_volume")).alias("_volume"),
                   (pl.col("trades") != pl.col("trade_count")).alias("_count")))
    failing = checked.filter(pl.col("_ohlc") | pl.col("_volume") | pl.col("_count"))
    unassigned = int(assigned["bar_ts"].null_count())
    metadata: dict[str, int | float] = {
        "bars": bars.height, "ohlc_violations": int(checked["_ohlc"].sum()),
        "volume_mismatches": int(checked["_volume"].sum()), "count_mismatches": int(checked["_count"].sum()),
        "unassigned_trades": unassigned}
    return Check(failing.is_empty() and unassigned == 0, metadata,
                 failing.drop("_ohlc", "_volume", "_count").sort(*keys, "ts"))


def same_bars(live: pl.DataFrame, sealed: pl.DataFrame) -> Check:
    """Live bars (pipelines/live_bars.py) against the sealed bars of the same interval and day, both with
    the bars' schema: every column equal bit for bit (floats compared as their bits, nulls equal). No live
    bars at all passes (the day was not live: history loaded afterwards); otherwise a bar on one side only,
    or with any value different, fails.

    Metadata: live_bars, sealed_bars, only_live, only_sealed. Failures: the differing bars, `side` saying
    which side the row is from."""
    if live.is_empty():
        return Check(True, {"live_bars": 0, "sealed_bars": sealed.height, "only_live": 0, "only_sealed": 0})
    floats = [name for name, dtype in sealed.schema.items() if dtype == pl.Float64()]
    bits = [pl.col(name).cast(pl.String) for name in floats]  # the shortest repr: one text per float, -0.0 too
    live_bits, sealed_bits = live.select(sealed.columns).with_columns(bits), sealed.with_columns(bits)
    only_live = live_bits.join(sealed_bits, on=sealed.columns, how="anti", nulls_equal=True)
    only_sealed = sealed_bits.join(live_bits, on=sealed.columns, how="anti", nulls_equal=True)
    failures = pl.concat([only_live.with_columns(pl.lit("live").alias("side")),
                          only_sealed.with_columns(pl.lit("sealed").alias("side"))])
    return Check(failures.is_empty() and live.height == sealed.height,
                 {"live_bars": live.height, "sealed_bars": sealed.height, "only_live": only_live.height,
                  "only_sealed": only_sealed.height}, failures)


def completeness(feed_status: pl.DataFrame, book_delta: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per venue and UTC day: the gap journal's events and a completeness score.

    Outages, from the journal (`feed_status`):
    - a book outage of one instrument, from its `gap`, `checksum_failure` or `resync_start` to its next
      `resync_done` or, given `book_delta`, its next SNAPSHOT row (the book whole again), whichever comes
      first; else to the end of that day;
    - a connection outage, from a `disconnect` to the venue's next `connect`, else to the end of that day;
    - the silence before a `stale` event (its detail "no frame for N s": N seconds);
    - `queue_overflow`s are counted but have no duration (a dropped depth frame shows up as a gap anyway;
      a dropped trade shows up as a `trade_gap` where the venue's trade ids are sequential);
    - `trade_gap`s and `trades_lost` (ids of a trade gap the venue did not serve again) are counted
      and have no duration: a trade gap the venue served is whole again.

    completeness = 1 - affected_s / 86400, where affected_s is the length of the union of the venue's
    outages within the day: an outage of any one instrument counts for the whole venue (conservative).

    Columns: venue, date, gaps, checksum_failures, resyncs (resync_start), resyncs_done, stale,
    disconnects, queue_overflows, trade_gaps, trades_lost, affected_s, completeness. Venues and days
    come from the journal and, if given, book_delta (a day of book data with no journal entry scores 1).
    """
    events = feed_status.sort("ts_event")
    outages = pl.concat([_book_outages(events, book_delta), _connection_outages(events), _stale_silences(events)])
    affected = _affected_per_day(outages)
    days = events.select("venue", pl.col("ts_event").dt.date().alias("date"))
    if book_delta is not None:
        days = pl.concat([days, book_delta.select("venue", pl.col("ts_event").dt.date().alias("date"))])
    counted = {"gaps": "gap", "checksum_failures": "checksum_failure", "resyncs": "resync_start",
               "resyncs_done": "resync_done", "stale": "stale", "disconnects": "disconnect",
               "queue_overflows": "queue_overflow", "trade_gaps": "trade_gap", "trades_lost": "trades_lost"}
    counts = (events.group_by("venue", pl.col("ts_event").dt.date().alias("date"))
              .agg(*((pl.col("event") == event).sum().cast(pl.Int64).alias(name) for name, event in counted.items())))
    return (days.unique().join(counts, on=["venue", "date"], how="left")
            .join(affected, on=["venue", "date"], how="left")
            .with_columns(*(pl.col(name).fill_null(0) for name in counted), pl.col("affected_s").fill_null(0.0))
            .with_columns((1 - pl.col("affected_s") / DAY_S).alias("completeness"))
            .select("venue", "date", *counted, "affected_s", "completeness")
            .sort("venue", "date"))


_OUTAGE_SCHEMA = {"venue": pl.String(), "start": pl.Datetime("ns", "UTC"), "end": pl.Datetime("ns", "UTC")}


def _end_of_day(ts: pl.Expr) -> pl.Expr:
    return ts.dt.truncate("1d").dt.offset_by("1d")


def _book_outages(events: pl.DataFrame, book_delta: pl.DataFrame | None) -> pl.DataFrame:
    keys = ["venue", "instrument"]
    starts = events.filter(pl.col("event").is_in(["gap", "checksum_failure", "resync_start"])
                           & (pl.col("instrument") != "")).select(*keys, pl.col("ts_event").alias("start"))
    ends = [events.filter(pl.col("event") == "resync_done").select(*keys, pl.col("ts_event").alias("end"))]
    if book_delta is not None:
        ends.append(book_delta.filter((pl.col("flags") & SNAPSHOT) != 0)
                    .select(*keys, pl.col("ts_event").alias("end")))
    resolved = starts.sort("start").join_asof(pl.concat(ends).sort("end"), left_on="start", right_on="end", by=keys,
                                              strategy="forward", check_sortedness=False)
    return resolved.select("venue", "start", pl.col("end").fill_null(_end_of_day(pl.col("start"))))


def _connection_outages(events: pl.DataFrame) -> pl.DataFrame:
    disconnects = events.filter(pl.col("event") == "disconnect").select("venue", pl.col("ts_event").alias("start"))
    connects = events.filter(pl.col("event") == "connect").select("venue", pl.col("ts_event").alias("end"))
    resolved = disconnects.sort("start").join_asof(connects.sort("end"), left_on="start", right_on="end", by="venue",
                                                   strategy="forward", check_sortedness=False)
    return resolved.select("venue", "start", pl.col("end").fill_null(_end_of_day(pl.col("start"))))


def _stale_silences(events: pl.DataFrame) -> pl.DataFrame:
    silence_s = pl.col("detail").str.extract(r"no frame for ([0-9.]+) s").cast(pl.Float64).fill_null(0.0)
    return (events.filter(pl.col("event") == "stale")
            .select("venue", (pl.col("ts_event") - pl.duration(nanoseconds=(silence_s * 1e9).cast(pl.Int64),
                                                               time_unit="ns")).alias("start"),
                    pl.col("ts_event").alias("end")))


def _affected_per_day(outages: pl.DataFrame) -> pl.DataFrame:
    """Seconds of each (venue, day) inside the union of the venue's outages."""
    days = pl.datetime_ranges(pl.col("start").dt.truncate("1d"), pl.col("end") - pl.duration(nanoseconds=1),
                              interval="1d", time_unit="ns")
    pieces = (outages.select([pl.col(n).cast(t) for n, t in _OUTAGE_SCHEMA.items()])
              .filter(pl.col("end") > pl.col("start"))
              .with_columns(days.alias("day")).explode("day")
              .select("venue", pl.col("day").dt.date().alias("date"),
                      pl.max_horizontal("start", "day").alias("start"),
                      pl.min_horizontal("end", pl.col("day").dt.offset_by("1d")).alias("end"))
              .sort("venue", "date", "start"))
    per_day = ["venue", "date"]
    merged = (pieces.with_columns(pl.col("end").cum_max().shift(1).over(per_day).alias("_reach"))
              .with_columns((pl.col("start") > pl.col("_reach")).fill_null(True).cum_sum().over(per_day).alias("_span"))
              .group_by(*per_day, "_span").agg(pl.col("start").min(), pl.col("end").max()))
    return merged.group_by("venue", "date").agg(
        ((pl.col("end") - pl.col("start")).dt.total_nanoseconds().sum() / 1e9).alias("affected_s"))


MAX_BASIS_BPS = 500.0
"""A spot-perpetual basis wider than 5 % of spot is taken for two legs that are not the same asset (a
mislabelled instrument), not a market."""


def basis_legs(basis: pl.DataFrame, every: str = "1m") -> Check:
    """Rows of `analytics.spot_perp_basis` whose two legs do not both exist in the row's bucket: a null or
    non-positive mid, a quote (spot_ts, perp_ts) outside [ts, ts + every), or |basis_bps| above
    MAX_BASIS_BPS. Fails when any.

    Metadata: rows, pairs (distinct spot-perpetual pairs), bad_rows. Failures: the offending rows.
    """
    end = pl.col("ts").dt.offset_by(every)

    def inside(leg: str) -> pl.Expr:
        return (pl.col(f"{leg}_ts") >= pl.col("ts")) & (pl.col(f"{leg}_ts") < end) & (pl.col(f"{leg}_mid") > 0)

    bad = basis.filter(~(inside("spot") & inside("perp")).fill_null(False)
                       | (pl.col("basis_bps").abs() > MAX_BASIS_BPS).fill_null(True))
    pairs = basis.select("spot_venue", "spot_instrument", "perp_venue", "perp_instrument").unique().height
    return Check(bad.is_empty(), {"rows": basis.height, "pairs": pairs, "bad_rows": bad.height}, bad)


MAX_ANNUALIZED_BASIS = 2.0
"""A future more than 200 % a year away from its perpetual, a day or more before expiry, is not a market.
Closer to expiry the annualization divides by almost nothing and is not judged."""


def term_structure_sane(curve: pl.DataFrame) -> Check:
    """Rows of `analytics.term_structure` that break the curve: within a (venue, underlying, quote,
    reference_instrument, ts) curve the expiries must rise strictly with rank 1, 2, ... (one future per
    expiry); days_to_expiry must be positive; |annualized_basis| at most MAX_ANNUALIZED_BASIS a day or more
    before expiry. Fails when any.

    Metadata: rows, curves (distinct curves and buckets), bad_rows. Failures: the offending rows.
    """
    curve_keys = ["venue", "underlying", "quote", "reference_instrument", "ts"]
    ordered = curve.sort(*curve_keys, "expiry", "rank")
    previous = pl.col("expiry").shift(1).over(curve_keys)
    rank_expected = pl.int_range(1, pl.len() + 1).over(curve_keys)
    bad = ordered.filter((previous >= pl.col("expiry")).fill_null(False) | (pl.col("rank") != rank_expected)
                         | (pl.col("days_to_expiry") <= 0)
                         | ((pl.col("days_to_expiry") >= 1)
                            & (pl.col("annualized_basis").abs() > MAX_ANNUALIZED_BASIS)).fill_null(True))
    curves = curve.select(curve_keys).unique().height
    return Check(bad.is_empty(), {"rows": curve.height, "curves": curves, "bad_rows": bad.height}, bad)


FUNDING_INTERVALS_S = (3600, 4 * 3600, 8 * 3600)
"""The funding intervals venues use (hourly: Hyperliquid, Kraken Futures, some Binance and Bybit symbols;
4 h and 8 h elsewhere). Another value is a normalizer that guessed."""
MAX_FUNDING_8H = 0.05
"""No venue caps funding above a few percent per interval: 5 % per 8 hours restated is taken for a unit
error (a percentage, or Kraken Futures' absolute rate, stored as a fraction)."""


def funding_intervals_known(comparison: pl.DataFrame) -> Check:
    """Rows of `analytics.funding_comparison` whose interval is null or not in FUNDING_INTERVALS_S: their
    rates cannot be restated per 8 hours. Fails when any.

    Metadata: rows, unknown_intervals. Failures: the offending rows."""
    bad = comparison.filter(~pl.col("interval_s").is_in(FUNDING_INTERVALS_S).fill_null(False))
    return Check(bad.is_empty(), {"rows": comparison.height, "unknown_intervals": bad.height}, bad)


def funding_rates_in_bounds(comparison: pl.DataFrame) -> Check:
    """Rows of `analytics.funding_comparison` whose last or mean rate per 8 hours is beyond ±MAX_FUNDING_8H
    (rows without a restated rate are funding_intervals_known's). Fails when any.

    Metadata: rows, out_of_bounds, max_abs_rate_8h. Failures: the offending rows."""
    beyond = (pl.col("rate_8h_last").abs() > MAX_FUNDING_8H) | (pl.col("rate_8h_mean").abs() > MAX_FUNDING_8H)
    bad = comparison.filter(beyond.fill_null(False))
    largest = comparison.select(pl.max_horizontal(pl.col("rate_8h_last").abs(), pl.col("rate_8h_mean").abs()).max())
    return Check(bad.is_empty(), {"rows": comparison.height, "out_of_bounds": bad.height,
                                  "max_abs_rate_8h": float(largest.item() or 0.0)}, bad)
