"""Binance USD-M futures endpoints and connection rules (the I/O side; parsing is in normalize).

One combined-stream connection per shard of symbols, subscribed by URL. Binance pings every
3 minutes and expects a pong (the websockets library answers); it cuts every connection at
24 h, so the handler reconnects on its own before that. The REST depth snapshot weighs 20 at
limit 1000 against 2,400 a minute: snapshots are rate-limited across symbols.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from normalize.trade_ids import Backfill

VENUE = "binance-usdm"
WS_BASE = "wss://fstream.binance.com"
REST_BASE = "https://fapi.binance.com"
CHANNELS: tuple[str, ...] = ("aggTrade", "depth@100ms", "bookTicker", "markPrice@1s", "forceOrder")
MAX_CONNECTION_AGE_S = 23.5 * 3600
SNAPSHOTS_PER_SECOND = 2.0


@dataclass(frozen=True)
class BinanceUsdmConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    snapshots_per_second: float = SNAPSHOTS_PER_SECOND

    def stream_url(self) -> str:
        streams = "/".join(f"{symbol.lower()}@{channel}" for symbol in self.symbols for channel in self.channels)
        return f"{self.ws_base}/stream?streams={streams}"

    def subscribe_messages(self) -> list[str]:
        return []

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
