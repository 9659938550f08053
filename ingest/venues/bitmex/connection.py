"""BitMEX endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against BitMEX's documentation and announcements on 2026-12-07 (docs/venues.md has the table):

* Market data on `wss://ws.bitmex.com/realtime`; announcements, chat and public notifications moved to
  `/realtimePlatform` on 2023-01-16 (none of them is market data).
  https://www.bitmex.com/app/wsAPI,
  https://blog.bitmex.com/site_announcement/upcoming-updates-to-our-websocket-and-rest-apis
* Tables are subscribed by `{"op":"subscribe","args":["orderBookL2:XBTUSD",...]}`, each answered
  `{"success":true,"subscribe":...}` and followed by the table's `partial`. A request holds at most 20
  args (an error BitMEX returned: "Too many args sent. Max length is 20", api-connectors issue 387).
  https://www.bitmex.com/app/wsAPI, https://github.com/BitMEX/api-connectors/issues/387
* `orderBookL2` ids are arbitrary since 26 June / 10 July 2023 and every insert, update and delete carries
  its price; before, ids encoded the price and updates and deletes carried none.
  https://blog.bitmex.com/api_announcement/removing-id-schema-on-orderbook-feeds/
* Every orderBookL2 row has a `timestamp` (matching-engine time) since 2022-02-14.
  https://blog.bitmex.com/api_announcement/changes-to-order-book-level-2-data/
* Heartbeat: BitMEX no longer pings; if nothing arrived for 5 s a client sends the text `ping` and
  expects `pong` (BitMEX's wsAPI page, as client libraries quote it; the page body was not in the stored
  documentation). A ping every 5 s is sent regardless.
* Connections: 60 new WebSocket connections an hour (token bucket; "Updates to Rate Limits"); REST 30
  requests a minute unauthenticated.
  https://blog.bitmex.com/api_announcement/updates-to-rate-limits/
* BitMEX delisted illiquid contracts on 2025-06-30 and 2025-09-11: a symbol the instruments body no
  longer lists gets no instrument record and its frames are dead letters (no contract size).
  https://blog.bitmex.com/delisting-june2025

A book has no REST snapshot to align with: subscribing its table again makes BitMEX send a fresh
`partial`, so a break resyncs that one symbol by unsubscribing and subscribing its book. Instruments
(contract multipliers) are fetched at start from /api/v1/instrument/active; funding, mark price and open
interest come with the instrument table; nothing is polled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route, UnknownChannel, check_route_paths, first_data_within, op_messages, route_in
from normalize.trade_ids import Backfill
from normalize.venues.bitmex.instruments import venue_symbol

VENUE = "bitmex"
WS_BASE = "wss://ws.bitmex.com"
REST_BASE = "https://www.bitmex.com"
ROUTE_PATHS = {"realtime": "/realtime"}
ROUTES: dict[str, str] = {table: "realtime" for table in (
    "orderBookL2", "orderBookL2_25", "quote", "trade", "instrument", "funding", "liquidation")}
"""Table -> route. Checked 2026-12-07; docs/venues.md holds the same table."""
CHANNELS: tuple[str, ...] = ("orderBookL2", "quote", "trade", "instrument", "funding", "liquidation")
EVENT_DRIVEN = frozenset({"funding", "liquidation"})
"""Funding settles every 8 h; liquidations come when they come (each table's partial still arrives)."""
FIRST_DATA_WITHIN_S = 10.0
"""Every subscription is answered with its table's partial at once."""
ARGS_PER_MESSAGE = 20
HEARTBEAT_S = 5.0
RECONNECT_INTERVAL_S = 60.0
"""60 new connections an hour per IP: a route that keeps failing is retried once a minute at most (a
connection that lived longer than that reconnects at once)."""
MAX_CONNECTION_AGE_S = float("inf")
"""BitMEX documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 1.0
"""Subscriptions are not rate-limited once connected (wsAPI); one resync a second is plenty."""
_TABLE = re.compile(rb'^\{"table":"([A-Za-z0-9_]+)"')


@dataclass(frozen=True)
class BitmexConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    heartbeat_s: float = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("XBTUSD",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trade",), "book": ("orderBookL2",), "bbo": ("quote",), "funding": ("instrument", "funding"),
        "mark_index": ("instrument",), "open_interest": ("instrument",), "liquidations": ("liquidation",)}
    """Mark and index prices, open interest and the funding forecast come with the instrument table;
    settled fundings with the funding table."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(VENUE, self.route_paths, route_in(VENUE, ROUTES, channel, unknown="route for table"))
        if {"orderBookL2", "orderBookL2_25"} <= set(self.channels):
            raise UnknownChannel("bitmex: subscribe one book table per symbol, orderBookL2 or orderBookL2_25")

    @property
    def book_channel(self) -> str:
        return next((c for c in self.channels if c.startswith("orderBookL2")), "")

    def args(self) -> list[str]:
        return [f"{channel}:{symbol}" for symbol in self.symbols for channel in self.channels]

    def routes(self) -> list[Route]:
        args = self.args()
        quiet = tuple(c for c in self.channels if c in EVENT_DRIVEN)
        return [Route("realtime", f"{self.ws_base}{self.route_paths['realtime']}", tuple(self.channels),
                      tuple(self.symbols),
                      op_messages("subscribe", args, ARGS_PER_MESSAGE),
                      book_channel=self.book_channel, quiet_channels=quiet,
                      first_data_within_s=first_data_within(self.channels, quiet, FIRST_DATA_WITHIN_S))]

    def channel_of(self, payload: bytes) -> str | None:
        """Data frames name their table first; the welcome, answers and `pong` do not."""
        match = _TABLE.match(payload)
        return match.group(1).decode() if match else None

    def heartbeat(self) -> tuple[float, str] | None:
        return self.heartbeat_s, "ping"

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        arg = f"{self.book_channel}:{symbol}"
        return [json.dumps({"op": op, "args": [arg]}) for op in ("unsubscribe", "subscribe")]

    def backfill_url(self, request: Backfill) -> str | None:
        """BitMEX's trade ids (trdMatchID) are not sequential: its normalizer finds no missing trades."""
        return None

    def metadata_urls(self) -> list[str]:
        return [f"{self.rest_base}/api/v1/instrument/active"]

    def poll_urls(self) -> list[str]:
        return []
