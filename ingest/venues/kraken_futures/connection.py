"""Kraken Futures public endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against Kraken's documentation on 2026-12-07 (docs/venues.md has the table):

* `wss://futures.kraken.com/ws/v1`, one route, feeds subscribed by message
  (`{"event":"subscribe","feed":"book","product_ids":["PF_XBTUSD",...]}`), one message per feed.
  https://docs.kraken.com/exchange/api-reference/futures-websocket
* DEPRECATED: "The Derivatives WebSocket is also deprecated and will be decommissioned on
  1 March 2027" (so is the Derivatives REST API). Its successor is the Unified WebSocket,
  `wss://uws.kraken.com/v2/public` (derivatives now, `asset_class: derivatives`; spot planned
  for Q1 2027). https://docs.kraken.com/exchange/api-reference/futures-rest,
  https://docs.kraken.com/exchange/api-reference/unified-websocket
  Migrating takes: a route `/v2/public` on `uws.kraken.com`; subscriptions in the v2 form
  (`{"method":"subscribe","params":{"channel":"book","symbol":["PF_XBTUSD"],"asset_class":
  "derivatives"}}`, acks `{"method":"subscribe","success":true,...}`); `{"method":"ping"}` as the
  heartbeat; and a normalizer for the v2 message format ("the same v2 message format as the Spot
  WebSocket v2": `{"channel":"book","type":"snapshot"|"update","data":[...]}`, RFC 3339 times,
  sequential trade ids, a CRC32 book checksum): the v2 parsing and checksum of
  normalize/venues/kraken/ apply, with this package's contract units and ids. Nothing of it can
  be tested offline yet: no v2 derivatives frame has been recorded.
* Keep-alive: "Send a ping at least every 60 seconds" (a WebSocket control ping: no JSON ping is
  documented for this API). The websockets client pings every 20 s, so `heartbeat()` is None.
  https://docs.kraken.com/exchange/api-reference/futures-websocket
* `ticker` deltas are throttled to one a second per product.
  https://docs.kraken.com/exchange/api-reference/futures-websocket/ticker.md
* Limits: 100 connections per IP, 100 requests a second (a repository's copy of Kraken's
  "Rate Limits" page; not in the stored official pages). No connection age limit is documented.

A book has no REST snapshot: unsubscribing and subscribing its product's `book` feed makes Kraken
send a fresh `book_snapshot`, which is how a seq break resyncs one product. Instruments are
fetched at start and hourly; nothing is polled (funding, mark price and open interest come with
`ticker`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, check_route_paths, route_in
from normalize.trade_ids import Backfill
from normalize.venues.kraken_futures.instruments import venue_symbol

VENUE = "kraken-futures"
WS_BASE = "wss://futures.kraken.com"
REST_BASE = "https://futures.kraken.com"
DECOMMISSIONED = "2027-03-01"
"""The day Kraken switches the v1 Derivatives WebSocket off (checked 2026-12-07)."""
SUCCESSOR = "wss://uws.kraken.com/v2/public"
ROUTE_PATHS = {"v1": "/ws/v1"}
ROUTES: dict[str, str] = {"book": "v1", "trade": "v1", "ticker": "v1", "ticker_lite": "v1", "heartbeat": "v1"}
"""Feed -> route (one). Checked 2026-12-07; docs/venues.md holds the same table."""
CHANNELS: tuple[str, ...] = ("book", "trade", "ticker")
FIRST_DATA_WITHIN_S = 10.0
"""A book subscription is answered with its snapshot at once, and tickers come every second."""
RECONNECT_INTERVAL_S = 1.0
"""No connection rate is documented; 100 connections per IP is the only bound found."""
MAX_CONNECTION_AGE_S = float("inf")
"""Kraken documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 1.0
"""Two requests a resync, far under 100 a second."""
_DATA = re.compile(rb'^\{"feed":"([a-z_]+)"')
_FEED_CHANNELS = {"book_snapshot": "book", "trade_snapshot": "trade"}


def route_of(channel: str) -> str:
    return route_in(VENUE, ROUTES, channel, unknown="feed")


@dataclass(frozen=True)
class KrakenFuturesConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("PF_XBTUSD",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trade",), "book": ("book",), "bbo": ("ticker",), "funding": ("ticker",),
        "mark_index": ("ticker",), "open_interest": ("ticker",), "liquidations": ("trade",)}
    """Kraken Futures has no liquidation feed: liquidation fills come in `trade` (type liquidation),
    kept as trades marked trade_type liquidation."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(VENUE, self.route_paths, route_of(channel))

    def routes(self) -> list[Route]:
        feeds = tuple(self.channels)
        symbols = [s.upper() for s in self.symbols]
        subscribe = tuple(json.dumps({"event": "subscribe", "feed": feed, "product_ids": symbols})
                          for feed in feeds if feed != "heartbeat") + (
            (json.dumps({"event": "subscribe", "feed": "heartbeat"}),) if "heartbeat" in feeds else ())
        return [Route("v1", f"{self.ws_base}{self.route_paths['v1']}", feeds, tuple(symbols), subscribe,
                      book_channel="book" if "book" in feeds else "", first_data_within_s=FIRST_DATA_WITHIN_S)]

    def channel_of(self, payload: bytes) -> str | None:
        """Data frames start with their feed (`{"feed":"book",...`); control frames with an event, and
        heartbeats carry no market data."""
        match = _DATA.match(payload)
        if match is None:
            return None
        feed = match.group(1).decode()
        return None if feed == "heartbeat" else _FEED_CHANNELS.get(feed, feed)

    def heartbeat(self) -> tuple[float, str] | None:
        """None: the client's WebSocket control pings (every 20 s) are the ping Kraken asks for."""
        return None

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return [json.dumps({"event": event, "feed": "book", "product_ids": [symbol]})
                for event in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """Kraken Futures serves no trade history by id."""
        return None

    def metadata_urls(self) -> list[str]:
        return [f"{self.rest_base}/derivatives/api/v3/instruments"]

    def poll_urls(self) -> list[str]:
        return []
