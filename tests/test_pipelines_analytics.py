"""Analytics on the real-capture lake and on small hand-built frames, against plain Python.

Counts, prices picked from rows and times are compared exactly; means, logs and square roots to 1e-12
relative (polars and Python add in different orders).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.flags import DERIVED, SAMPLED
from pipelines.analytics import (
    basis,
    funding_comparison,
    liquidation_aggregates,
    open_interest_changes,
    order_flow_imbalance,
    price_dispersion,
    realized_volatility,
    spot_perp_basis,
    spread_stats,
    term_structure,
)
from pipelines.bars import time_bars
from pipelines.funding import funding_history
from pipelines.quality import basis_legs, funding_intervals_known, funding_rates_in_bounds, term_structure_sane
from storage.lake_write import write_records
from tests import binance_spot_data, kraken_futures_data
from tests.pipelines_data import private_lake, read_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_lake(tmp_path_factory)


NS_PER_S = 10**9
MINUTE = 60 * NS_PER_S
HOUR = 3600 * NS_PER_S
DAY = 86400 * NS_PER_S
YEAR_S = 365 * 86400
TS = pl.Datetime("ns", "UTC")
Row = dict[str, Any]


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-300)


def rows_ns(frame: pl.DataFrame) -> list[Row]:
    """Rows with every timestamp as int ns (Python datetimes would drop the nanoseconds)."""
    return frame.with_columns(pl.col(TS).cast(pl.Int64)).rows(named=True)


def frame(rows: list[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    times = [name for name, dtype in schema.items() if dtype == TS]
    ints = {name: (pl.Int64() if name in times else dtype) for name, dtype in schema.items()}
    return pl.DataFrame(rows, schema=ints, orient="row").with_columns(pl.col(*times).cast(TS))


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.fixture(scope="module")
def trades(lake: Path) -> pl.DataFrame:
    return read_lake(lake, "trade")


def last_trade_price(trades: list[Row]) -> float:
    return max(trades, key=lambda t: (t["ts_event"], t["ts_recv"], len(t["trade_id"]), t["trade_id"]))["price"]


@pytest.mark.parametrize("horizon,seconds", [("1m", 60), ("5m", 300)])
def test_realized_volatility_from_the_trades(trades: pl.DataFrame, horizon: str, seconds: int) -> None:
    got = {(r["venue"], r["instrument"], r["date"]): r
           for r in realized_volatility(time_bars(trades, "1m"), (horizon,)).rows(named=True)}
    buckets: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for t in rows_ns(trades):
        buckets[(t["venue"], t["instrument"], t["ts_event"] // (seconds * NS_PER_S))].append(t)
    closes: dict[tuple[str, str, dt.date], list[tuple[int, float]]] = defaultdict(list)
    for (venue, instrument, bucket), rows in sorted(buckets.items()):
        day = dt.date(1970, 1, 1) + dt.timedelta(seconds=bucket * seconds // 86400 * 86400)
        closes[(venue, instrument, day)].append((bucket, last_trade_price(rows)))
    expected = {}
    for key, series in closes.items():
        returns = [(math.log(c / p), b - a) for (a, p), (b, c) in itertools.pairwise(series)]
        if returns:
            variance = math.fsum(r * r for r, _ in returns)
            periods = sum(n for _, n in returns)
            expected[key] = (len(returns), periods, variance, math.sqrt(variance / periods * YEAR_S / seconds))
    assert expected, "the lake has returns at this horizon"
    assert set(got) == set(expected)
    for key, (count, periods, variance, vol) in expected.items():
        row = got[key]
        assert (row["horizon"], row["returns"], row["periods"]) == (horizon, count, periods)
        assert (row["realized_variance"], row["annualized_vol"]) == (approx(variance), approx(vol))


def bar(instrument: str, ts_s: int, close: float, venue: str = "binance-usdm") -> Row:
    return {"venue": venue, "instrument": instrument, "ts": ts_s * NS_PER_S, "close": close}


BAR = {"venue": pl.String(), "instrument": pl.String(), "ts": TS, "close": pl.Float64()}


def test_realized_volatility_across_a_gap_and_a_midnight() -> None:
    bars = frame([bar("X", 0, 100.0), bar("X", 60, 101.0), bar("X", 240, 99.0),
                  bar("X", 86340, 50.0), bar("X", 86400, 55.0), bar("X", 86460, 55.0)], BAR)
    rows = realized_volatility(bars, ("1m",)).rows(named=True)
    variance = math.log(101 / 100) ** 2 + math.log(99 / 101) ** 2 + math.log(50 / 99) ** 2
    # periods: 1, then 3 minutes to 00:04, then 1435 to 23:59; nothing across midnight
    assert [(r["date"], r["returns"], r["periods"]) for r in rows] == [
        (dt.date(1970, 1, 1), 3, 1439), (dt.date(1970, 1, 2), 1, 1)]
    assert rows[0]["realized_variance"] == approx(variance)
    assert rows[0]["annualized_vol"] == approx(math.sqrt(variance / 1439 * 525600))
    assert (rows[1]["realized_variance"], rows[1]["annualized_vol"]) == (0.0, 0.0)
    assert realized_volatility(bars.head(0)).is_empty()


def test_spread_stats_of_the_recorded_books(lake: Path) -> None:
    bbo = read_lake(lake, "bbo")
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for q in rows_ns(bbo):
        if q["bid_price"] is not None and q["ask_price"] is not None:
            day = dt.date(1970, 1, 1) + dt.timedelta(days=q["ts_event"] // DAY)
            groups[(q["venue"], q["instrument"], day, bool(q["flags"] & DERIVED))].append(q)
    got = {(r["venue"], r["instrument"], r["date"], r["derived"]): r for r in spread_stats(bbo).rows(named=True)}
    assert set(got) == set(groups) and len(got) == 17
    for key, quotes in groups.items():
        spreads = [q["ask_price"] - q["bid_price"] for q in quotes]
        bps = [(q["ask_price"] - q["bid_price"]) / ((q["ask_price"] + q["bid_price"]) / 2) * 1e4 for q in quotes]
        row = got[key]
        assert row["quotes"] == len(quotes)
        assert row["spread_median"] == approx(statistics.median(spreads))
        assert row["spread_p95"] == approx(percentile(spreads, 0.95))
        assert row["spread_mean"] == approx(math.fsum(spreads) / len(spreads))
        assert row["spread_bps_mean"] == approx(math.fsum(bps) / len(bps))
        assert row["spread_bps_median"] == approx(statistics.median(bps))
        assert row["spread_bps_p95"] == approx(percentile(bps, 0.95))
        assert row["bid_size_mean"] == approx(math.fsum(q["bid_size"] for q in quotes) / len(quotes))
        assert row["ask_size_mean"] == approx(math.fsum(q["ask_size"] for q in quotes) / len(quotes))
        assert row["crossed_share"] == sum(q["bid_price"] > q["ask_price"] for q in quotes) / len(quotes)
        assert row["locked_share"] == sum(q["bid_price"] == q["ask_price"] for q in quotes) / len(quotes)
    btc = got[("binance-usdm", "BTC-USDT-PERP", dt.date(2024, 8, 8), False)]
    assert btc["quotes"] == 66088


BBO = {"venue": pl.String(), "instrument": pl.String(), "ts_event": TS, "flags": pl.Int32(),
       "bid_price": pl.Float64(), "bid_size": pl.Float64(), "ask_price": pl.Float64(), "ask_size": pl.Float64()}


def test_spread_stats_crossed_locked_and_one_sided() -> None:
    quotes = frame([["okx", "X", 1, DERIVED, 100.0, 1.0, 101.0, 2.0], ["okx", "X", 2, DERIVED, 100.0, 3.0, 100.0, 4.0],
                    ["okx", "X", 3, DERIVED, 101.0, 5.0, 100.0, 6.0], ["okx", "X", 4, DERIVED, 99.0, 7.0, 100.0, 8.0],
                    ["okx", "X", 5, DERIVED, None, None, 100.0, 9.0]], BBO)
    row = spread_stats(quotes).row(0, named=True)
    assert (row["quotes"], row["crossed_share"], row["locked_share"]) == (4, 0.25, 0.25)
    assert (row["spread_mean"], row["spread_median"], row["bid_size_mean"], row["ask_size_mean"]) == (
        0.25, 0.5, 4.0, 5.0)
    assert row["spread_p95"] == 1.0  # ranks 2 and 3 of [-1, 0, 1, 1] are both 1


MARK_INDEX = {"venue": pl.String(), "instrument": pl.String(), "ts_event": TS, "ts_recv": TS,
              "mark_price": pl.Float64(), "index_price": pl.Float64()}


def test_basis_is_time_weighted_within_each_hour() -> None:
    rows = [["bybit", "X", 0, 0, 110.0, 100.0], ["bybit", "X", 900 * NS_PER_S, 0, 120.0, 100.0],
            ["bybit", "X", 5400 * NS_PER_S, 0, 130.0, 100.0], ["bybit", "X", 6000 * NS_PER_S, 0, None, 100.0]]
    got = rows_ns(basis(frame(rows, MARK_INDEX)))
    assert [(r["hour"], r["observations"], r["covered_s"]) for r in got] == [(0, 2, 3600.0), (HOUR, 1, 3600.0)]
    assert (got[0]["basis"], got[0]["basis_bps"], got[0]["mark"]) == (
        approx((10 * 900 + 20 * 2700) / 3600), approx((1000 * 900 + 2000 * 2700) / 3600), approx(117.5))
    assert (got[1]["basis"], got[1]["index"]) == (approx(25.0), approx(100.0))


def test_basis_of_the_recorded_tickers(lake: Path) -> None:
    got = {(r["venue"], r["instrument"]): r for r in rows_ns(basis(read_lake(lake, "mark_index")))}
    bybit = got[("bybit", "BTC-USDT-PERP")]
    assert (bybit["observations"], bybit["mark"], bybit["index"]) == (1, approx(28552.81), approx(28562.25))
    assert bybit["basis"] == approx(28552.81 - 28562.25)
    assert bybit["basis_bps"] == approx((28552.81 - 28562.25) / 28562.25 * 1e4)
    assert bybit["covered_s"] == 3600 - (1680673821770 - 1680670800000) / 1000
    binance = got[("binance-usdm", "BTC-USDT-PERP")]
    assert (binance["hour"], binance["covered_s"]) == (1597536000 * NS_PER_S, 3592.0)
    assert ("okx", "WNCG-USDT-PERP") not in got  # OKX's mark comes without an index
    assert len(got) == 6


OI = {"venue": pl.String(), "instrument": pl.String(), "ts_event": TS, "ts_recv": TS, "open_interest": pl.Float64()}


def test_open_interest_changes() -> None:
    rows = [["okx", "X", 10 * NS_PER_S, 0, 110.0], ["okx", "X", 5 * NS_PER_S, 0, 100.0],
            ["okx", "X", 20 * NS_PER_S, 0, 90.0], ["okx", "X", HOUR, 0, 0.0], ["okx", "X", HOUR + 1, 0, 5.0]]
    got = rows_ns(open_interest_changes(frame(rows, OI)))
    assert [(r["hour"], r["observations"], r["first"], r["last"], r["change"], r["first_ts"], r["last_ts"])
            for r in got] == [(0, 3, 100.0, 90.0, -10.0, 5 * NS_PER_S, 20 * NS_PER_S),
                              (HOUR, 2, 0.0, 5.0, 5.0, HOUR, HOUR + 1)]
    assert got[0]["pct"] == approx(-10.0) and got[1]["pct"] is None


def test_open_interest_of_the_recorded_tickers(lake: Path) -> None:
    got = {(r["venue"], r["instrument"]): r for r in open_interest_changes(read_lake(lake, "open_interest")).rows(
        named=True)}
    inverse = got[("bybit", "BTC-USD-PERP")]
    assert (inverse["observations"], inverse["first"], inverse["change"], inverse["pct"]) == (2, 15747.08, 0.0, 0.0)
    assert got[("okx", "WNCG-USDT-PERP")]["first"] == 644195.0
    assert len(got) == 6


def test_liquidations_of_the_recorded_feeds(lake: Path) -> None:
    got = rows_ns(liquidation_aggregates(read_lake(lake, "liquidation")))
    assert [(r["venue"], r["instrument"], r["side"], r["count"], r["size"], r["sampled"]) for r in got] == [
        ("binance-usdm", "BTC-USDT-PERP", -1, 1, 0.014, True), ("bybit", "PIPPIN-USDT-PERP", -1, 1, 2846.0, False)]
    assert (got[0]["notional"], got[1]["notional"]) == (4706.04 * 0.014, 0.02456 * 2846.0)
    assert got[0]["hour"] == 1584057600 * NS_PER_S


LIQUIDATION = {"venue": pl.String(), "instrument": pl.String(), "ts_event": TS, "flags": pl.Int32(),
               "price": pl.Float64(), "size": pl.Float64(), "side": pl.Int8()}


def test_liquidations_per_side_and_hour() -> None:
    rows = [["okx", "X", 1, SAMPLED, 10.0, 1.0, 1], ["okx", "X", 2, 0, 20.0, 2.0, 1], ["okx", "X", 3, 0, 30.0, 3.0, -1],
            ["okx", "X", HOUR, 0, 40.0, 4.0, 1]]
    got = rows_ns(liquidation_aggregates(frame(rows, LIQUIDATION)))
    assert [(r["hour"], r["side"], r["count"], r["size"], r["notional"], r["sampled"]) for r in got] == [
        (0, -1, 1, 3.0, 90.0, False), (0, 1, 2, 3.0, 50.0, True), (HOUR, 1, 1, 4.0, 160.0, False)]


def test_price_dispersion_across_venues() -> None:
    bars = frame([bar("BTC-USDT-PERP", 0, 99.0), bar("BTC-USDT-PERP", 30, 100.0),
                  bar("BTC-USDC-PERP", 10, 101.0, venue="hyperliquid"), bar("BTC-USD-PERP", 0, 102.0, venue="bybit"),
                  bar("BTC-USDT", 0, 500.0, venue="okx"), bar("ETH-USDT-PERP", 60, 10.0)], BAR)
    got = rows_ns(price_dispersion(bars))
    assert [(r["underlying"], r["ts"], r["instruments"], r["max_close"], r["min_close"], r["mean_close"])
            for r in got] == [("BTC", 0, 3, 102.0, 100.0, 101.0), ("ETH", MINUTE, 1, 10.0, 10.0, 10.0)]
    assert (got[0]["std_close"], got[0]["range_bps"], got[0]["std_bps"]) == (
        approx(1.0), approx(2 / 101 * 1e4), approx(1 / 101 * 1e4))
    assert (got[1]["std_close"], got[1]["range_bps"], got[1]["std_bps"]) == (None, 0.0, None)


def test_price_dispersion_of_the_recorded_bars(trades: pl.DataFrame) -> None:
    got = price_dispersion(time_bars(trades, "1m"))
    btc = got.filter(pl.col("underlying") == "BTC")
    assert btc["instruments"].to_list() == [1] * 9  # 6 Binance, 2 Hyperliquid, 1 Bybit minutes: never together
    assert set(got["underlying"]) == {"AKRO", "BTC", "CTK", "KEEP", "SUSHI", "UNI", "LTC"}


def test_order_flow_imbalance_of_the_recorded_trades(trades: pl.DataFrame) -> None:
    sums: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for t in rows_ns(trades):
        side = sums[(t["venue"], t["instrument"], t["ts_event"] // MINUTE * MINUTE)]
        if t["side"] in (1, -1):
            side[0 if t["side"] == 1 else 1] += t["size"]
    got = {(r["venue"], r["instrument"], r["ts"]): r for r in rows_ns(order_flow_imbalance(trades))}
    assert set(got) == set(sums)
    for key, (buy, sell) in sums.items():
        row = got[key]
        assert (row["buy_volume"], row["sell_volume"]) == (approx(buy), approx(sell))
        assert row["imbalance"] == approx((buy - sell) / (buy + sell))
    assert got[("binance-usdm", "BTC-USDT-PERP", 1723161240 * NS_PER_S)]["imbalance"] == approx(
        (50.874 - 75.093) / (50.874 + 75.093))


def test_order_flow_imbalance_without_sides() -> None:
    schema = {"venue": pl.String(), "instrument": pl.String(), "ts_event": TS, "size": pl.Float64(),
              "side": pl.Int8()}
    got = order_flow_imbalance(frame([["okx", "X", 1, 2.0, 0], ["okx", "X", 5 * MINUTE, 3.0, 1]], schema), "5m")
    assert got.select("buy_volume", "sell_volume", "imbalance").rows() == [(0.0, 0.0, None), (3.0, 0.0, 1.0)]


@pytest.fixture(scope="module")
def venues_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Binance spot's BTCUSDT session (the same 6 minutes as the lake's USD-M perpetual) and Kraken Futures'
    session (3 perpetuals and 7 futures), normalized as the pipelines tests' lake is."""
    root = tmp_path_factory.mktemp("venues-lake")
    for venue, paths in (("binance-spot", [binance_spot_data.BTCUSDT_SESSION]),
                         ("kraken-futures", kraken_futures_data.RUN)):
        out, _ = normalize_frames(venue, read_frames(paths))
        write_records(str(root), out.records, venue)
    return root


@pytest.fixture(scope="module")
def every_bbo(lake: Path, venues_lake: Path) -> pl.DataFrame:
    return pl.concat([read_lake(lake, "bbo"), read_lake(venues_lake, "bbo")], how="diagonal_relaxed")


def last_mids(bbo: pl.DataFrame) -> dict[tuple[str, str, int], tuple[float, int]]:
    """(venue, instrument, minute) -> (mid, ts_event) of the last two-sided quote of the minute, the venue's own
    quotes before ticklake's derived ones, in plain Python."""
    best: dict[tuple[str, str, int], tuple[tuple[bool, int, int], float, int]] = {}
    for q in rows_ns(bbo):
        if q["bid_price"] is None or q["ask_price"] is None:
            continue
        key = (q["venue"], q["instrument"], q["ts_event"] // MINUTE * MINUTE)
        rank = (not q["flags"] & DERIVED, q["ts_event"], q["ts_recv"])
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, (q["bid_price"] + q["ask_price"]) / 2, q["ts_event"])
    return {key: (mid, ts) for key, (_, mid, ts) in best.items()}


def test_spot_perp_basis_of_binance_spot_and_usdm(every_bbo: pl.DataFrame) -> None:
    """Every venue's recorded quotes at once: only Binance spot and USD-M BTCUSDT quote in the same minutes."""
    mids = last_mids(every_bbo)
    spot = {ts: v for (venue, instrument, ts), v in mids.items() if (venue, instrument) == ("binance-spot", "BTC-USDT")}
    perp = {ts: v for (venue, instrument, ts), v in mids.items()
            if (venue, instrument) == ("binance-usdm", "BTC-USDT-PERP")}
    got = rows_ns(spot_perp_basis(every_bbo))
    assert [r["ts"] for r in got] == sorted(spot.keys() & perp.keys())
    assert len(got) == 7  # 23:54 to 23:59, and the first second of 2024-08-09
    for r in got:
        (spot_mid, spot_ts), (perp_mid, perp_ts) = spot[r["ts"]], perp[r["ts"]]
        assert (r["underlying"], r["spot_venue"], r["spot_instrument"], r["perp_venue"], r["perp_instrument"]) == (
            "BTC", "binance-spot", "BTC-USDT", "binance-usdm", "BTC-USDT-PERP")
        assert (r["spot_mid"], r["perp_mid"], r["spot_ts"], r["perp_ts"]) == (spot_mid, perp_mid, spot_ts, perp_ts)
        assert r["basis"] == perp_mid - spot_mid
        assert r["basis_bps"] == approx((perp_mid - spot_mid) / spot_mid * 1e4)
    assert got[0]["basis"] == approx(-24.245)  # the perpetual a few dollars under spot all along
    assert all(-6 < r["basis_bps"] < -2 for r in got)
    check = basis_legs(spot_perp_basis(every_bbo))
    assert check.passed and check.metadata == {"rows": 7, "pairs": 1, "bad_rows": 0}


BBO_RECV = BBO | {"ts_recv": TS}


def test_spot_perp_basis_pairs_dollar_quotes_in_the_same_minute() -> None:
    """USD spot meets a USDT perpetual; a EUR spot does not; the venue's own quote wins over a derived one in
    the same minute, and a derived one stands in where the venue sent none; a leg alone in its minute has
    no row."""
    quotes = frame([["coinbase", "BTC-USD", 1, 0, 100.0, 1.0, 102.0, 1.0, 1],
                    ["coinbase", "BTC-USD", 2, DERIVED, 90.0, 1.0, 91.0, 1.0, 2],
                    ["binance-usdm", "BTC-USDT-PERP", 5, DERIVED, 103.0, 1.0, 105.0, 1.0, 5],
                    ["kraken", "BTC-EUR", 3, 0, 90.0, 1.0, 92.0, 1.0, 3],
                    ["bybit", "BTC-USDT-PERP", MINUTE, 0, 110.0, 1.0, 112.0, 1.0, MINUTE],
                    ["coinbase", "ETH-USD", 4, 0, 10.0, 1.0, 11.0, 1.0, 4]], BBO_RECV)
    got = rows_ns(spot_perp_basis(quotes))
    assert [(r["underlying"], r["ts"], r["spot_instrument"], r["perp_venue"], r["spot_mid"], r["perp_mid"],
             r["spot_ts"], r["perp_ts"], r["basis"]) for r in got] == [
        ("BTC", 0, "BTC-USD", "binance-usdm", 101.0, 104.0, 1, 5, 3.0)]
    assert got[0]["basis_bps"] == approx(3 / 101 * 1e4)
    legs = spot_perp_basis(quotes).with_columns(pl.col("ts").dt.offset_by("-1m"))
    assert not basis_legs(legs).passed  # both quotes now after the row's minute


def test_term_structure_of_kraken_futures(venues_lake: Path) -> None:
    bbo, instruments = read_lake(venues_lake, "bbo"), read_lake(venues_lake, "instrument")
    kraken = rows_ns(instruments.filter(pl.col("venue") == "kraken-futures"))
    expiries = {r["instrument"]: r["expiry_ts"] for r in kraken if r["expiry_ts"] is not None}
    mids = last_mids(bbo.filter(pl.col("venue") == "kraken-futures"))
    expected = {}
    for (_, instrument, ts), (mid, _) in mids.items():
        base, quote, third = [*instrument.split("-"), ""][:3]
        reference = mids.get(("kraken-futures", f"{base}-{quote}-PERP", ts))
        if third.isdigit() and instrument in expiries and reference and expiries[instrument] > ts:
            expected[instrument] = (ts, expiries[instrument], mid, reference[0])
    got = {r["instrument"]: r for r in rows_ns(term_structure(bbo, instruments))}
    # ETH: two expiries against PI_ETHUSD; XRP: one; BTC and BCH have no perpetual in the session
    assert set(got) == set(expected) == {"ETH-USD-20210730", "ETH-USD-20211231", "XRP-USD-20210924"}
    for instrument, (ts, expiry, future_mid, reference_mid) in expected.items():
        r = got[instrument]
        days = (expiry - ts) / DAY
        assert (r["ts"], r["expiry"], r["future_mid"], r["reference_mid"]) == (ts, expiry, future_mid, reference_mid)
        assert r["reference_instrument"] == instrument.split("-")[0] + "-USD-PERP"
        assert r["basis"] == future_mid - reference_mid
        assert r["days_to_expiry"] == approx(days)
        assert r["annualized_basis"] == approx((future_mid / reference_mid - 1) * 365 / days)
    assert got["ETH-USD-20210730"]["expiry"] == 1627657200 * NS_PER_S  # Kraken's 15:00 UTC expiry
    assert [got[i]["rank"] for i in ("ETH-USD-20210730", "ETH-USD-20211231", "XRP-USD-20210924")] == [1, 2, 1]
    check = term_structure_sane(term_structure(bbo, instruments))
    assert check.passed and check.metadata == {"rows": 3, "curves": 2, "bad_rows": 0}


def test_term_structure_check_finds_a_misordered_curve(venues_lake: Path) -> None:
    curve = term_structure(read_lake(venues_lake, "bbo"), read_lake(venues_lake, "instrument"))
    swapped = curve.with_columns(pl.when(pl.col("underlying") == "ETH").then(3 - pl.col("rank"))
                                 .otherwise(pl.col("rank")).alias("rank"))
    assert term_structure_sane(swapped).metadata["bad_rows"] == 2
    wild = curve.with_columns(pl.col("annualized_basis") * 50)
    assert term_structure_sane(wild).metadata["bad_rows"] == 1  # ETH-USD-20210730, 7.7 days out: -2.4 a year


def test_funding_comparison_of_the_recorded_funding(lake: Path) -> None:
    history = funding_history(read_lake(lake, "funding"))
    groups: dict[tuple[str, str, dt.date], list[Row]] = defaultdict(list)
    for r in sorted(rows_ns(history), key=lambda r: r["funding_time"]):
        if r["instrument"].endswith("-PERP"):
            day = dt.date(1970, 1, 1) + dt.timedelta(days=r["funding_time"] // DAY)
            groups[(r["venue"], r["instrument"], day)].append(r)
    got = funding_comparison(history)
    rows = {(r["venue"], r["instrument"], r["date"]): r for r in got.rows(named=True)}
    assert set(rows) == set(groups)
    for key, settlements in groups.items():
        row, last = rows[key], settlements[-1]
        assert (row["settlements"], row["interval_s"], row["rate_last"]) == (
            len(settlements), last["interval_s"], last["rate"])
        assert row["funding_paid"] == approx(math.fsum(s["rate"] for s in settlements))
        if last["interval_s"] is None:
            assert (row["rate_8h_last"], row["rate_8h_mean"], row["annualized_last"]) == (None, None, None)
            continue
        per_8h = [s["rate"] * 28800 / s["interval_s"] for s in settlements]
        assert row["rate_8h_last"] == approx(per_8h[-1])
        assert row["rate_8h_mean"] == approx(statistics.fmean(per_8h))
        assert row["annualized_last"] == approx(last["rate"] * YEAR_S / last["interval_s"])
        assert row["underlying"] == key[1].split("-")[0]
    hyperliquid = rows[("hyperliquid", "BTC-USDC-PERP", dt.date(2023, 6, 8))]
    assert (hyperliquid["settlements"], hyperliquid["interval_s"]) == (24, 3600)  # hourly, restated x8
    assert hyperliquid["rate_8h_last"] == approx(hyperliquid["rate_last"] * 8)
    assert {r["interval_s"] for r in got.rows(named=True)} == {3600, 28800, None}
    assert funding_rates_in_bounds(got).passed
    # OKX's 2021 funding-rate message carries one settlement time only, so no interval: named
    unknown = funding_intervals_known(got)
    assert not unknown.passed and unknown.metadata == {"rows": len(groups), "unknown_intervals": 1}
    assert unknown.failures.select("venue", "instrument", "date").rows() == [
        ("okx", "WNCG-USDT-PERP", dt.date(2021, 12, 22))]


def test_funding_checks_name_unknown_intervals_and_wild_rates() -> None:
    history = frame([["okx", "A-USDT-PERP", 8 * HOUR, 0.0001, None, 28800, 0.0, 0.0],
                     ["bybit", "B-USDT-PERP", 8 * HOUR, 0.0001, None, None, 0.0, 0.0],
                     ["hyperliquid", "C-USDC-PERP", HOUR, 0.01, None, 3600, 0.0, 0.0],
                     ["okx", "A-USDT-20240329", 8 * HOUR, 0.5, None, 28800, 0.0, 0.0]],
                    {"venue": pl.String(), "instrument": pl.String(), "funding_time": TS, "rate": pl.Float64(),
                     "predicted_rate": pl.Float64(), "interval_s": pl.Int32(), "annualized_rate": pl.Float64(),
                     "cumulative_funding": pl.Float64()})
    got = funding_comparison(history.with_columns((pl.col("rate") * YEAR_S / pl.col("interval_s"))
                                                  .alias("annualized_rate")))
    assert got["instrument"].to_list() == ["B-USDT-PERP", "C-USDC-PERP", "A-USDT-PERP"]  # the future left out
    unknown = funding_intervals_known(got)
    assert not unknown.passed and unknown.failures["instrument"].to_list() == ["B-USDT-PERP"]
    wild = funding_rates_in_bounds(got)  # 1 % an hour is 8 % per 8 h
    assert not wild.passed and wild.failures["instrument"].to_list() == ["C-USDC-PERP"]
    assert wild.metadata["max_abs_rate_8h"] == approx(0.08)
