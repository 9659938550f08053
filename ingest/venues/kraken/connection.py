"""Kraken spot public endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against Kraken's documentation on 2026-12-07 (docs/venues.md has the table):

* WebSocket v2, `wss://ws.kraken.com/v2`: the recommended API; v1 (`wss://ws.kraken.com`) is
  maintained but frozen. The handler speaks v2; the normalizer also reads v1 captures.
  https://docs.kraken.com/exchange/api-reference/spot-websocket
* Subscriptions by message, one per channel:
  `{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":1000},"req_id":1}`;
  book depths 10, 25, 100, 500, 1000; a book subscription answers with a snapshot, then updates,
  each with a CRC32 of the top 10 levels. Subscribing the book again is how a checksum failure
  resyncs one pair (there is no REST snapshot of the same book).
  https://docs.kraken.com/exchange/guides/websockets/book-checksum-v2.md
* Keep-alive: Kraken sends `{"channel":"heartbeat"}` about once a second while subscribed; an
  application ping is `{"method":"ping"}` (answered `{"method":"pong",...}`): one goes out every
  30 s. https://docs.kraken.com/api/docs/websocket-v2/ping,
  https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/heartbeat
* Connection attempts: "approximately 150 attempts per rolling 10 minutes" per IP (Cloudflare's
  limit, in the v1 documentation's general considerations): one every 4 s.
  https://docs.kraken.com/websockets-beta (general considerations)
* Subscribe/unsubscribe requests are token-bucket limited per connection (`EAPI:Rate limit
  exceeded`, no number published): resyncs are spaced 2 s apart. No connection age limit is
  documented.
* Instruments: REST `GET /0/public/AssetPairs` at start and hourly (the v2 `instrument` channel
  is read too where a capture holds it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, check_route_paths, route_in
from normalize.trade_ids import Backfill
from normalize.venues.kraken.instruments import v2_symbol, venue_symbol

VENUE = "kraken"
WS_BASE = "wss://ws.kraken.com"
REST_BASE = "https://api.kraken.com"
ROUTE_PATHS = {"v2": "/v2"}
ROUTES: dict[str, str] = {"book": "v2", "trade": "v2", "ticker": "v2", "instrument": "v2", "ohlc": "v2"}
"""Channel -> route. Checked 2026-12-07; docs/venues.md holds the same table."""
CHANNELS: tuple[str, ...] = ("book", "trade", "ticker")
BOOK_DEPTH = 1000
HEARTBEAT_S = 30.0
FIRST_DATA_WITHIN_S = 10.0
"""A book subscription is answered with its snapshot at once."""
RECONNECT_INTERVAL_S = 4.0
MAX_CONNECTION_AGE_S = float("inf")
RESUBSCRIBES_PER_SECOND = 0.5
_DATA = re.compile(rb'^\{"channel":"([a-z_]+)"')
_NOT_DATA = frozenset(("heartbeat", "status"))


def route_of(channel: str) -> str:
    return route_in(VENUE, ROUTES, channel, unknown="channel")


@dataclass(frozen=True)
class KrakenConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    book_depth: int = BOOK_DEPTH
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTC/USD",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trade",), "book": ("book",), "bbo": ("ticker",), "funding": (), "mark_index": (),
        "open_interest": (), "liquidations": ()}
    """Spot: no funding, mark price, open interest or liquidations."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(VENUE, self.route_paths, route_of(channel))

    def _symbols(self) -> list[str]:
        """v2 names: a v1 name given (XBT/USD) is written as v2 writes it (BTC/USD)."""
        return [v2_symbol(s) for s in self.symbols]

    def subscription(self, channel: str, symbols: list[str], method: str = "subscribe", req_id: int = 0) -> str:
        params: dict[str, object] = {"channel": channel, "symbol": symbols}
        if channel == "book":
            params["depth"] = self.book_depth
        return json.dumps({"method": method, "params": params, "req_id": req_id})

    def routes(self) -> list[Route]:
        symbols = self._symbols()
        subscribe = tuple(self.subscription(channel, symbols, req_id=i)
                          for i, channel in enumerate(self.channels, start=1))
        return [Route("v2", f"{self.ws_base}{self.route_paths['v2']}", tuple(self.channels), tuple(symbols),
                      subscribe, book_channel="book" if "book" in self.channels else "",
                      first_data_within_s=FIRST_DATA_WITHIN_S)]

    def channel_of(self, payload: bytes) -> str | None:
        """v2 data frames start with their channel; heartbeats, status and answers are no data."""
        match = _DATA.match(payload)
        if match is None or match.group(1).decode() in _NOT_DATA:
            return None
        return match.group(1).decode()

    def heartbeat(self) -> tuple[float, str] | None:
        return self.heartbeat_s, json.dumps({"method": "ping"})

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return [self.subscription("book", [symbol], method) for method in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """Kraken serves its trade history by time, not by id."""
        return None

    def metadata_urls(self) -> list[str]:
        return [f"{self.rest_base}/0/public/AssetPairs"]

    def poll_urls(self) -> list[str]:
        return []
