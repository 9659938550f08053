"""OHLCV bars from trades: time bars on UTC boundaries, and tick, volume and dollar bars.

Input: trades as read from the lake (`pl.read_parquet(".../trade/**/*.parquet", hive_partitioning=True)`):
the contract's trade columns (`ts_event`, `ts_recv` as Datetime("ns", "UTC"), `price`, `size` in base
units, `side` the aggressor, `trade_id`) plus `venue`. Other columns are ignored.

Output, one row per bar, sorted by (venue, instrument, ts):

| column | type | meaning |
|---|---|---|
| venue, instrument | str | |
| ts | Datetime ns UTC | time bars: bucket start; threshold bars: the first trade's ts_event |
| open, high, low, close | f64 | price (quote per base); open/close by trade order, below |
| volume | f64 | sum of size, base units (an exact decimal sum, below) |
| notional | f64 | sum of price * size, quote units (each product a float, summed exactly) |
| vwap | f64 | notional / volume (null for an empty, filled bar) |
| trades | i64 | number of trades |
| buy_volume, sell_volume | f64 | volume of aggressive buys (side +1) and sells (side -1), base units |
| first_ts, last_ts | Datetime ns UTC | ts_event of the bar's first and last trade (null for an empty, filled bar) |

Trade order, which decides open and close: ts_event, then ts_recv, then trade_id, compared as a number
when numeric (a shorter id first, then by text: "999" before "1000"; Bybit's UUIDs thus order
arbitrarily but deterministically among trades of the same instant and frame).

Threshold bars (tick, volume, dollar) run along each instrument in trade order and close on the trade
that reaches the threshold: that trade belongs whole to the closing bar, the next bar starts at the next
trade from zero (no carry-over). An instrument's last bar may be below the threshold; it is kept, so every
trade is in exactly one bar (a consumer tells it by trades < ticks, volume < threshold or notional <
threshold). Bars restart with each call: a day's bars start at the day's first trade.

Sums (volume, notional, buy and sell volume) are taken in decimal at 1e-12 (`exact_sum`): venue sizes have
at most 12 decimals, so volumes are the exact totals of what the venue sent (notional sums each trade's
float product, rounded to 1e-12). Float sums
would depend on how polars splits a group across threads: two runs over the same trades differed in the
last bits. Decimal sums cost no more than float sums here (their terms are columns added before grouping).

Why time bars check the order instead of sorting: sorting 10M trades by that key costs 1-2 s on this
machine, more than the bars themselves, while the lake's files are already sorted by (instrument, ts_event,
ts_recv). Time bars are aggregated in the rows' order with a check (a few integer operations per row) that
each bar's rows were contiguous and in trade order; only the bars whose rows were not are computed again
from their trades, sorted (a day still in the sink's files, sorted one file at a time, has a few such bars
where the files meet). Threshold bars always sort.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TypeVar

import polars as pl

TS = pl.Datetime("ns", "UTC")
KEYS = ("venue", "instrument")
BAR_SCHEMA: dict[str, pl.DataType] = {
    "venue": pl.String(), "instrument": pl.String(), "ts": TS,
    "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(), "close": pl.Float64(),
    "volume": pl.Float64(), "notional": pl.Float64(), "vwap": pl.Float64(), "trades": pl.Int64(),
    "buy_volume": pl.Float64(), "sell_volume": pl.Float64(), "first_ts": TS, "last_ts": TS,
}
EXACT = pl.Decimal(38, 12)
"""Decimal of exact sums: 12 fractional digits (no venue quotes finer), 26 integer digits (no overflow)."""
_TRADE_COLUMNS = ("venue", "instrument", "ts_event", "ts_recv", "trade_id", "price", "size", "side")
_TRADE_COLUMNS_BUT_ID = tuple(name for name in _TRADE_COLUMNS if name != "trade_id")


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def market_prints(trades: Frame, non_market: bool = False) -> Frame:
    """The trades bars are made of: market trades only (`trade_type` null), unless `non_market`
    asks for every print (block trades, liquidation fills, insurance-fund and ADL prints too). A
    venue's VWAP and volume count market trades; ours then agree with them."""
    if non_market or "trade_type" not in trades.collect_schema().names():
        return trades
    return trades.filter(pl.col("trade_type").is_null())


def sort_trades(trades: pl.DataFrame) -> pl.DataFrame:
    """Trades sorted by venue, instrument, then trade order (see the module docstring)."""
    return trades.sort("venue", "instrument", "ts_event", "ts_recv", pl.col("trade_id").str.len_bytes(), "trade_id")


def exact_sum(values: pl.Expr) -> pl.Expr:
    """The sum of float `values`, each as its shortest decimal rounded to 1e-12, taken exactly: the same in
    any order (see the module docstring), so bars and their checks are reproducible to the bit."""
    return values.cast(EXACT).sum().cast(pl.Float64)


_size = pl.col("size").cast(EXACT)
EXACT_TERMS = [_size.alias("_volume"), (pl.col("price") * pl.col("size")).cast(EXACT).alias("_notional"),
               pl.when(pl.col("side") == 1).then(_size).alias("_buy"),
               pl.when(pl.col("side") == -1).then(_size).alias("_sell")]
"""The terms of the exact sums as decimal columns, added to the rows before aggregating: plain sums of
columns are the group_by's fast path (a filter or a cast inside it costs twice as much)."""


def _bar_aggregations() -> list[pl.Expr]:
    """OHLCV of one group whose rows are in trade order and carry EXACT_TERMS."""
    return [
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("_volume").sum().cast(pl.Float64).alias("volume"),
        pl.col("_notional").sum().cast(pl.Float64).alias("notional"),
        pl.len().cast(pl.Int64).alias("trades"),
        pl.col("_buy").sum().cast(pl.Float64).alias("buy_volume"),
        pl.col("_sell").sum().cast(pl.Float64).alias("sell_volume"),
        pl.col("ts_event").first().alias("first_ts"),
        pl.col("ts_event").last().alias("last_ts"),
    ]


def _finish(bars: pl.LazyFrame) -> pl.LazyFrame:
    """Add vwap, put the columns in BAR_SCHEMA order and sort."""
    return (bars.with_columns((pl.col("notional") / pl.col("volume")).alias("vwap"))
            .select(list(BAR_SCHEMA)).sort("venue", "instrument", "ts", maintain_order=True))


def time_bars(trades: pl.DataFrame | pl.LazyFrame, every: str, fill: bool = False,
              non_market: bool = False) -> pl.DataFrame:
    """OHLCV bars per (venue, instrument) and UTC bucket `every` (any polars duration: "1s", "1m", "5m",
    "1h", "1d"...). Buckets are `ts_event.dt.truncate(every)`: for fixed durations up to days, UTC
    boundaries aligned to the epoch (calendar units follow polars: weeks start on Monday, months on the 1st).

    Empty intervals are omitted; with `fill=True` those between an instrument's first and last bar are
    present with open = high = low = close = the previous close, volume, notional, trades and the side
    volumes 0, vwap, first_ts and last_ts null.

    A LazyFrame (a `pl.scan_parquet` of the lake) is collected without trade_id, which is read only if
    some bar has trades tied in (ts_event, ts_recv): that column is half the cost of reading trades.
    Non-market prints are left out unless `non_market` (market_prints).
    """
    source = market_prints(trades.lazy(), non_market)
    frame = source.select(_TRADE_COLUMNS_BUT_ID).collect()
    if frame.is_empty():
        return pl.DataFrame(schema=BAR_SCHEMA)
    trade_ids = cache(lambda: source.select("trade_id").collect().to_series())
    bars = _grouped(frame, every)
    unordered = _unordered_bars(bars, frame, every, trade_ids)
    if not unordered.is_empty():
        bars = _regrouped(bars, unordered, frame, every, trade_ids)
    result = _finish(bars.lazy()).collect()
    return _filled(result, every) if fill else result


def _grouped(trades: pl.DataFrame, every: str) -> pl.DataFrame:
    """Bars aggregated in the rows' order, with what `_unordered_bars` needs to tell where that order was not
    trade order: per bar the span of its row numbers, and how many of its rows other than the first step
    back from the row before or tie with it in (ts_event, ts_recv). (Two extra aggregations only: polars
    slows down by half past about 14 of them.)"""
    step = pl.col("ts_event").cast(pl.Int64).diff()
    recv_step = pl.col("ts_recv").cast(pl.Int64).diff()
    odd = ((step < 0) | ((step == 0) & (recv_step <= 0))).fill_null(False).cast(pl.Int64)
    row = pl.col("_row")
    return (trades.lazy().with_columns(odd.alias("_odd"), pl.int_range(pl.len()).alias("_row"), *EXACT_TERMS)
            .group_by(*KEYS, pl.col("ts_event").dt.truncate(every).alias("ts"))
            .agg(*_bar_aggregations(), (row.max() - row.min() + 1).alias("_span"),
                 (pl.col("_odd").sum() - pl.col("_odd").first()).alias("_odd_inside"))
            .collect())


def _unordered_bars(bars: pl.DataFrame, trades: pl.DataFrame, every: str,
                    trade_ids: Callable[[], pl.Series]) -> pl.DataFrame:
    """(venue, instrument, ts) of the bars whose rows were not contiguous and in trade order, so that their
    first and last rows may not be their open and close: scattered rows, a step back in time inside the
    bar, or rows tied in (ts_event, ts_recv) with the row before them and not in trade-id order.

    Only the rows that step back or tie are looked at, next to the row before them (strings are compared
    for those alone): a few integer operations per row in all, against 1-2 s for sorting 10M trades.
    """
    keys = [*KEYS, "ts"]
    scattered = bars.filter(pl.col("_span") != pl.col("trades")).select(keys)
    if bars["_odd_inside"].sum() == 0:
        return scattered
    ts, recv = pl.col("ts_event"), pl.col("ts_recv")
    odd_rows = trades.select((ts < ts.shift(1)) | ((ts == ts.shift(1)) & (recv <= recv.shift(1)))).to_series()
    rows = odd_rows.fill_null(False).arg_true()
    current = trades[rows].with_columns(trade_ids().gather(rows).alias("trade_id"))
    previous = trades[rows - 1].with_columns(trade_ids().gather(rows - 1).alias("trade_id"))
    pairs = pl.concat([current.with_columns(ts.dt.truncate(every).alias("ts")),
                       previous.select(pl.all().name.suffix("_before"))], how="horizontal")
    before = {name: pl.col(f"{name}_before") for name in _TRADE_COLUMNS}
    same_bar = ((pl.col("venue") == before["venue"]) & (pl.col("instrument") == before["instrument"])
                & (pl.col("ts") == before["ts_event"].dt.truncate(every)))
    tied = (ts == before["ts_event"]) & (recv == before["ts_recv"])
    length, length_before = pl.col("trade_id").str.len_bytes(), before["trade_id"].str.len_bytes()
    id_earlier = (length < length_before) | ((length == length_before) & (pl.col("trade_id") < before["trade_id"]))
    broken = pairs.filter(same_bar & (~tied | id_earlier)).select(keys)
    return pl.concat([scattered, broken]).unique()


def _regrouped(bars: pl.DataFrame, unordered: pl.DataFrame, trades: pl.DataFrame, every: str,
               trade_ids: Callable[[], pl.Series]) -> pl.DataFrame:
    """`bars` with the `unordered` ones computed again from their trades, sorted."""
    keys = [*KEYS, "ts"]
    bucket = pl.col("ts_event").dt.truncate(every)
    rows = (trades.with_row_index("_index").filter(bucket.is_in(unordered["ts"].unique().implode()))
            .with_columns(bucket.alias("ts")).join(unordered, on=keys, how="semi"))
    rows = rows.with_columns(trade_ids().gather(rows["_index"]).alias("trade_id")).drop("_index", "ts")
    return pl.concat([bars.join(unordered, on=keys, how="anti"), _grouped(sort_trades(rows), every)])


def _filled(bars: pl.DataFrame, every: str) -> pl.DataFrame:
    """Bars with the empty buckets between each instrument's first and last bar added (see time_bars)."""
    grid = (bars.group_by(KEYS)
            .agg(pl.datetime_ranges(pl.col("ts").min(), pl.col("ts").max(), interval=every).alias("ts"))
            .explode("ts"))
    # each instrument's first row is a real bar, so a plain forward fill never crosses instruments
    joined = grid.join(bars, on=[*KEYS, "ts"], how="left").sort("venue", "instrument", "ts")
    previous_close = pl.col("close").forward_fill()
    zero = {name: pl.col(name).fill_null(0.0) for name in ("volume", "notional", "buy_volume", "sell_volume")}
    return joined.with_columns(
        *(pl.col(name).fill_null(previous_close) for name in ("open", "high", "low")),
        previous_close.alias("close"), pl.col("trades").fill_null(0), *(e.alias(n) for n, e in zero.items()),
    ).select(list(BAR_SCHEMA))


def tick_bars(trades: pl.DataFrame, ticks: int, non_market: bool = False) -> pl.DataFrame:
    """Bars of `ticks` consecutive trades per (venue, instrument), in trade order; ts = first_ts.
    The last bar of an instrument may hold fewer (it is kept: every trade is in exactly one bar)."""
    if ticks <= 0:
        raise ValueError(f"ticks must be positive, not {ticks}")
    return _threshold_bars(market_prints(trades, non_market),
                           lambda group: pl.int_range(group.height, eager=True) // ticks)


def volume_bars(trades: pl.DataFrame, volume: float, non_market: bool = False) -> pl.DataFrame:
    """Bars per (venue, instrument) closed by the trade that brings their volume (base units) to at least
    `volume`; that trade belongs whole to the closing bar and the next bar starts empty (no carry-over).
    ts = first_ts; an instrument's last bar may be below the threshold (kept)."""
    return _threshold_bars(market_prints(trades, non_market),
                           lambda group: threshold_bar_ids(group["size"], _positive(volume)))


def dollar_bars(trades: pl.DataFrame, notional: float, non_market: bool = False) -> pl.DataFrame:
    """As volume_bars, on notional (price * size, quote units) reaching `notional`."""
    return _threshold_bars(market_prints(trades, non_market),
                           lambda group: threshold_bar_ids(group["price"] * group["size"], _positive(notional)))


def _positive(threshold: float) -> float:
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, not {threshold}")
    return threshold


def _threshold_bars(trades: pl.DataFrame, bar_ids: Callable[[pl.DataFrame], pl.Series]) -> pl.DataFrame:
    """Bars over per-instrument bar numbers `bar_ids(group)` of trades in trade order."""
    if trades.is_empty():
        return pl.DataFrame(schema=BAR_SCHEMA)
    groups = sort_trades(trades.select(_TRADE_COLUMNS)).partition_by(KEYS, maintain_order=True)
    numbered = pl.concat([g.with_columns(bar_ids(g).cast(pl.Int64).alias("_bar")) for g in groups])
    bars = (numbered.lazy().with_columns(*EXACT_TERMS).group_by([*KEYS, "_bar"]).agg(*_bar_aggregations())
            .sort([*KEYS, "_bar"])  # bars starting in the same instant stay in trade order
            .with_columns(pl.col("first_ts").alias("ts")))
    return _finish(bars).collect()


def threshold_bar_ids(values: pl.Series, threshold: float) -> pl.Series:
    """Bar number of each value (in trade order): a bar takes values until their running sum, added left
    to right from the bar's first value, reaches `threshold`; the next value starts a new bar at 0.

    A plain loop (about 0.1 us a trade): the reset makes each bar depend on where the previous one ended,
    which no cumulative-sum expression captures exactly.
    """
    ids = []
    bar, running = 0, 0.0
    for value in values:
        ids.append(bar)
        running += value
        if running >= threshold:
            bar += 1
            running = 0.0
    return pl.Series(ids, dtype=pl.Int64)
