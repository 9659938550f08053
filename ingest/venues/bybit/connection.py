"""Bybit v5 linear endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against Bybit's v5 documentation on 2026-12-07 (docs/venues.md has the table):

* One route, `wss://stream.bybit.com/v5/public/linear` (USDT and USDC perpetuals and futures).
  https://bybit-exchange.github.io/docs/v5/ws/connect
* The args of one connection may total 21,000 characters: a long symbol list is split over several
  connections of the route (`linear`, `linear-2`, ...), each subscribing in messages of at most
  TOPICS_PER_MESSAGE topics. At most 500 new connections in 5 minutes and 1,000 market-data
  connections per IP and market. https://bybit-exchange.github.io/docs/v5/rate-limit
* An application-level `{"op":"ping"}` every 20 s keeps a connection open.
* `orderbook.{depth}`: 1 (10 ms), 50 (20 ms), 200 (100 ms) or 1000 (200 ms) levels for linear.
  https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook
* `liquidation` is deprecated: `allLiquidation` carries every liquidation, every 500 ms.
  https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation
* `/v5/market/instruments-info` pages at most 1,000 instruments (`limit`, `cursor` from
  `nextPageCursor`); the normalizer asks for the next page while one is announced.
  https://bybit-exchange.github.io/docs/v5/market/instrument

A book has no REST snapshot to align with: subscribing its topic
again makes Bybit send a fresh `snapshot`, so a gap resyncs by unsubscribing and subscribing
that one topic. Open interest, funding and mark price come with `tickers`; nothing is polled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, first_data_within, op_messages, route_in
from normalize.trade_ids import Backfill
from normalize.venues.bybit.instruments import venue_symbol

VENUE = "bybit"
WS_BASE = "wss://stream.bybit.com"
REST_BASE = "https://api.bybit.com"
ROUTE = "linear"
ROUTE_PATHS = {ROUTE: "/v5/public/linear"}
CHANNELS: tuple[str, ...] = ("publicTrade", "orderbook", "tickers", "allLiquidation")
ROUTES: dict[str, str] = {channel: ROUTE for channel in (*CHANNELS, "liquidation", "kline")}
"""Topic family -> route. Checked 2026-12-07; docs/venues.md holds the same table."""
ARGS_CHARS_PER_CONNECTION = 21_000
FIRST_DATA_WITHIN_S = 10.0
"""The book and tickers send a snapshot as soon as they are subscribed."""
EVENT_DRIVEN = frozenset({"allLiquidation", "liquidation"})
BOOK_DEPTH = 200
"""Levels per side of `orderbook.<depth>`: 1 (10 ms), 50 (20 ms), 200 (100 ms) or 1000 (200 ms)."""
HEARTBEAT_S = 20.0
TOPICS_PER_MESSAGE = 100
_TOPIC = re.compile(rb'"topic":"([A-Za-z]+)\.')
RECONNECT_INTERVAL_S = 0.6
"""500 new connections in 5 minutes per IP."""
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
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTCUSDT",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("publicTrade",), "book": ("orderbook",), "bbo": ("orderbook",),
        "funding": ("tickers",), "mark_index": ("tickers",), "open_interest": ("tickers",),
        "liquidations": ("allLiquidation",)}
    """The BBO is the book's own (DERIVED); funding, mark and open interest come with tickers."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            route_in(VENUE, ROUTES, channel)

    def _topic(self, channel: str, symbol: str) -> str:
        return f"orderbook.{self.book_depth}.{symbol}" if channel == "orderbook" else f"{channel}.{symbol}"

    def routes(self) -> list[Route]:
        """The symbols' topics, split over as many connections as the per-connection limit of
        ARGS_CHARS_PER_CONNECTION characters needs (a symbol's topics stay on one connection)."""
        parts: list[list[str]] = [[]]
        chars = 0
        for symbol in self.symbols:
            size = sum(len(self._topic(channel, symbol)) + 3 for channel in self.channels)  # quotes, comma
            if parts[-1] and chars + size > ARGS_CHARS_PER_CONNECTION:
                parts.append([])
                chars = 0
            parts[-1].append(symbol)
            chars += size
        quiet = tuple(channel for channel in self.channels if channel in EVENT_DRIVEN)
        out = []
        for number, symbols in enumerate(parts, start=1):
            topics = [self._topic(channel, symbol) for symbol in symbols for channel in self.channels]
            out.append(Route(ROUTE if number == 1 else f"{ROUTE}-{number}", f"{self.ws_base}{self.route_paths[ROUTE]}",
                             tuple(self.channels), tuple(symbols),
                             op_messages("subscribe", topics, TOPICS_PER_MESSAGE),
                             book_channel="orderbook" if "orderbook" in self.channels else "", quiet_channels=quiet,
                             first_data_within_s=first_data_within(self.channels, quiet, FIRST_DATA_WITHIN_S)))
        return out

    def channel_of(self, payload: bytes) -> str | None:
        """Data frames name their topic (`"topic":"orderbook.200.BTCUSDT"`); acks and pongs do not."""
        match = _TOPIC.search(payload, 0, 200)
        return match.group(1).decode() if match else None

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
        """The first page of up to 1,000 linear instruments; the normalizer asks for the next while
        a page announces one (`nextPageCursor`)."""
        return [f"{self.rest_base}/v5/market/instruments-info?category=linear&limit=1000"]

    def poll_urls(self) -> list[str]:
        return []
