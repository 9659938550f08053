"""Hyperliquid endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against Hyperliquid's documentation on 2026-12-07 (docs/venues.md has the table):

* One route, `wss://api.hyperliquid.xyz/ws`, subscribed by messages, one per (channel, coin):
  `{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}`.
  https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions
* Limits per IP: 1,000 subscriptions (four channels a coin: 250 coins) and 2,000 messages sent a
  minute; connections: the stored documentation says 100, SDKs updated in 2026 say 10 and 30 new
  ones a minute, so ticklake budgets for 10 and spaces a route's connection attempts 2 s apart.
  https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits
  A feed that would pass 1,000 subscriptions is refused at start.
* The venue closes a connection that sent nothing for 60 s, so the handler sends the app-level
  `{"method":"ping"}` every 50 s (answered by `{"channel":"pong"}`). No connection age limit is
  documented, so none is applied.
  https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/timeouts-and-heartbeats
* REST weight: 1,200 a minute per IP; `l2Book` weighs 2, `meta` and `fundingHistory` 20.

REST is `POST /info` with a JSON body, written as the URL fragment (see interface.py): `meta`
once at start, and each symbol's `fundingHistory` over the last few hours in the first poll of
every hour (settlements happen on the hour; the normalizer drops the ones it already emitted).
Every `l2Book` message is a full snapshot, so a book is resynced by subscribing its channel
again (unsubscribe first: the venue refuses a subscription it already has).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, VenueLimitExceeded, route_in
from normalize.trade_ids import Backfill
from normalize.venues.hyperliquid import is_perp
from normalize.venues.hyperliquid.instruments import venue_symbol

VENUE = "hyperliquid"
WS_BASE = "wss://api.hyperliquid.xyz"
REST_BASE = "https://api.hyperliquid.xyz"
CHANNELS: tuple[str, ...] = ("l2Book", "trades", "bbo", "activeAssetCtx")
ROUTE = "ws"
ROUTE_PATHS: dict[str, str] = {ROUTE: "/ws"}
ROUTES: dict[str, str] = {channel: ROUTE for channel in (*CHANNELS, "candle", "allMids", "activeSpotAssetCtx")}
"""Subscription type -> route. Checked 2026-12-07; docs/venues.md holds the same table."""
SUBSCRIPTIONS_PER_IP = 1000
RECONNECT_INTERVAL_S = 2.0
FIRST_DATA_WITHIN_S = 10.0
"""l2Book and bbo send the current state as soon as they are subscribed."""
_CHANNEL = re.compile(rb'^\{"channel":"([A-Za-z]+)"')
_CONTROL = frozenset({"subscriptionResponse", "pong", "error"})
PING_INTERVAL_S = 50.0
FUNDING_LOOKBACK_H = 3
"""Hours of funding history each hourly poll asks for: a settlement missed by one poll (fetched
before it was published, or lost to an error) comes with the next."""
HOUR_MS = 3_600_000


def _message(method: str, channel: str, coin: str) -> str:
    return json.dumps({"method": method, "subscription": {"type": channel, "coin": coin}}, separators=(",", ":"))


@dataclass
class HyperliquidConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    venue: str = VENUE
    max_connection_age_s: float = math.inf
    snapshots_per_second: float = 5.0
    """Resubscriptions per second (each is two messages of the 2,000 a minute allowed)."""
    ping_interval_s: float = PING_INTERVAL_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    funding_polled_hour: int | None = field(default=None, init=False)
    """The hour (ms // HOUR_MS) whose funding history was last asked for."""

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTC",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trades",), "book": ("l2Book",), "bbo": ("bbo",), "funding": ("activeAssetCtx",),
        "mark_index": ("activeAssetCtx",), "open_interest": ("activeAssetCtx",),
        "liquidations": ()}
    """Hyperliquid publishes no liquidation stream."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            route_in(VENUE, ROUTES, channel)
        if len(self.symbols) * len(self.channels) > SUBSCRIPTIONS_PER_IP:
            raise VenueLimitExceeded(
                f"hyperliquid allows {SUBSCRIPTIONS_PER_IP} subscriptions per IP: {len(self.symbols)} coins x "
                f"{len(self.channels)} channels is more; split the coins across hosts")

    def routes(self) -> list[Route]:
        return [Route(ROUTE, f"{self.ws_base}{self.route_paths[ROUTE]}", tuple(self.channels), tuple(self.symbols),
                      tuple(_message("subscribe", channel, coin) for coin in self.symbols for channel in self.channels),
                      book_channel="l2Book" if "l2Book" in self.channels else "",
                      first_data_within_s=FIRST_DATA_WITHIN_S)]

    def channel_of(self, payload: bytes) -> str | None:
        """Frames start with their channel; subscription acks, pongs and errors carry no data."""
        match = _CHANNEL.match(payload)
        if match is None:
            return None
        channel = match.group(1).decode()
        return None if channel in _CONTROL else channel

    def heartbeat(self) -> tuple[float, str] | None:
        return self.ping_interval_s, '{"method":"ping"}'

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return [_message("unsubscribe", "l2Book", symbol), _message("subscribe", "l2Book", symbol)]

    def backfill_url(self, request: Backfill) -> str | None:
        """Hyperliquid's trade ids are not sequential: its normalizer finds no missing trades to fetch."""
        return None

    def metadata_urls(self) -> list[str]:
        return [f'{self.rest_base}/info#{{"type":"meta"}}']

    def poll_urls(self) -> list[str]:
        """Funding history, in the first poll of each hour only (the venue weighs the request at 20
        of its 1,200 a minute, so asking every poll for many coins would be refused)."""
        hour = int(time.time() * 1000) // HOUR_MS
        if hour == self.funding_polled_hour:
            return []
        self.funding_polled_hour = hour
        start = (hour - FUNDING_LOOKBACK_H) * HOUR_MS
        return [f"{self.rest_base}/info#" + json.dumps({"type": "fundingHistory", "coin": coin, "startTime": start},
                                                       separators=(",", ":"))
                for coin in self.symbols if is_perp(coin)]
