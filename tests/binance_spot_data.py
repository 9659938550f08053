"""The bundled real Binance spot recordings, named once for every test that replays them, and an
exchangeInfo body in Binance's documented shape (the samples hold no recording of that endpoint)."""

from __future__ import annotations

import json

from ingest.frames import Frame
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "binance_spot"
CRYPTOFEED_WS = DATA / "ws_depth100ms+bookTicker+aggTrade+kline.cryptofeed.BINANCE.ws.1.0.txt"
CRYPTOFEED_SNAPSHOTS = DATA / "rest_depth_snapshot.cryptofeed.BINANCE.http.0.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_WS, CRYPTOFEED_SNAPSHOTS]
"""30 s of 4 spot pairs on 2021-10-12: depth@100ms, bookTicker, aggTrade and klines, and the REST
snapshots fetched during the run."""
CRYPTOFEED_SYMBOLS = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
BTCUSDT_SESSION = DATA / "ws_depth100ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"
"""BTCUSDT's last 6 minutes of 2024-08-08: depth@100ms, raw trades, bookTicker and its REST snapshot."""

FILTERS = {"BTCUSDT": ("0.01000000", "0.00001000"), "NKNUSDT": ("0.00010000", "1.00000000"),
           "BLZETH": ("0.00000001", "1.00000000"), "LRCBTC": ("0.00000001", "1.00000000"),
           "RUNEEUR": ("0.00100000", "0.10000000")}
"""Tick and step size per symbol for the documented-shape body."""


def exchange_info_body(symbols: dict[str, tuple[str, str]] = FILTERS) -> bytes:
    """A /api/v3/exchangeInfo body in the shape of Binance's documented example (symbol entries with
    PRICE_FILTER and LOT_SIZE filters as the Filters page gives them), for the captured pairs."""
    quotes = ("USDT", "ETH", "BTC", "EUR")
    entries = []
    for symbol, (tick, step) in symbols.items():
        quote = next(q for q in quotes if symbol.endswith(q))
        entries.append({
            "symbol": symbol, "status": "TRADING", "baseAsset": symbol[: -len(quote)], "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [{"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000",
                         "tickSize": tick},
                        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step}],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE"})
    return json.dumps({"timezone": "UTC", "serverTime": 1633998510000, "rateLimits": [], "exchangeFilters": [],
                       "symbols": entries}).encode()


def exchange_info_frame(ts_recv: int = 0) -> Frame:
    return Frame(ts_recv, "rest", exchange_info_body(), url="https://api.binance.com/api/v3/exchangeInfo")
