"""The bundled real Binance USD-M recordings, named once for every test that replays them."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).with_name("data") / "binance_usdm"
CRYPTOFEED_WS = DATA / "ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt"
CRYPTOFEED_SNAPSHOTS = DATA / "rest_depth_snapshot.cryptofeed.BINANCE_FUTURES.http.0.0.txt"
CRYPTOFEED_EXCHANGE_INFO = DATA / "rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_EXCHANGE_INFO, CRYPTOFEED_WS, CRYPTOFEED_SNAPSHOTS]
"""One 30 s recorded session of 4 symbols: metadata, the WebSocket dump and its REST snapshots."""
CRYPTOFEED_SYMBOLS = ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
