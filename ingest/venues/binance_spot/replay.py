"""Binance spot as the replay server speaks it: Binance USD-M's protocol (combined-stream URLs,
SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, `/depth` answered with the book at the playback position,
`/aggTrades?fromId=` with the aggregate trades played so far, other REST paths with recorded
bodies) without routes: one URL serves every stream, as the venue does.
REST: `/api/v3/depth` (no E/T in the body, as spot's has none), `/api/v3/aggTrades`,
`/api/v3/exchangeInfo` (recorded)."""

from __future__ import annotations

from ingest.venues.binance_usdm.replay import BinanceUsdmReplay

ROUTE = "stream"
VENUE_ROUTES = {ROUTE: ("depth", "bookTicker", "trade", "aggTrade", "kline", "ticker", "miniTicker", "avgPrice")}
"""The venue's one route and the stream families it serves (kept apart from the handler's table;
the tests compare both with docs/venues.md)."""


class BinanceSpotReplay(BinanceUsdmReplay):
    DEPTH_PATH = "/api/v3/depth"
    AGG_TRADES_PATH = "/api/v3/aggTrades"

    def route_of(self, path: str) -> str:
        return ROUTE

    def serves(self, route: str, stream: str) -> bool:
        return True
