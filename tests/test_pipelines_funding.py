"""Funding history and cross-venue spreads, on the real-capture lake and on small hand-built records.

Hyperliquid's settled history is checked against its recorded fundingHistory body, read here as plain
JSON; stream records for the same settlements come from the real normalizer, fed activeAssetCtx frames (the
recorded fixture's shape, coin BTC) received inside the history's time range.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.flags import FROM_REST, TRAILING
from normalize.records import Funding
from pipelines.analytics import funding_comparison
from pipelines.funding import HISTORY_SCHEMA, SPREAD_SCHEMA, TRAILING_TOLERANCE_S, funding_history, funding_spreads
from tests import deribit_data
from tests.hyperliquid_data import DATA, FUNDING_BODY
from tests.pipelines_data import private_lake, read_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_lake(tmp_path_factory)


HOUR_MS = 3_600_000
MS = 1_000_000
YEAR_S = 365 * 24 * 3600
HOURLY_SINCE_MS = int(dt.datetime(2023, 6, 8, 0, 30, tzinfo=dt.UTC).timestamp() * 1000)
"""Hyperliquid settled every 8 h until 2023-06-08 00:00, then every hour (docs/venues.md, Hyperliquid)."""


def ns(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(*columns).cast(pl.Int64))


@pytest.fixture(scope="module")
def funding(lake: Path) -> pl.DataFrame:
    return read_lake(lake, "funding")


@pytest.fixture(scope="module")
def settled_body() -> list[dict[str, Any]]:
    return json.loads(FUNDING_BODY.read_text())


def test_hyperliquid_history_from_the_recorded_body(funding: pl.DataFrame, settled_body: list[dict[str, Any]]) -> None:
    history = funding_history(funding)
    assert history.schema == pl.Schema(HISTORY_SCHEMA)
    btc = ns(history.filter(pl.col("instrument") == "BTC-USDC-PERP"), "funding_time").rows(named=True)
    assert len(btc) == len(settled_body) == 1038
    cumulative = 0.0
    for row, entry in zip(btc, sorted(settled_body, key=lambda e: e["time"]), strict=True):
        rate = float(entry["fundingRate"])
        interval = 28800 if entry["time"] < HOURLY_SINCE_MS else 3600
        cumulative += rate
        assert row == {
            "venue": "hyperliquid", "instrument": "BTC-USDC-PERP",
            "funding_time": hour(entry),
            "rate": rate, "predicted_rate": None, "interval_s": interval,
            "annualized_rate": rate * YEAR_S / interval, "cumulative_funding": cumulative, "source": "venue",
            "stream_rate": None, "venue_rate": rate, "rate_diff": None, "stream_ts": None, "flags": FROM_REST}


def test_stream_settlements_of_the_other_venues(funding: pl.DataFrame) -> None:
    history = funding_history(funding).filter(pl.col("venue") != "hyperliquid")
    rows = {(r["venue"], r["instrument"], r["funding_time"]): r for r in history.rows(named=True)}
    utc = dt.UTC
    binance = rows[("binance-usdm", "BTC-USDT-PERP", dt.datetime(2019, 10, 1, 8, tzinfo=utc))]
    assert (binance["rate"], binance["interval_s"], binance["source"], binance["flags"]) == (0.0001, 28800, "stream", 0)
    assert binance["annualized_rate"] == pytest.approx(0.1095, rel=1e-12)  # 0.01 % three times a day, 365 days
    assert binance["stream_ts"] == dt.datetime(2019, 10, 1, 0, 0, 3, 1000, tzinfo=utc)
    second = rows[("binance-usdm", "BTC-USDT-PERP", dt.datetime(2020, 8, 16, 8, tzinfo=utc))]
    assert second["annualized_rate"] == pytest.approx(0.0001564 * 1095, rel=1e-12)
    assert second["cumulative_funding"] == pytest.approx(0.0002564, rel=1e-12)
    for instrument in ("BTC-USDT-PERP", "BTC-USD-PERP"):
        bybit = rows[("bybit", instrument, dt.datetime(2023, 4, 5, 8, tzinfo=utc))]
        assert (bybit["rate"], bybit["interval_s"]) == (0.0001, 28800)
        assert bybit["annualized_rate"] == pytest.approx(0.1095, rel=1e-12)
    wncg = rows[("okx", "WNCG-USDT-PERP", dt.datetime(2021, 12, 22, tzinfo=utc))]
    assert (wncg["rate"], wncg["interval_s"], wncg["annualized_rate"]) == (0.00048105, None, None)
    future = rows[("okx", "BTC-USD_UM_XPERP-20310404", dt.datetime(2026, 8, 5, tzinfo=utc))]
    assert (future["rate"], future["interval_s"]) == (-0.0004270396398519, 28800)
    assert len(rows) == 6


def hour(entry: dict[str, Any]) -> int:
    """A history entry's settlement time rounded to the hour, ns."""
    return (entry["time"] + HOUR_MS // 2) // HOUR_MS * HOUR_MS * MS


def asset_ctx_frame(ts_recv_ns: int, funding_rate: str) -> Frame:
    """The recorded activeAssetCtx frame, for BTC and with another funding value, received at ts_recv_ns."""
    message = json.loads((DATA / "activeAssetCtx.tardis-fixture.jsonl").read_text().splitlines()[0])
    message["data"]["coin"] = "BTC"
    message["data"]["ctx"]["funding"] = funding_rate
    return Frame(ts_recv_ns, "ws", json.dumps(message).encode())


def test_history_reconciles_with_stream_records(funding: pl.DataFrame, settled_body: list[dict[str, Any]]) -> None:
    hourly = sorted((e for e in settled_body if e["time"] >= HOURLY_SINCE_MS), key=lambda e: e["time"])
    same, other = hourly[-10], hourly[-5]
    after_history = hour(hourly[-1]) + HOUR_MS * MS
    frames = [asset_ctx_frame(hour(same) - 30 * 60 * 10**9, same["fundingRate"]),
              asset_ctx_frame(hour(other) - 20 * 60 * 10**9, "0.0000100"),
              asset_ctx_frame(hour(other) - 10 * 60 * 10**9, "0.0000200"),
              asset_ctx_frame(after_history - 15 * 60 * 10**9, "0.0000300")]
    emitted, _ = normalize_frames("hyperliquid", frames)
    stream = pl.from_arrow(to_arrow([r for r in emitted.records if isinstance(r, Funding)]))
    assert isinstance(stream, pl.DataFrame) and stream.height == 4
    venue = funding.filter(pl.col("venue") == "hyperliquid", (pl.col("flags") & FROM_REST) != 0)
    together = funding_history(pl.concat([funding.drop("date"), stream], how="vertical_relaxed"))
    apart = funding_history(stream, venue_history=venue)
    for history in (together, apart):
        rows = {r["funding_time"]: r for r in ns(history.filter(pl.col("instrument") == "BTC-USDC-PERP"),
                                                  "funding_time", "stream_ts").rows(named=True)}
        assert len(rows) == 1039
        agreed = rows[hour(same)]
        assert (agreed["source"], agreed["rate"], agreed["rate_diff"], agreed["flags"]) == (
            "both", float(same["fundingRate"]), 0.0, FROM_REST)
        assert agreed["stream_ts"] == hour(same) - 30 * 60 * 10**9
        differed = rows[hour(other)]
        assert (differed["source"], differed["rate"], differed["stream_rate"]) == (
            "both", float(other["fundingRate"]), 0.00002)
        assert differed["rate_diff"] == float(other["fundingRate"]) - 0.00002
        only_stream = rows[after_history]
        assert (only_stream["source"], only_stream["rate"], only_stream["rate_diff"], only_stream["flags"]) == (
            "stream", 0.00003, None, 0)
        assert sum(r["source"] == "venue" for r in rows.values()) == 1036


def record(venue: str, instrument: str, ts_s: float, rate: float, next_s: float | None, interval_s: int | None,
           predicted: float | None = None, flags: int = 0, recv_s: float | None = None) -> dict[str, Any]:
    return {"venue": venue, "instrument": instrument, "ts_event": int(ts_s * 1e9),
            "ts_recv": int((ts_s if recv_s is None else recv_s) * 1e9), "flags": flags, "funding_rate": rate,
            "predicted_rate": predicted, "interval_s": interval_s,
            "next_funding_ts": None if next_s is None else int(next_s * 1e9)}


def records(rows: list[dict[str, Any]]) -> pl.DataFrame:
    ts = pl.Datetime("ns", "UTC")
    schema = {"venue": pl.String, "instrument": pl.String, "ts_event": pl.Int64, "ts_recv": pl.Int64,
              "flags": pl.Int32, "funding_rate": pl.Float64, "predicted_rate": pl.Float64, "interval_s": pl.Int32,
              "next_funding_ts": pl.Int64}
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("ts_event", "ts_recv", "next_funding_ts").cast(ts))


H = 3600


def test_last_observation_before_settlement_and_forecasts() -> None:
    rows = [
        record("okx", "BTC-USDT-PERP", 1 * H, 0.0001, 8 * H, 28800, predicted=0.0003),
        record("okx", "BTC-USDT-PERP", 7 * H, 0.0002, 8 * H, 28800, predicted=0.0004),
        record("okx", "BTC-USDT-PERP", 7 * H, 0.00025, 8 * H, 28800, predicted=0.0005, recv_s=7 * H + 1),
        record("okx", "BTC-USDT-PERP", 8 * H + 1, 0.0009, 8 * H, 28800),  # after the settlement: not used
        record("okx", "BTC-USDT-PERP", 9 * H, 0.0006, 16 * H, 28800),
        record("okx", "BTC-USDT-PERP", 9 * H, 0.0001, None, None),  # no funding time: not used
        record("binance-usdm", "BTC-USDT-PERP", 15 * H, -0.0001, 16 * H, 28800, flags=FROM_REST),  # a forecast
    ]
    history = ns(funding_history(records(rows)), "funding_time", "stream_ts").rows(named=True)
    assert [(r["venue"], r["funding_time"] // 10**9, r["rate"], r["predicted_rate"], r["stream_ts"] // 10**9,
             r["source"], r["cumulative_funding"]) for r in history] == [
        ("binance-usdm", 16 * H, -0.0001, None, 15 * H, "stream", -0.0001),
        ("okx", 8 * H, 0.00025, None, 7 * H, "stream", 0.00025),
        ("okx", 16 * H, 0.0006, 0.0005, 9 * H, "stream", 0.00025 + 0.0006)]


def test_trailing_funding_stands_for_settlements_at_the_interval_boundaries() -> None:
    """Deribit-like records (TRAILING, the funding of the 8 h before ts_event): the one nearest each 8 h
    boundary within the tolerance stands for a settlement there; a boundary with none that near has no row."""
    tol = TRAILING_TOLERANCE_S
    rows = [
        record("deribit", "BTC-USD-PERP", 8 * H - 30, 0.0001, None, 28800, flags=TRAILING),
        record("deribit", "BTC-USD-PERP", 8 * H + 5, 0.0002, None, 28800, flags=TRAILING),  # the nearest
        record("deribit", "BTC-USD-PERP", 8 * H + tol - 1, 0.0009, None, 28800, flags=TRAILING),
        record("deribit", "BTC-USD-PERP", 12 * H, 0.0005, None, 28800, flags=TRAILING),  # mid-window: no settlement
        record("deribit", "BTC-USD-PERP", 16 * H - tol, 0.0003, None, 28800, flags=TRAILING),  # at the tolerance
        record("deribit", "BTC-USD-PERP", 24 * H + tol + 1, 0.0004, None, 28800, flags=TRAILING),  # too far
        record("deribit", "BTC-USD-PERP", 16 * H, 0.0007, None, 28800),  # not TRAILING, no funding time: unused
    ]
    history = ns(funding_history(records(rows)), "funding_time", "stream_ts").rows(named=True)
    assert [(r["funding_time"] // 10**9, r["rate"], r["stream_ts"] // 10**9, r["interval_s"], r["source"], r["flags"],
             r["cumulative_funding"]) for r in history] == [
        (8 * H, 0.0002, 8 * H + 5, 28800, "stream", TRAILING, 0.0002),
        (16 * H, 0.0003, 16 * H - tol, 28800, "stream", TRAILING, 0.0002 + 0.0003)]
    comparison = funding_comparison(funding_history(records(rows))).rows(named=True)
    assert [(r["venue"], r["settlements"], r["rate_8h_last"], r["funding_paid"]) for r in comparison] == [
        ("deribit", 2, 0.0003, 0.0002 + 0.0003)]


def test_deribit_perpetual_from_the_recorded_tickers() -> None:
    """The real tickers of BTC-PERPETUAL, each 4 s after a midnight, are that midnight's settlements."""
    out, _ = normalize_frames("deribit", read_frames([deribit_data.DATA / "ticker.tardis-fixture.jsonl"]))
    funding = pl.from_arrow(to_arrow([r for r in out.records if isinstance(r, Funding)]))
    assert isinstance(funding, pl.DataFrame)
    history = funding_history(funding)
    assert history.select("instrument", "funding_time", "rate", "interval_s", "flags").rows() == [
        ("BTC-USD-PERP", dt.datetime(2019, 8, 1, tzinfo=dt.UTC), 0.00016281, 28800, TRAILING),
        ("BTC-USD-PERP", dt.datetime(2019, 10, 1, tzinfo=dt.UTC), -8.477e-05, 28800, TRAILING)]
    assert funding_comparison(history).select("venue", "date", "settlements", "rate_8h_last").rows() == [
        ("deribit", dt.date(2019, 8, 1), 1, 0.00016281), ("deribit", dt.date(2019, 10, 1), 1, -8.477e-05)]


def test_empty_input() -> None:
    history = funding_history(records([]))
    assert history.is_empty() and history.schema == pl.Schema(HISTORY_SCHEMA)
    spreads = funding_spreads(history)
    assert spreads.is_empty() and spreads.schema == pl.Schema(SPREAD_SCHEMA)


def test_spreads_compare_hourly_and_eight_hourly_venues() -> None:
    rows = [record("hyperliquid", "BTC-USDC-PERP", (h - 1) * H + 60, 0.00002, h * H, 3600) for h in range(1, 10)]
    rows += [record("binance-usdm", "BTC-USDT-PERP", 7 * H, 0.0001, 8 * H, 28800),
             record("bybit", "BTC-USD-PERP", 7 * H, 0.00005, 8 * H, 28800),
             record("okx", "BTC-USD-20220325", 7 * H, 0.0001, 8 * H, 28800),  # a future: no spread
             record("okx", "ETH-USDT-PERP", 7 * H, 0.0001, 8 * H, 28800)]
    spreads = ns(funding_spreads(funding_history(records(rows))), "funding_time")
    btc = spreads.filter(pl.col("underlying") == "BTC")
    hours = btc.group_by("funding_time").agg(pl.len(), pl.col("spread").first(), pl.col("max_annualized").first(),
                                             pl.col("min_annualized").first()).sort("funding_time").rows()
    hyperliquid, binance, bybit = 0.00002 * 8760, 0.0001 * 1095, 0.00005 * 1095  # fractions per year
    assert [h for h, *_ in hours] == [h * H * 10**9 for h in range(1, 10)]
    for _, count, spread, high, low in hours[:8]:
        assert count == 3
        assert (high, low) == pytest.approx((hyperliquid, bybit), rel=1e-12)
        assert spread == pytest.approx(hyperliquid - bybit, rel=1e-12)
    assert hours[8][1:] == (1, None, pytest.approx(hyperliquid, rel=1e-12), pytest.approx(hyperliquid, rel=1e-12))
    assert btc.filter(pl.col("venue") == "binance-usdm")["annualized_rate"].to_list() == pytest.approx(
        [binance] * 8, rel=1e-12)
    assert set(spreads["underlying"]) == {"BTC", "ETH"}
    assert spreads.filter(pl.col("underlying") == "ETH")["instruments"].to_list() == [1] * 8


def test_spreads_of_the_recorded_bybit_tickers(funding: pl.DataFrame) -> None:
    spreads = funding_spreads(funding_history(funding))
    both = spreads.filter(pl.col("instruments") == 2)
    assert both["instrument"].to_list() == ["BTC-USD-PERP", "BTC-USDT-PERP"] * 8
    assert both["funding_time"].dt.hour().unique().sort().to_list() == list(range(1, 9))
    assert both["spread"].to_list() == [0.0] * 16
    assert set(spreads.filter(pl.col("venue") == "hyperliquid")["underlying"]) == {"BTC", "MOODENG"}
