"""Binance USD-M futures endpoints and connection rules (the I/O side; parsing is in normalize).

Each rule below was checked against Binance's documentation on 2026-12-07 (docs/venues.md has
the table, with links):

* Routed WebSocket URLs. Since 2026-03-06 the market streams are served on two routes of
  `wss://fstream.binance.com`, and the unrouted root was retired on 2026-04-23: an unrouted
  connection is served as `/public`, so `/market` streams subscribed there never send a frame (no
  error, and a SUBSCRIBE is still acknowledged).
  https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice
  https://developers.binance.com/zh-CN/docs/products/caas/market-data-streams
  `/public`: depth (diff and partial), bookTicker, raw trade; `/market`: aggTrade, markPrice,
  forceOrder, klines, tickers. So a handler opens one connection per route it needs (per shard),
  each subscribed by URL (`/<route>/stream?streams=...`).
* At most 1,024 streams a connection and 10 incoming messages a second; Binance pings every
  3 minutes and drops a connection that has not answered in 10 (the websockets library answers);
  it cuts every connection at 24 h, so the handler reconnects on its own before that.
  https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
  We keep a connection to STREAMS_PER_CONNECTION streams so its URL stays short.
* REST weight: 2,400 a minute per IP. A depth snapshot at limit 1000 weighs 20 and a page of
  aggTrades 20: at SNAPSHOTS_PER_SECOND those take at most 1,200 a minute, half the budget, leaving
  the rest to exchangeInfo (1), fundingInfo and openInterest polls (1 each) and other processes.
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Order-Book
  https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Compressed-Aggregate-Trades-List
  (aggTrades by `fromId` reaches back up to a year; no 24 h limit is documented.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, check_route_paths, first_data_within, route_in
from normalize.trade_ids import Backfill
from normalize.venues.binance_usdm.instruments import venue_symbol

VENUE = "binance-usdm"
WS_BASE = "wss://fstream.binance.com"
REST_BASE = "https://fapi.binance.com"
CHANNELS: tuple[str, ...] = ("aggTrade", "depth@100ms", "bookTicker", "markPrice@1s", "forceOrder")
BOOK_FAMILY = "depth"
ROUTE_PATHS: dict[str, str] = {"public": "/public", "market": "/market"}
ROUTES: dict[str, str] = {
    "depth": "public", "bookTicker": "public", "trade": "public",
    "aggTrade": "market", "markPrice": "market", "forceOrder": "market", "kline": "market",
    "continuousKline": "market", "ticker": "market", "miniTicker": "market",
}
"""Stream family (a channel name without its levels, interval or speed) -> route. Checked 2026-12-07;
docs/venues.md holds the same table, and a test compares the two."""
EVENT_DRIVEN = frozenset({"forceOrder"})
"""Families that send only when something happens (at most one liquidation a second per symbol)."""
FIRST_DATA_WITHIN_S = 10.0
"""Depth, bookTicker and markPrice@1s push within a second of subscribing on any listed symbol;
ten seconds without a frame means the route serves none of them."""
STREAMS_PER_CONNECTION = 200
"""Binance allows 1,024; 200 keeps a subscribing URL under about 6 KB."""
RECONNECT_INTERVAL_S = 1.0
"""300 connection attempts per 5 minutes per IP."""
MAX_CONNECTION_AGE_S = 23.5 * 3600
SNAPSHOTS_PER_SECOND = 1.0
_FAMILY = re.compile(r"[A-Za-z]+")
_STREAM = re.compile(rb'^\{"stream":"[^"@]*@([^"]+)"')


def family(channel: str) -> str:
    """`depth20@100ms` -> `depth`, `kline_1m` -> `kline`, `markPrice@1s` -> `markPrice`."""
    match = _FAMILY.match(channel)
    return match.group(0) if match else channel


def route_of(channel: str) -> str:
    return route_in(VENUE, ROUTES, channel, family(channel), known="known stream families")


@dataclass(frozen=True)
class BinanceUsdmConnection:
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
        "trades": ("aggTrade",), "book": ("depth@100ms",), "bbo": ("bookTicker",),
        "funding": ("markPrice@1s",), "mark_index": ("markPrice@1s",), "open_interest": (),
        "liquidations": ("forceOrder",)}
    """Open interest is polled over REST whatever the channels."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(self.venue, self.route_paths, self.route_of(channel))

    @staticmethod
    def route_of(channel: str) -> str:
        """The route a channel's streams are served on (UnknownChannel for one the venue has not)."""
        return route_of(channel)

    def stream_url(self, route: str, streams: Sequence[str]) -> str:
        """A combined-stream URL subscribing `streams` on a route."""
        return f"{self.ws_base}{self.route_paths[route]}/stream?streams={'/'.join(streams)}"

    def routes(self) -> list[Route]:
        """One connection per route the channels need, split into parts of at most
        STREAMS_PER_CONNECTION streams (named `public`, `public-2`, ...)."""
        by_route: dict[str, list[str]] = {}
        for channel in self.channels:
            by_route.setdefault(self.route_of(channel), []).append(channel)
        out = []
        for route, channels in by_route.items():
            streams = [(symbol, f"{symbol.lower()}@{channel}") for symbol in self.symbols for channel in channels]
            quiet = tuple(channel for channel in channels if family(channel) in EVENT_DRIVEN)
            book = next((channel for channel in channels if family(channel) == BOOK_FAMILY), "")
            for part, start in enumerate(range(0, len(streams), STREAMS_PER_CONNECTION), start=1):
                chunk = streams[start:start + STREAMS_PER_CONNECTION]
                out.append(Route(
                    name=route if part == 1 else f"{route}-{part}",
                    url=self.stream_url(route, [s for _, s in chunk]),
                    channels=tuple(dict.fromkeys(stream.partition("@")[2] for _, stream in chunk)),
                    symbols=tuple(dict.fromkeys(symbol for symbol, _ in chunk)),
                    book_channel=book, quiet_channels=quiet,
                    first_data_within_s=first_data_within(channels, quiet, FIRST_DATA_WITHIN_S)))
        return out

    def channel_of(self, payload: bytes) -> str | None:
        """Combined-stream frames name their stream first: `{"stream":"btcusdt@depth@100ms",...`."""
        match = _STREAM.match(payload)
        return match.group(1).decode() if match else None

    def heartbeat(self) -> tuple[float, str] | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return []

    def snapshot_url(self, symbol: str) -> str:
        return f"{self.rest_base}/fapi/v1/depth?symbol={symbol}&limit=1000"

    def backfill_url(self, request: Backfill) -> str | None:
        """Aggregate trades by id (public, weight 20 a page of 1,000); raw trades by id need an API
        key (historicalTrades), so a gap in the `trade` channel stays a journaled gap."""
        if request.channel != "aggTrade":
            return None
        return f"{self.rest_base}/fapi/v1/aggTrades?symbol={request.symbol}&fromId={request.first_id}&limit=1000"

    def metadata_urls(self) -> list[str]:
        """Funding intervals first, so the instrument records of exchangeInfo carry them."""
        return [f"{self.rest_base}/fapi/v1/fundingInfo", f"{self.rest_base}/fapi/v1/exchangeInfo"]

    def poll_urls(self) -> list[str]:
        """REST endpoints polled periodically (open interest has no stream)."""
        return [f"{self.rest_base}/fapi/v1/openInterest?symbol={symbol}" for symbol in self.symbols]
