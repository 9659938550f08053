"""Bars from the real-capture lake, checked against bars computed in plain Python over the trade rows.

Everything is compared exactly, volumes included: the bars sum in decimal (`bars.exact_sum`), and so does the
reference here, with Python's Decimal over the sizes the venue sent. Notional and vwap are within 1e-15
relative: polars rounds a product price * size to 1e-12 in float arithmetic (off by a unit of 1e-12 for
some products above 2^53 / 10^12), Python here exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.bars import BAR_SCHEMA, dollar_bars, tick_bars, time_bars, volume_bars
from tests.pipelines_data import private_lake, read_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_lake(tmp_path_factory)


NS = {"1s": 10**9, "1m": 60 * 10**9, "5m": 300 * 10**9, "1h": 3600 * 10**9, "1d": 86400 * 10**9}
TS_COLUMNS = ("ts", "first_ts", "last_ts")
Row = dict[str, Any]


def python_rows(trades: pl.DataFrame) -> list[Row]:
    """Trade rows with times as int ns (Python datetimes would drop the nanoseconds)."""
    return trades.with_columns(pl.col("ts_event", "ts_recv").cast(pl.Int64)).rows(named=True)


def bar_rows(bars: pl.DataFrame) -> list[Row]:
    return bars.with_columns(pl.col(*TS_COLUMNS).cast(pl.Int64)).rows(named=True)


def trade_order(row: Row) -> tuple[int, int, int, str]:
    return row["ts_event"], row["ts_recv"], len(row["trade_id"]), row["trade_id"]


def exact(values: Iterable[float]) -> float:
    """Each term's shortest decimal (its repr, what the venue sent for a size) rounded to 1e-12, summed
    exactly, rounded once to a float."""
    return float(sum((Decimal(repr(v)).quantize(Decimal("1e-12")) for v in values), Decimal(0)))


def bar_of(ts: int, trades: list[Row]) -> Row:
    """One bar from its trades, in plain Python."""
    trades = sorted(trades, key=trade_order)
    volume = exact(t["size"] for t in trades)
    notional = exact(t["price"] * t["size"] for t in trades)
    return {
        "venue": trades[0]["venue"], "instrument": trades[0]["instrument"], "ts": ts,
        "open": trades[0]["price"], "high": max(t["price"] for t in trades), "low": min(t["price"] for t in trades),
        "close": trades[-1]["price"], "volume": volume, "notional": notional, "vwap": notional / volume,
        "trades": len(trades),
        "buy_volume": exact(t["size"] for t in trades if t["side"] == 1),
        "sell_volume": exact(t["size"] for t in trades if t["side"] == -1),
        "first_ts": trades[0]["ts_event"], "last_ts": trades[-1]["ts_event"],
    }


def expected_time_bars(trades: Iterable[Row], every_ns: int) -> list[Row]:
    groups: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for t in trades:
        groups[(t["venue"], t["instrument"], t["ts_event"] // every_ns * every_ns)].append(t)
    return [bar_of(key[2], rows) for key, rows in sorted(groups.items())]


def assert_bars_equal(got: list[Row], expected: list[Row]) -> None:
    assert len(got) == len(expected)
    inexact = ("notional", "vwap")
    for g, e in zip(got, expected, strict=True):
        assert {k: v for k, v in g.items() if k not in inexact} == {k: v for k, v in e.items() if k not in inexact}
        for name in inexact:
            assert g[name] == pytest.approx(e[name], rel=1e-15, abs=0.0), name


@pytest.fixture(scope="module")
def trades(lake: Path) -> pl.DataFrame:
    return read_lake(lake, "trade")


@pytest.mark.parametrize("every", list(NS))
def test_time_bars_match_plain_python(trades: pl.DataFrame, every: str) -> None:
    bars = time_bars(trades, every)
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    assert_bars_equal(bar_rows(bars), expected_time_bars(python_rows(trades), NS[every]))


def test_known_bars_of_the_binance_capture(trades: pl.DataFrame) -> None:
    btc = trades.filter(pl.col("venue") == "binance-usdm", pl.col("instrument") == "BTC-USDT-PERP")
    bars = time_bars(btc, "1m")
    assert bars["ts"].dt.strftime("%H:%M").to_list() == ["23:54", "23:55", "23:56", "23:57", "23:58", "23:59"]
    assert bars["trades"].to_list() == [1751, 2005, 1992, 4717, 7387, 3461]
    assert bars.row(0, named=True)["open"] == 61800.3
    assert time_bars(btc, "1d")["trades"].to_list() == [21313]


def test_input_order_does_not_matter(trades: pl.DataFrame) -> None:
    """Reversed, shuffled, day files read in any order, or in pieces of receive time each sorted on its own
    (as the sink writes them: bars straddling two pieces are recomputed): the same bars."""
    reference = time_bars(trades, "1m")
    by_receipt = trades.sort("ts_recv")
    pieces = pl.concat([by_receipt.slice(start, 5000).sort("instrument", "ts_event", "ts_recv")
                        for start in range(0, trades.height, 5000)])
    for variant in (trades.reverse(), trades.sample(fraction=1.0, shuffle=True, seed=7),
                    trades.sort("date", descending=True, maintain_order=True), pieces):
        assert time_bars(variant, "1m").equals(reference)


def test_runs_agree_to_the_bit(trades: pl.DataFrame) -> None:
    """Thirty copies of the trades (distinct ids), so polars splits every group across threads: float sums
    differed between runs here (802.2599999999278 vs 802.2599999999575 in one 1s bar); exact sums do not,
    and they are the decimal totals."""
    copies = pl.concat([trades] * 30).with_columns(pl.int_range(pl.len()).cast(pl.String).alias("trade_id"))
    for build in (lambda t: time_bars(t, "1s"), lambda t: dollar_bars(t, 3_000_000)):
        first, second = build(copies), build(copies)
        assert first.join(second, on=first.columns, how="anti", nulls_equal=True).is_empty()
        assert second.join(first, on=first.columns, how="anti", nulls_equal=True).is_empty()
    btc = copies.filter(pl.col("instrument") == "BTC-USDT-PERP", pl.col("ts_event").dt.epoch("s") == 1723161485)
    assert time_bars(btc, "1s")["volume"].to_list() == [802.26]


def test_lazy_input(lake: Path, trades: pl.DataFrame) -> None:
    scan = pl.scan_parquet(f"{lake}/trade/**/*.parquet", hive_partitioning=True)
    assert time_bars(scan, "5m").equals(time_bars(trades, "5m"))


def trade(ts_s: float, price: float, size: float, side: int = 1, trade_id: str = "1", recv_s: float | None = None,
          instrument: str = "BTC-USDT-PERP", venue: str = "binance-usdm") -> Row:
    return {"venue": venue, "instrument": instrument, "ts_event": int(ts_s * 1e9),
            "ts_recv": int((ts_s if recv_s is None else recv_s) * 1e9), "price": price, "size": size, "side": side,
            "trade_id": trade_id}


def frame(rows: list[Row]) -> pl.DataFrame:
    ts = pl.Datetime("ns", "UTC")
    return pl.DataFrame(rows, schema={"venue": pl.String, "instrument": pl.String, "ts_event": pl.Int64,
                                      "ts_recv": pl.Int64, "price": pl.Float64, "size": pl.Float64, "side": pl.Int8,
                                      "trade_id": pl.String}).with_columns(pl.col("ts_event", "ts_recv").cast(ts))


def test_ties_break_by_receive_time_then_numeric_trade_id() -> None:
    rows = [trade(10, 101.0, 1, trade_id="1000", recv_s=11), trade(10, 102.0, 1, trade_id="999", recv_s=11),
            trade(10, 100.0, 1, trade_id="5", recv_s=10.5), trade(10, 103.0, 1, trade_id="1001", recv_s=11)]
    in_order = [rows[2], rows[1], rows[0], rows[3]]
    ids_swapped = [rows[2], rows[0], rows[1], rows[3]]  # only the trade ids are out of order
    for order in (rows, rows[::-1], in_order, ids_swapped):
        bar = time_bars(frame(order), "1m").row(0, named=True)
        assert (bar["open"], bar["close"], bar["high"], bar["low"]) == (100.0, 103.0, 103.0, 100.0)
    uuids = [trade(10, 1.0, 1, trade_id="cb55"), trade(10, 2.0, 1, trade_id="0cbf"), trade(10, 3.0, 1, trade_id="912e")]
    bar = time_bars(frame(uuids), "1m").row(0, named=True)
    assert (bar["open"], bar["close"]) == (2.0, 1.0)


def test_bar_split_across_files_and_interleaved_instruments() -> None:
    """A minute of BTC in two files with ETH between them, and a later file before an earlier one."""
    first = [trade(5, 10.0, 1, trade_id="1"), trade(6, 11.0, 1, trade_id="2"), trade(5, 50.0, 2, instrument="ETH")]
    second = [trade(7, 12.0, 1, trade_id="3"), trade(65, 13.0, 1, trade_id="4")]
    for rows in (first + second, second + first):
        bars = bar_rows(time_bars(frame(rows), "1m"))
        assert [(b["instrument"], b["ts"], b["open"], b["close"], b["trades"]) for b in bars] == [
            ("BTC-USDT-PERP", 0, 10.0, 12.0, 3), ("BTC-USDT-PERP", 60 * 10**9, 13.0, 13.0, 1),
            ("ETH", 0, 50.0, 50.0, 1)]


def test_side_volumes_and_unknown_side() -> None:
    bar = time_bars(frame([trade(1, 10.0, 2.0, side=1), trade(2, 20.0, 3.0, side=-1),
                           trade(3, 30.0, 5.0, side=0, trade_id="2")]), "1h").row(0, named=True)
    assert (bar["volume"], bar["buy_volume"], bar["sell_volume"], bar["notional"]) == (10.0, 2.0, 3.0, 230.0)
    assert bar["vwap"] == 23.0


def test_fill_carries_the_previous_close() -> None:
    rows = [trade(10, 100.0, 1), trade(20, 105.0, 2, trade_id="2"), trade(190, 90.0, 1, trade_id="3")]
    bars = bar_rows(time_bars(frame(rows), "1m", fill=True))
    assert [(b["ts"] // 10**9, b["open"], b["high"], b["low"], b["close"], b["volume"], b["trades"], b["vwap"],
             b["first_ts"]) for b in bars] == [
        (0, 100.0, 105.0, 100.0, 105.0, 3.0, 2, 310.0 / 3, 10 * 10**9),
        (60, 105.0, 105.0, 105.0, 105.0, 0.0, 0, None, None),
        (120, 105.0, 105.0, 105.0, 105.0, 0.0, 0, None, None),
        (180, 90.0, 90.0, 90.0, 90.0, 1.0, 1, 90.0, 190 * 10**9)]
    assert len(time_bars(frame(rows), "1m")) == 2


def test_fill_on_the_recorded_session(trades: pl.DataFrame) -> None:
    """1 s bars of the 30 s cryptofeed session, gaps filled per instrument, against plain Python."""
    session = trades.filter(pl.col("date") == pl.date(2021, 7, 22))
    got = bar_rows(time_bars(session, "1s", fill=True))
    real = {(b["instrument"], b["ts"]): b for b in expected_time_bars(python_rows(session), NS["1s"])}
    expected = []
    for instrument in sorted({key[0] for key in real}):
        seconds = sorted(ts for inst, ts in real if inst == instrument)
        close = None
        for ts in range(seconds[0], seconds[-1] + 1, NS["1s"]):
            bar = real.get((instrument, ts))
            if bar is None:
                bar = {"venue": "binance-usdm", "instrument": instrument, "ts": ts, "open": close, "high": close,
                       "low": close, "close": close, "volume": 0.0, "notional": 0.0, "vwap": None, "trades": 0,
                       "buy_volume": 0.0, "sell_volume": 0.0, "first_ts": None, "last_ts": None}
            expected.append(bar)
            close = bar["close"]
    assert sum(1 for b in expected if b["trades"] == 0) > 20
    assert [b["vwap"] is None for b in got] == [b["vwap"] is None for b in expected]
    assert_bars_equal([{**b, "vwap": b["vwap"] or 0.0} for b in got],
                      [{**b, "vwap": b["vwap"] or 0.0} for b in expected])


def test_empty_input() -> None:
    for bars in (time_bars(frame([]), "1m"), time_bars(frame([]), "1m", fill=True), tick_bars(frame([]), 10),
                 volume_bars(frame([]), 1.0), dollar_bars(frame([]), 1.0)):
        assert bars.is_empty() and bars.schema == pl.Schema(BAR_SCHEMA)


def expected_threshold_bars(trades: list[Row], measure: str, threshold: float) -> list[Row]:
    """Bars closed by the trade that brings the running sum to the threshold, no carry-over."""
    per_instrument: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for t in trades:
        per_instrument[(t["venue"], t["instrument"])].append(t)
    bars = []
    for key in sorted(per_instrument):
        current: list[Row] = []
        running = 0.0
        for t in sorted(per_instrument[key], key=trade_order):
            current.append(t)
            running += 1 if measure == "ticks" else t["size"] if measure == "volume" else t["price"] * t["size"]
            if running >= threshold:
                bars.append(bar_of(current[0]["ts_event"], current))
                current, running = [], 0.0
        if current:
            bars.append(bar_of(current[0]["ts_event"], current))
    return sorted(bars, key=lambda b: (b["venue"], b["instrument"], b["ts"]))


def test_threshold_bars_match_plain_python(trades: pl.DataFrame) -> None:
    rows = python_rows(trades)
    btc = [t for t in rows if t["instrument"] == "BTC-USDT-PERP" and t["venue"] == "binance-usdm"]
    assert len(btc) == 21313
    ticks = bar_rows(tick_bars(trades, 1000))
    assert_bars_equal(ticks, expected_threshold_bars(rows, "ticks", 1000))
    assert [b["trades"] for b in ticks if b["instrument"] == "BTC-USDT-PERP" and b["venue"] == "binance-usdm"] == \
        [1000] * 21 + [313]
    assert_bars_equal(bar_rows(volume_bars(trades, 25.0)), expected_threshold_bars(rows, "volume", 25.0))
    assert_bars_equal(bar_rows(dollar_bars(trades, 1_000_000.0)), expected_threshold_bars(rows, "dollar", 1e6))


def test_crossing_trade_goes_whole_to_the_closing_bar() -> None:
    rows = [trade(1, 10.0, 5, trade_id="1"), trade(2, 10.0, 12, trade_id="2"), trade(3, 10.0, 3, trade_id="3"),
            trade(4, 10.0, 3, trade_id="4"), trade(5, 10.0, 4, trade_id="5")]
    bars = volume_bars(frame(rows[::-1]), 10.0)
    assert bars["volume"].to_list() == [17.0, 10.0]
    assert bars["trades"].to_list() == [2, 3]
    assert bars["ts"].cast(pl.Int64).to_list() == [10**9, 3 * 10**9]
    assert dollar_bars(frame(rows), 100.0)["notional"].to_list() == [170.0, 100.0]
    assert tick_bars(frame(rows), 2)["trades"].to_list() == [2, 2, 1]


def test_thresholds_must_be_positive() -> None:
    rows = frame([trade(1, 10.0, 1)])
    for build in (lambda: tick_bars(rows, 0), lambda: volume_bars(rows, 0.0), lambda: dollar_bars(rows, -1.0)):
        with pytest.raises(ValueError, match="must be positive"):
            build()


def test_bars_count_market_trades_unless_asked() -> None:
    """A block trade (or a liquidation fill, an insurance-fund print) is kept with the trades but left
    out of bars, VWAP and volume by default, as venues leave it out of theirs."""
    import datetime as dt

    from pipelines.bars import tick_bars, time_bars

    at = dt.datetime(2024, 8, 8, tzinfo=dt.UTC)
    trades = pl.DataFrame({
        "venue": ["bybit"] * 3, "instrument": ["BTC-USDT-PERP"] * 3,
        "ts_event": [at, at + dt.timedelta(seconds=1), at + dt.timedelta(seconds=2)],
        "ts_recv": [at, at + dt.timedelta(seconds=1), at + dt.timedelta(seconds=2)],
        "price": [100.0, 90.0, 101.0], "size": [1.0, 50.0, 2.0], "side": [1, -1, 1],
        "trade_id": ["1", "2", "3"], "trade_type": [None, "block", None],
    }).with_columns(pl.col("ts_event", "ts_recv").cast(pl.Datetime("ns", "UTC")), pl.col("side").cast(pl.Int8))
    market = time_bars(trades, "1m")
    assert market.select("low", "volume", "trades").row(0) == (100.0, 3.0, 2)
    every = time_bars(trades, "1m", non_market=True)
    assert every.select("low", "volume", "trades").row(0) == (90.0, 53.0, 3)
    assert tick_bars(trades, 10)["trades"].to_list() == [2]
    assert tick_bars(trades, 10, non_market=True)["trades"].to_list() == [3]
