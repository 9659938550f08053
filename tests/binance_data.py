"""The bundled real Binance USD-M recordings, named once for every test that replays them."""

from __future__ import annotations

import json

from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "binance_usdm"
CRYPTOFEED_WS = DATA / "ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt"
CRYPTOFEED_SNAPSHOTS = DATA / "rest_depth_snapshot.cryptofeed.BINANCE_FUTURES.http.0.0.txt"
CRYPTOFEED_EXCHANGE_INFO = DATA / "rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_EXCHANGE_INFO, CRYPTOFEED_WS, CRYPTOFEED_SNAPSHOTS]
"""One 30 s recorded session of 4 symbols: metadata, the WebSocket dump and its REST snapshots."""
CRYPTOFEED_SYMBOLS = ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
BTCUSDT_SESSION = DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"
"""BTCUSDT's last 6 minutes of 2024-08-08: depth@0ms, raw trades, bookTicker and its REST snapshot."""
MARKET_FIXTURES = [DATA / "markPriceUpdate.tardis-fixture.jsonl", DATA / "forceOrder.tardis-fixture.jsonl"]
"""tardis-node fixtures of the /market channels the session lacks (mark price, liquidations)."""


def funding_info_body(*entries: tuple[str, int]) -> bytes:
    """A /fapi/v1/fundingInfo body in the shape of Binance's documented example (the samples hold
    no recording of this endpoint), listing symbols of the recorded exchangeInfo."""
    return json.dumps([{"symbol": symbol, "adjustedFundingRateCap": "0.02500000",
                        "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": hours,
                        "disclaimer": False} for symbol, hours in entries]).encode()
