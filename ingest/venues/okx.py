"""OKX v5 public endpoints and connection rules (the I/O side; parsing is in normalize).

One connection to `/ws/v5/public` per shard of instruments, subscribed by message
(`{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"},...]}`, at most
`ARGS_PER_MESSAGE` args each: a request must stay under 64 KB). Which channels an instrument gets
depends on its type: every one has trades, books and bbo-tbt; swaps add funding-rate; swaps and
futures add mark-price, open-interest, index-tickers of their underlying and liquidation-orders
(subscribed per instrument type, once). OKX drops a connection that hears nothing for 30 s, so a
text "ping" goes out every 25 s (it answers "pong"). A book has no REST snapshot: subscribing
its channel again makes OKX send a fresh `snapshot`, so a checksum failure or a seqId gap resyncs
that one instrument by unsubscribing and subscribing its book. Each connection may make 480
subscribe/unsubscribe requests an hour, two per resync: resyncs are spaced 20 s apart.
Instruments (contract sizes) are fetched once per instrument type at start; nothing is polled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from normalize.trade_ids import Backfill

VENUE = "okx"
WS_BASE = "wss://ws.okx.com:8443"
REST_BASE = "https://www.okx.com"
STREAM_PATH = "/ws/v5/public"
CHANNELS: tuple[str, ...] = ("trades", "books", "bbo-tbt", "funding-rate", "mark-price", "open-interest",
                             "index-tickers", "liquidation-orders")
BOOK_CHANNEL = "books"
"""400 levels every 100 ms; `books-l2-tbt` (400, tick by tick) needs a VIP tier."""
HEARTBEAT_S = 25.0
ARGS_PER_MESSAGE = 100
MAX_CONNECTION_AGE_S = float("inf")
"""OKX documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 0.05
_DERIVATIVE_ONLY = {"funding-rate": ("SWAP",), "mark-price": ("SWAP", "FUTURES"),
                    "open-interest": ("SWAP", "FUTURES"), "index-tickers": ("SWAP", "FUTURES"),
                    "liquidation-orders": ("SWAP", "FUTURES")}


def inst_type(symbol: str) -> str:
    """SPOT for BTC-USDT, SWAP for BTC-USDT-SWAP, FUTURES for BTC-USD-220527, else OPTION."""
    parts = symbol.split("-")
    if len(parts) == 2:
        return "SPOT"
    if len(parts) == 3 and parts[2] == "SWAP":
        return "SWAP"
    if len(parts) == 3 and parts[2].isdigit():
        return "FUTURES"
    return "OPTION"


@dataclass(frozen=True)
class OkxConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    book_channel: str = BOOK_CHANNEL
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    def stream_url(self) -> str:
        return f"{self.ws_base}{STREAM_PATH}"

    def args(self) -> list[dict[str, str]]:
        """Every subscription arg of this connection, once each, in symbol order."""
        out: list[dict[str, str]] = []
        for symbol in self.symbols:
            kind = inst_type(symbol)
            for channel in self.channels:
                if kind not in _DERIVATIVE_ONLY.get(channel, (kind,)):
                    continue
                if channel == "liquidation-orders":
                    arg = {"channel": channel, "instType": kind}
                elif channel == "index-tickers":
                    arg = {"channel": channel, "instId": "-".join(symbol.split("-")[:2])}
                else:
                    arg = {"channel": self.book_channel if channel == "books" else channel, "instId": symbol}
                if arg not in out:
                    out.append(arg)
        return out

    def subscribe_messages(self) -> list[str]:
        args = self.args()
        return [json.dumps({"op": "subscribe", "args": args[i:i + ARGS_PER_MESSAGE]})
                for i in range(0, len(args), ARGS_PER_MESSAGE)]

    def heartbeat(self) -> tuple[float, str] | None:
        return self.heartbeat_s, "ping"

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        arg = {"channel": self.book_channel, "instId": symbol}
        return [json.dumps({"op": op, "args": [arg]}) for op in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """OKX's trade ids are not checked for continuity: its normalizer finds no missing trades to fetch."""
        return None

    def metadata_urls(self) -> list[str]:
        """Instruments of each type traded here (contract sizes for the normalizer)."""
        kinds = dict.fromkeys(inst_type(symbol) for symbol in self.symbols)
        return [f"{self.rest_base}/api/v5/public/instruments?instType={kind}" for kind in kinds if kind != "OPTION"]

    def poll_urls(self) -> list[str]:
        return []
