"""Hyperliquid endpoints and connection rules (the I/O side; parsing is in normalize).

One WebSocket (`/ws`) per shard of coins, subscribed by messages, one per (channel, coin):
`{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}`. The venue closes a
connection that sent nothing for 60 s, so the handler sends the app-level `{"method":"ping"}`
every 50 s (answered by `{"channel":"pong"}`). Limits per IP: 100 connections, 1,000
subscriptions (four channels a coin: 250 coins) and 2,000 messages sent a minute. No connection
age limit is documented, so none is applied.

REST is `POST /info` with a JSON body, written as the URL fragment (see interface.py): `meta`
once at start, and each symbol's `fundingHistory` over the last few hours in the first poll of
every hour (settlements happen on the hour; the normalizer drops the ones it already emitted).
Every `l2Book` message is a full snapshot, so a book is resynced by subscribing its channel
again (unsubscribe first: the venue refuses a subscription it already has).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from normalize.trade_ids import Backfill
from normalize.venues.hyperliquid import is_perp

VENUE = "hyperliquid"
WS_BASE = "wss://api.hyperliquid.xyz"
REST_BASE = "https://api.hyperliquid.xyz"
CHANNELS: tuple[str, ...] = ("l2Book", "trades", "bbo", "activeAssetCtx")
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
    venue: str = VENUE
    max_connection_age_s: float = math.inf
    snapshots_per_second: float = 5.0
    """Resubscriptions per second (each is two messages of the 2,000 a minute allowed)."""
    ping_interval_s: float = PING_INTERVAL_S
    funding_polled_hour: int | None = field(default=None, init=False)
    """The hour (ms // HOUR_MS) whose funding history was last asked for."""

    def stream_url(self) -> str:
        return f"{self.ws_base}/ws"

    def subscribe_messages(self) -> list[str]:
        return [_message("subscribe", channel, coin) for coin in self.symbols for channel in self.channels]

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
