"""Binance spot endpoints and connection rules (the I/O side; parsing is in normalize).

Each rule below was checked against Binance's documentation on 2026-12-07 (docs/venues.md has the
table, with links):

* One base URL, not routed: `wss://stream.binance.com:9443` (or `:443`; the market-data-only host
  `wss://data-stream.binance.vision` serves the same streams), combined streams at
  `/stream?streams=a/b`. Spot was not split into routes as USD-M was in 2026.
  https://developers.binance.com/legacy-docs/binance-spot-api-docs/web-socket-streams
* At most 1,024 streams a connection and 5 incoming messages a second (pings, pongs and JSON
  requests count); the server pings every 20 s and drops a connection that has not answered within
  a minute (the websockets library answers); a connection lives 24 h. 300 connection attempts per
  5 minutes per IP. Same page, and
  https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/rate-limits
* Local book: buffer `@depth`, snapshot `GET /api/v3/depth`, drop diffs with u <= lastUpdateId,
  the first kept diff has U <= lastUpdateId + 1 <= u, then each U == previous u + 1 (spot depth
  has no `pu`). Same page ("How to manage a local order book correctly").
* REST weight: 6,000 a minute per IP. A depth snapshot at limit 1000 weighs 50 (5,000 levels weigh
  250, which a resync of many symbols cannot afford); aggTrades pages weigh a few. At
  SNAPSHOTS_PER_SECOND those take at most 3,000 a minute, half the budget.
  https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/rate-limits , weights as a
  third-party matrix lists them:
  https://cljdoc.org/d/io.github.ugurbay/binance-clj/1.0.2/doc/binance-spot-v1-endpoint-matrix
  AggTrades by `fromId` are public; raw trades by id (/api/v3/historicalTrades) are not used: a gap
  in the `trade` channel stays a journaled gap, as on USD-M.

The routing, chunking and channel names are Binance USD-M's connection (one class): this one
changes the base URLs, the single route, the REST paths and what is polled (nothing: spot has no
open interest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.binance_usdm.connection import BinanceUsdmConnection, family
from ingest.venues.interface import route_in
from normalize.trade_ids import Backfill
from normalize.venues.binance_spot.instruments import venue_symbol

VENUE = "binance-spot"
WS_BASE = "wss://stream.binance.com:9443"
REST_BASE = "https://api.binance.com"
CHANNELS: tuple[str, ...] = ("aggTrade", "depth@100ms", "bookTicker")
ROUTE_PATHS: dict[str, str] = {"stream": "/stream"}
ROUTES: dict[str, str] = {
    "depth": "stream", "bookTicker": "stream", "trade": "stream", "aggTrade": "stream", "kline": "stream",
    "ticker": "stream", "miniTicker": "stream", "avgPrice": "stream",
}
"""Stream family -> route: spot has one. Checked 2026-12-07; docs/venues.md holds the same table."""
RECONNECT_INTERVAL_S = 1.0
"""300 connection attempts per 5 minutes per IP."""
MAX_CONNECTION_AGE_S = 23.5 * 3600
"""Binance cuts a connection at 24 h."""
SNAPSHOTS_PER_SECOND = 1.0


@dataclass(frozen=True)
class BinanceSpotConnection(BinanceUsdmConnection):
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = SNAPSHOTS_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTCUSDT",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("aggTrade",), "book": ("depth@100ms",), "bbo": ("bookTicker",), "funding": (),
        "mark_index": (), "open_interest": (), "liquidations": ()}
    """Spot has no funding, mark or index price, open interest or liquidations."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    @staticmethod
    def route_of(channel: str) -> str:
        return route_in(VENUE, ROUTES, channel, family(channel), unknown="channel", known="known stream families")

    def stream_url(self, route: str, streams: Sequence[str]) -> str:
        return f"{self.ws_base}{self.route_paths[route]}?streams={'/'.join(streams)}"

    def snapshot_url(self, symbol: str) -> str:
        return f"{self.rest_base}/api/v3/depth?symbol={symbol}&limit=1000"

    def backfill_url(self, request: Backfill) -> str | None:
        if request.channel != "aggTrade":
            return None
        return f"{self.rest_base}/api/v3/aggTrades?symbol={request.symbol}&fromId={request.first_id}&limit=1000"

    def metadata_urls(self) -> list[str]:
        """The listed symbols only (the whole exchangeInfo is several MB)."""
        if not self.symbols:
            return [f"{self.rest_base}/api/v3/exchangeInfo"]
        listed = ",".join(f'"{symbol}"' for symbol in self.symbols)
        return [f"{self.rest_base}/api/v3/exchangeInfo?symbols=[{listed}]"]

    def poll_urls(self) -> list[str]:
        return []
