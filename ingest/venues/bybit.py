"""Bybit v5 linear endpoints and connection rules (the I/O side; parsing is in normalize).

One connection to the public linear stream per shard of symbols, subscribed by message
(`{"op":"subscribe","args":["publicTrade.BTCUSDT",...]}`; the total text of the args of one
connection is limited to 21,000 characters, so they go in messages of at most 100 topics).
Bybit closes a connection that stays silent on our side: the docs ask for an application-level
`{"op":"ping"}` every 20 s. A book has no REST snapshot to align with: subscribing its topic
again makes Bybit send a fresh `snapshot`, so a gap resyncs by unsubscribing and subscribing
that one topic. Open interest, funding and mark price come with `tickers`; nothing is polled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from normalize.trade_ids import Backfill

VENUE = "bybit"
WS_BASE = "wss://stream.bybit.com"
REST_BASE = "https://api.bybit.com"
STREAM_PATH = "/v5/public/linear"
CHANNELS: tuple[str, ...] = ("publicTrade", "orderbook", "tickers", "allLiquidation")
BOOK_DEPTH = 200
"""Levels per side of `orderbook.<depth>`: 1 (10 ms), 50 (20 ms), 200 (100 ms) or 1000 (200 ms)."""
HEARTBEAT_S = 20.0
TOPICS_PER_MESSAGE = 100
MAX_CONNECTION_AGE_S = float("inf")
"""Bybit documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 5.0


@dataclass(frozen=True)
class BybitConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    book_depth: int = BOOK_DEPTH
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    def stream_url(self) -> str:
        return f"{self.ws_base}{STREAM_PATH}"

    def _topic(self, channel: str, symbol: str) -> str:
        return f"orderbook.{self.book_depth}.{symbol}" if channel == "orderbook" else f"{channel}.{symbol}"

    def subscribe_messages(self) -> list[str]:
        topics = [self._topic(channel, symbol) for symbol in self.symbols for channel in self.channels]
        return [json.dumps({"op": "subscribe", "args": topics[i:i + TOPICS_PER_MESSAGE]})
                for i in range(0, len(topics), TOPICS_PER_MESSAGE)]

    def heartbeat(self) -> tuple[float, str] | None:
        return self.heartbeat_s, '{"op":"ping"}'

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        topic = self._topic("orderbook", symbol)
        return [json.dumps({"op": op, "args": [topic]}) for op in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """Bybit's trade ids are not sequential: its normalizer finds no missing trades to fetch."""
        return None

    def metadata_urls(self) -> list[str]:
        """One page of up to 1,000 linear instruments (Bybit lists about 600)."""
        return [f"{self.rest_base}/v5/market/instruments-info?category=linear&limit=1000"]

    def poll_urls(self) -> list[str]:
        return []
