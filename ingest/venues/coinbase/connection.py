"""Coinbase endpoints and connection rules (the I/O side; parsing is in normalize).

Two public WebSocket protocols exist; the live connection speaks Advanced Trade by default (the
current API, the one Coinbase develops), the Exchange feed with `protocol="exchange"`. The
normalizer reads both. Checked against Coinbase's documentation on 2026-12-07 (docs/venues.md has
the table, with links):

* Advanced Trade: `wss://advanced-trade-ws.coinbase.com`; market data channels need no JWT ("most
  channels are now available without authentication"); a subscribe must come within 5 s of
  connecting, and names ONE channel (with any number of product ids); `level2` messages arrive as
  `l2_data`; every message carries `sequence_num`, counting up by one per connection.
  https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-overview
* Channels with no update close after 60-90 s unless `heartbeats` is subscribed: it always is.
  https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
* 8 connections a second and 8 unauthenticated messages a second per IP (older copies said 750
  connections a second; the newest is used).
  https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-rate-limits
  A connection sends 4 subscribe messages at start; a book resync sends 2 (unsubscribe, subscribe
  level2 for one product): RESUBSCRIBES_PER_SECOND = 2 keeps a feed at half the allowance.
* Exchange feed: `wss://ws-feed.exchange.coinbase.com` (formerly ws-feed.pro.coinbase.com), still
  documented, no deprecation found; `level2` needs authentication, `level2_batch` (the same
  messages, batched every 50 ms) does not; subscribe within 5 s; 8 requests a second per IP (burst
  20), 100 messages a second per connection.
  https://docs.cdp.coinbase.com/exchange/websocket-feed ,
  https://docs.cdp.coinbase.com/exchange/websocket-feed/authentication ,
  https://docs.cdp.coinbase.com/exchange/websocket-feed/rate-limits
* No connection age limit is documented for either.
* REST: instruments from Advanced Trade's public products list
  (`GET https://api.coinbase.com/api/v3/brokerage/market/products`, no key; spot and futures with
  contract sizes) or the Exchange's `GET /products` (spot); missing trades from the Exchange's
  public `GET /products/<id>/trades?after=<id>` (cursor pagination by trade id, newest first, 1,000
  a page), which Advanced Trade lacks (its public trades read by time only).
  https://docs.cdp.coinbase.com/exchange/rest-api/pagination ; the products list's page as mirrored in
  https://github.com/j-ble/TradingBot/blob/main/context/CoinbaseAPI/AdvancedTrade/Public/ListPublicProducts.md
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ingest.venues.interface import Route, UnknownChannel, check_route_paths
from normalize.trade_ids import Backfill
from normalize.venues.coinbase.instruments import is_contract, venue_symbol

VENUE = "coinbase"
WS_BASE = "wss://advanced-trade-ws.coinbase.com"
REST_BASE = "https://api.coinbase.com"
EXCHANGE_WS_BASE = "wss://ws-feed.exchange.coinbase.com"
EXCHANGE_REST_BASE = "https://api.exchange.coinbase.com"
CHANNELS: tuple[str, ...] = ("level2", "market_trades", "ticker")
HEARTBEAT_CHANNEL = "heartbeats"
"""Subscribed on every connection: without it, quiet channels are closed after 60-90 s."""
ROUTE_PATHS: dict[str, str] = {"ws": "/"}
ROUTES: dict[str, str] = {channel: "ws" for channel in (
    "level2", "market_trades", "ticker", "ticker_batch", "heartbeats", "candles", "status")}
"""Advanced Trade channel -> route (Coinbase has one URL per protocol). Checked 2026-12-07;
docs/venues.md holds the same table, and a test compares the two."""
EXCHANGE_CHANNELS = {"level2": "level2_batch", "market_trades": "matches", "ticker": "ticker",
                     "ticker_batch": "ticker_batch", "heartbeats": "heartbeat", "status": "status"}
"""The Exchange feed's name for each channel (level2 there needs authentication: level2_batch
carries the same messages publicly)."""
FIRST_DATA_WITHIN_S = 10.0
"""level2, market_trades and ticker answer a subscription at once (snapshot, last trades, ticker)."""
RECONNECT_INTERVAL_S = 0.25
"""8 connections a second per IP, shared by every feed of the host: a quarter second apart each."""
RESUBSCRIBES_PER_SECOND = 2.0
_AT_DATA = {"l2_data": "level2", "market_trades": "market_trades", "ticker": "ticker", "ticker_batch": "ticker_batch"}
_EXCHANGE_DATA = {"snapshot": "level2", "l2update": "level2", "match": "market_trades", "last_match": "market_trades",
                  "ticker": "ticker"}
_CHANNEL = re.compile(rb'^\{"channel":"([a-z_0-9]+)"')
_TYPE = re.compile(rb'^\{"type":"([a-z_0-9]+)"')


@dataclass(frozen=True)
class CoinbaseConnection:
    symbols: Sequence[str]
    ws_base: str = ""
    """Default: the protocol's URL."""
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    protocol: Literal["advanced-trade", "exchange"] = "advanced-trade"
    venue: str = VENUE
    max_connection_age_s: float = float("inf")
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTC-USD",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("market_trades",), "book": ("level2",), "bbo": ("ticker",), "funding": (), "mark_index": (),
        "open_interest": (), "liquidations": ()}
    """Coinbase publishes no funding, mark or index price, open interest or liquidation stream."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            route = ROUTES.get(channel)
            if route is None or (self.protocol == "exchange" and channel not in EXCHANGE_CHANNELS):
                raise UnknownChannel(f"coinbase has no channel '{channel}' (known: {', '.join(ROUTES)})")
            check_route_paths(VENUE, self.route_paths, route)

    @property
    def exchange(self) -> bool:
        return self.protocol == "exchange"

    @property
    def exchange_rest_base(self) -> str:
        """Where the Exchange's REST is: its own host, or the one the handler was pointed at."""
        return EXCHANGE_REST_BASE if self.rest_base == REST_BASE else self.rest_base

    def routes(self) -> list[Route]:
        """One connection; heartbeats are subscribed with the channels (they carry no market data, so
        they are not among the route's channels)."""
        base = self.ws_base or (EXCHANGE_WS_BASE if self.exchange else WS_BASE)
        channels = tuple(self.channels)
        subscribed = tuple(dict.fromkeys((*channels, HEARTBEAT_CHANNEL)))
        return [Route("ws", f"{base}{self.route_paths['ws']}", channels, tuple(self.symbols),
                      tuple(self._message("subscribe", channel, list(self.symbols)) for channel in subscribed),
                      book_channel="level2" if "level2" in channels else "",
                      first_data_within_s=FIRST_DATA_WITHIN_S)]

    def _message(self, kind: str, channel: str, products: list[str]) -> str:
        """One subscribe or unsubscribe message: Advanced Trade takes one channel a message, the
        Exchange a list (one is sent all the same, so both behave alike)."""
        if self.exchange:
            return json.dumps({"type": kind, "product_ids": products, "channels": [EXCHANGE_CHANNELS[channel]]})
        return json.dumps({"type": kind, "product_ids": products, "channel": channel})

    def channel_of(self, payload: bytes) -> str | None:
        """Advanced Trade messages name their channel first, Exchange messages their type."""
        match = _CHANNEL.match(payload)
        if match:
            return _AT_DATA.get(match.group(1).decode())
        match = _TYPE.match(payload)
        return _EXCHANGE_DATA.get(match.group(1).decode()) if match else None

    def heartbeat(self) -> tuple[float, str] | None:
        """No ping of our own: the heartbeats channel keeps the subscriptions open."""
        return None

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Coinbase sends a fresh level2 snapshot when the product's level2 is subscribed again."""
        return [self._message(kind, "level2", [symbol]) for kind in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """The Exchange's trades before id last + 1, newest first (spot products; futures are not
        on the Exchange)."""
        if request.channel != "matches" or is_contract(request.symbol):
            return None
        return f"{self.exchange_rest_base}/products/{request.symbol}/trades?after={request.last_id + 1}&limit=1000"

    def metadata_urls(self) -> list[str]:
        if self.exchange:
            return [f"{self.exchange_rest_base}/products"]
        products = "".join(f"&product_ids={symbol}" for symbol in self.symbols)
        return [f"{self.rest_base}/api/v3/brokerage/market/products?get_all_products=true{products}"]

    def poll_urls(self) -> list[str]:
        return []
