"""OKX v5 public endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against OKX's documentation and announcements on 2026-12-07 (docs/venues.md has the table):

* Two routes: `/ws/v5/public` for trades, books, bbo-tbt, funding, mark and index prices, open
  interest and liquidations; `/ws/v5/business` for `trades-all` and the candle channels, which
  `/ws/v5/public` stopped serving on 2023-06-20 (a subscription there is refused, error 60018).
  https://www.okx.com/help/changes-to-v5-api-websocket-subscription-parameter-and-url
* Port 443: port 8443 stopped accepting WebSocket connections on 2026-10-31.
  https://www.okx.com/docs-v5/log_en/ (as quoted by SDK maintainers; the page text itself was not
  in the stored documentation)
* Since 2026-06-23 the books' `checksum` is always 0 and `seqId`/`prevSeqId` carry continuity
  (the normalizer checks both, a 0 checksum as "not sent").
  https://www.okx.com/help/okx-order-book-channels-checksum-field-deprecation
* A service upgrade is announced 30 s ahead by `{"event":"notice","code":"64008",...}`: the
  normalizer asks for a planned reconnect of that connection rather than a dead letter.
* Limits: 3 connection requests a second per IP; 480 subscribe/unsubscribe requests an hour per
  connection; a request's args under 64 KB; a connection that hears nothing for 30 s is closed.
  https://web3.okx.com/onchainos/dev-docs/market/websocket (OKX's own copy of the exchange rules)

One connection per route per shard of instruments, subscribed by message
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, check_route_paths, first_data_within, op_messages, route_in
from normalize.trade_ids import Backfill
from normalize.venues.okx.instruments import venue_symbol

VENUE = "okx"
WS_BASE = "wss://ws.okx.com:443"
REST_BASE = "https://www.okx.com"
ROUTE_PATHS = {"public": "/ws/v5/public", "business": "/ws/v5/business"}
ROUTES: dict[str, str] = {
    "trades": "public", "books": "public", "books5": "public", "books-l2-tbt": "public",
    "books50-l2-tbt": "public", "bbo-tbt": "public", "tickers": "public", "funding-rate": "public",
    "mark-price": "public", "open-interest": "public", "index-tickers": "public",
    "liquidation-orders": "public", "price-limit": "public",
    "trades-all": "business", "candle": "business", "mark-price-candle": "business", "index-candle": "business",
}
"""Channel family (a candle channel without its bar size) -> route. Checked 2026-12-07; docs/venues.md
holds the same table, and a test compares the two."""
FIRST_DATA_WITHIN_S = 10.0
"""Books and bbo-tbt push at least every 100 ms while the market moves, and a subscription is
answered with a snapshot at once."""
EVENT_DRIVEN = frozenset({"liquidation-orders"})
CHANNELS: tuple[str, ...] = ("trades", "books", "bbo-tbt", "funding-rate", "mark-price", "open-interest",
                             "index-tickers", "liquidation-orders")
BOOK_CHANNEL = "books"
"""400 levels every 100 ms; `books-l2-tbt` (400, tick by tick) needs a VIP tier."""
HEARTBEAT_S = 25.0
ARGS_PER_MESSAGE = 100
RECONNECT_INTERVAL_S = 0.5
"""3 connection requests a second per IP, shared by the routes."""
MAX_CONNECTION_AGE_S = float("inf")
"""OKX documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 0.05
_DATA = re.compile(rb'^\{"arg":\{"channel":"([^"]+)"')
_DERIVATIVE_ONLY = {"funding-rate": ("SWAP",), "mark-price": ("SWAP", "FUTURES"),
                    "open-interest": ("SWAP", "FUTURES"), "index-tickers": ("SWAP", "FUTURES"),
                    "liquidation-orders": ("SWAP", "FUTURES")}


def channel_family(channel: str) -> str:
    """`candle1m` -> `candle`, `mark-price-candle1H` -> `mark-price-candle`; others as they are."""
    head, found, _ = channel.partition("candle")
    return f"{head}candle" if found else channel


def route_of(channel: str) -> str:
    return route_in(VENUE, ROUTES, channel, channel_family(channel))


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
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTC-USDT-SWAP",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trades",), "book": ("books",), "bbo": ("bbo-tbt",), "funding": ("funding-rate",),
        "mark_index": ("mark-price", "index-tickers"), "open_interest": ("open-interest",),
        "liquidations": ("liquidation-orders",)}
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(VENUE, self.route_paths, route_of(channel))

    def routes(self) -> list[Route]:
        """One connection per route the channels need."""
        out = []
        for route, path in self.route_paths.items():
            channels = tuple(c for c in self.channels if route_of(c) == route)
            if not channels:
                continue
            args = self.args(channels)
            quiet = tuple(c for c in channels if channel_family(c) in EVENT_DRIVEN)
            out.append(Route(route, f"{self.ws_base}{path}", channels, tuple(self.symbols),
                             op_messages("subscribe", args, ARGS_PER_MESSAGE),
                             book_channel="books" if "books" in channels else "", quiet_channels=quiet,
                             first_data_within_s=first_data_within(channels, quiet, FIRST_DATA_WITHIN_S)))
        return out

    def channel_of(self, payload: bytes) -> str | None:
        """Data frames start with their arg: `{"arg":{"channel":"books",...},"action":...` or
        `..."data":`; acks carry an `event` first, and "pong" is plain text."""
        match = _DATA.match(payload)
        if match is None or b'"data":' not in payload:
            return None
        channel = match.group(1).decode()
        return "books" if channel == self.book_channel else channel

    def args(self, channels: Sequence[str] | None = None) -> list[dict[str, str]]:
        """Every subscription arg of these channels (all of this connection's by default), once
        each, in symbol order."""
        out: list[dict[str, str]] = []
        for symbol in self.symbols:
            kind = inst_type(symbol)
            for channel in self.channels if channels is None else channels:
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
