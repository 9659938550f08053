"""The bundled Bybit v5 frames in ticklake/recordings/bybit, named once for every test that replays them:
the ob500 file is a real Bybit order-book history capture, the others tardis-node test fixtures
and one Bybit docs example."""

from __future__ import annotations

import json

from ingest.frames import Frame
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "bybit"
OB500 = DATA / "orderbook.500.XRPUSDT_2024-12-01.jsonl"
"""REAL: Bybit's own orderbook history for XRPUSDT (linear), 1 snapshot + 49 deltas, no receive times."""
TRADES = DATA / "publicTrade.tardis-fixture.jsonl"
TICKERS = DATA / "tickers.tardis-fixture.jsonl"
TICKERS_DOC = DATA / "tickers.doc-example.jsonl"
ALL_LIQUIDATION = DATA / "allLiquidation.tardis-fixture.jsonl"
LIQUIDATION = DATA / "liquidation.tardis-fixture.jsonl"
ORDERBOOK = DATA / "orderbook.tardis-fixture.jsonl"
LINEAR_FIXTURES = [TRADES, TICKERS, ALL_LIQUIDATION]
"""Fixture frames replayed after the ob500 capture in the live tests (linear symbols subscribed)."""


DOC_INSTRUMENTS_BTCUSDT = b"""{
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "linear", "list": [{
        "symbol": "BTCUSDT", "symbolId": 5, "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": "BTC", "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0",
        "deliveryFeeRate": "", "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                          "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
        "unifiedMarginTrade": true, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
        "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": false,
        "preListingInfo": null, "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": ""}], "nextPageCursor": ""},
    "retExtInfo": {}, "time": 1735809771618
}"""
"""Bybit v5 docs, Get Instruments Info, linear response example (official USDT perpetual)."""

DOC_INSTRUMENTS_BIOUSDT = b"""{
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "linear", "list": [{
        "symbol": "BIOUSDT", "contractType": "LinearPerpetual", "status": "PreLaunch", "baseCoin": "BIO",
        "quoteCoin": "USDT", "launchTime": "1735032510000", "deliveryTime": "0", "deliveryFeeRate": "",
        "priceScale": "4", "leverageFilter": {"minLeverage": "1", "maxLeverage": "5.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.0001", "maxPrice": "1999.9998", "tickSize": "0.0001"},
        "lotSizeFilter": {"maxOrderQty": "70000", "minOrderQty": "1", "qtyStep": "1", "postOnlyMaxOrderQty": "70000",
                          "maxMktOrderQty": "14000", "minNotionalValue": "5"},
        "unifiedMarginTrade": true, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "none",
        "upperFundingRate": "0.05", "lowerFundingRate": "-0.05", "isPreListing": true,
        "preListingInfo": {"curAuctionPhase": "ContinuousTrading", "phases": [
            {"phase": "CallAuction", "startTime": "1735113600000", "endTime": "1735116600000"},
            {"phase": "ContinuousTrading", "startTime": "1735117200000", "endTime": ""}],
            "auctionFeeInfo": {"auctionFeeRate": "0", "takerFeeRate": "0.001", "makerFeeRate": "0.0004"}},
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"}, "symbolType": ""}],
        "nextPageCursor": "first%3DBIOUSDT%26last%3DBIOUSDT"},
    "retExtInfo": {}, "time": 1735810114435
}"""
"""Bybit v5 docs, Get Instruments Info, linear response example (pre-market perpetual; two of
its four auction phases kept)."""


def instruments_frame(count: int) -> Frame:
    """A recorded-looking instruments-info answer listing `count` linear perpetuals in the docs'
    shape (copies of the BTCUSDT example renamed S0USDT, S1USDT, ...): no recorded body exists."""
    body = json.loads(DOC_INSTRUMENTS_BTCUSDT)
    model = body["result"]["list"][0]
    body["result"]["list"] = [model | {"symbol": f"S{i}USDT", "baseCoin": f"S{i}"} for i in range(count)]
    return Frame(0, "rest", json.dumps(body).encode(), "https://api.bybit.com/v5/market/instruments-info?category=linear")
