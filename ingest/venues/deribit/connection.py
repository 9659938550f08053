"""Deribit endpoints and connection rules (the I/O side; parsing is in normalize).

Checked against Deribit's documentation on 2026-12-07 (docs/venues.md has the table):

* One route, `wss://www.deribit.com/ws/api/v2`, JSON-RPC 2.0; channels are subscribed with
  `public/subscribe` (WebSocket only), notifications come as `{"method":"subscription","params":...}`.
  https://docs.deribit.com/articles/notifications
* Intervals: `raw` is for authenticated sessions only (an unauthenticated subscribe naming one is refused
  whole with error 13778 `raw_subscriptions_not_available_for_unauthorized`, as SDK maintainers measured
  it), so books, trades and tickers are subscribed at `100ms`; `agg2` is 2 s. The first book message is
  the whole book, each later one names the last change_id as its prev_change_id.
  https://docs.deribit.com/subscriptions/orderbook/bookinstrument_nameinterval,
  https://docs.deribit.com/subscriptions/upcoming/market-data/tickerinstrument_nameinterval
* Heartbeat: `public/set_heartbeat` (interval at least 10 s) makes the server send `heartbeat` and
  `test_request` messages; a test_request not answered with `public/test` closes the connection at once
  (the normalizer answers it: Emitted.replies).
  https://docs.deribit.com/api-reference/session-management/public-set_heartbeat
* Limits: 32 simultaneous connections per IP, HTTP requests included; subscribe has its own credit
  limit, a sustained ~3.3 requests a second (3,000 credits each of a 30,000 pool: a burst of 10);
  public/get_instruments 1 request a second.
  https://docs.deribit.com/articles/connection-management-best-practices,
  https://docs.deribit.com/api-reference/subscription-management/public-subscribe,
  https://docs.deribit.com/api-reference/market-data/public-get_instruments
* Since 2026-01-13 (breaking) books and instruments carry new `state` values (open, settlement,
  delivered, inactive, locked, halted, archivized): the instrument record keeps the state as its status.
  https://docs.deribit.com/changelogs/jsonrpc.md

A book has no REST snapshot to align with: subscribing its channel again makes Deribit send a fresh
snapshot, so a change_id break resyncs that one instrument by unsubscribing and subscribing its book.
Missing trades (a trade_seq jump) are fetched from public/get_last_trades_by_instrument. Instruments are
fetched per currency at start; nothing is polled (funding, mark price and open interest come with the
ticker).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import (
    Route,
    VenueLimitExceeded,
    check_route_paths,
    first_data_within,
    route_in,
)
from normalize.trade_ids import Backfill
from normalize.venues.deribit.instruments import venue_symbol
from normalize.venues.deribit.wire import request as rpc

VENUE = "deribit"
WS_BASE = "wss://www.deribit.com"
REST_BASE = "https://www.deribit.com"
ROUTE_PATHS = {"ws": "/ws/api/v2"}
ROUTES: dict[str, str] = {"book": "ws", "trades": "ws", "ticker": "ws", "quote": "ws"}
"""Channel (the first word of its name) -> route. Checked 2026-12-07; docs/venues.md holds the same table."""
CHANNELS: tuple[str, ...] = ("book", "trades", "ticker", "quote")
INTERVAL = "100ms"
"""The fastest interval an unauthenticated session may subscribe (`raw` needs authentication)."""
INTERVAL_CHANNELS = frozenset({"book", "trades", "ticker"})
"""Channels whose name ends in an interval; `quote.<instrument>` has none."""
HEARTBEAT_S = 30
"""public/set_heartbeat interval: at least 10 s; Deribit's own example uses 30."""
EVENT_DRIVEN = frozenset({"trades"})
"""Option books can go minutes without a trade (the recorded 30 s had none)."""
FIRST_DATA_WITHIN_S = 10.0
"""A book subscription is answered with its snapshot at once; tickers push every 100 ms."""
CHANNELS_PER_MESSAGE = 100
SUBSCRIBE_BURST = 9
"""Subscribe requests a connection may send at once: 3,000 credits each from a pool of 30,000, one request
(set_heartbeat) spent already. A feed needing more is refused at start: shard it."""
RECONNECT_INTERVAL_S = 1.0
"""No connection rate is documented (32 open connections per IP is); one attempt a second per route."""
MAX_CONNECTION_AGE_S = float("inf")
"""Deribit documents no connection age limit."""
RESUBSCRIBES_PER_SECOND = 1.0
"""Two subscribe-priced requests per resync against a sustained ~3.3 a second."""
TRADES_PAGE = 1000
"""get_last_trades_by_instrument returns at most 1,000 trades a call (`count`)."""
_CHANNEL = re.compile(rb'^\{"jsonrpc":"2\.0","method":"subscription","params":\{"channel":"([a-z_]+)\.')


def channel_name(channel: str, symbol: str) -> str:
    """book -> book.BTC-PERPETUAL.100ms; quote -> quote.BTC-PERPETUAL."""
    return f"{channel}.{symbol}.{INTERVAL}" if channel in INTERVAL_CHANNELS else f"{channel}.{symbol}"


def currency_of(symbol: str) -> str:
    """The `currency` get_instruments lists a symbol under: the coin of inverse contracts and options
    (BTC-PERPETUAL, BTC-25MAR22-60000-C: BTC), the margin currency of linear ones (BTC_USDC-PERPETUAL: USDC)."""
    base, _, quote = symbol.split("-")[0].partition("_")
    return quote or base


@dataclass(frozen=True)
class DeribitConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    heartbeat_s: int = HEARTBEAT_S
    venue: str = VENUE
    max_connection_age_s: float = MAX_CONNECTION_AGE_S
    reconnect_interval_s: float = RECONNECT_INTERVAL_S
    snapshots_per_second: float = RESUBSCRIBES_PER_SECOND

    probe_symbols: ClassVar[tuple[str, ...]] = ("BTC-PERPETUAL",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "trades": ("trades",), "book": ("book",), "bbo": ("quote",), "funding": ("ticker",),
        "mark_index": ("ticker",), "open_interest": ("ticker",), "liquidations": ("trades",)}
    """Funding, mark and index prices and open interest come with the ticker; liquidations are the
    liquidation fills of the trades channel."""
    @staticmethod
    def symbol_of(instrument: str) -> str:
        return venue_symbol(instrument)

    def __post_init__(self) -> None:
        for channel in self.channels:
            check_route_paths(VENUE, self.route_paths, route_in(VENUE, ROUTES, channel))
        messages = -(-len(self.symbols) * len(self.channels) // CHANNELS_PER_MESSAGE)
        if messages > SUBSCRIBE_BURST:
            raise VenueLimitExceeded(f"deribit: {len(self.symbols)} symbols x {len(self.channels)} channels need "
                                     f"{messages} subscribe requests at once; the credit pool allows "
                                     f"{SUBSCRIBE_BURST} ({SUBSCRIBE_BURST * CHANNELS_PER_MESSAGE} channels): shard "
                                     "the symbols (--shard)")

    def routes(self) -> list[Route]:
        names = [channel_name(channel, symbol) for symbol in self.symbols for channel in self.channels]
        subscribe = [rpc("public/set_heartbeat", {"interval": self.heartbeat_s}, 1)]
        subscribe += [rpc("public/subscribe", {"channels": names[i:i + CHANNELS_PER_MESSAGE]},
                              2 + i // CHANNELS_PER_MESSAGE) for i in range(0, len(names), CHANNELS_PER_MESSAGE)]
        quiet = tuple(c for c in self.channels if c in EVENT_DRIVEN)
        return [Route("ws", f"{self.ws_base}{self.route_paths['ws']}", tuple(self.channels), tuple(self.symbols),
                      tuple(subscribe), book_channel="book" if "book" in self.channels else "",
                      quiet_channels=quiet,
                      first_data_within_s=first_data_within(self.channels, quiet, FIRST_DATA_WITHIN_S))]

    def channel_of(self, payload: bytes) -> str | None:
        """Notifications name their channel first; answers and heartbeats carry none."""
        match = _CHANNEL.match(payload)
        return match.group(1).decode() if match else None

    def heartbeat(self) -> tuple[float, str] | None:
        """None: the server sends the heartbeats (set_heartbeat, in the route's first messages), and the
        normalizer answers its test_request."""
        return None

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        channels: dict[str, object] = {"channels": [channel_name("book", symbol)]}
        return [rpc("public/unsubscribe", channels, 100), rpc("public/subscribe", channels, 101)]

    def backfill_url(self, request: Backfill) -> str | None:
        """The trades of a trade_seq gap, oldest first, a page of at most TRADES_PAGE."""
        return (f"{self.rest_base}/api/v2/public/get_last_trades_by_instrument?instrument_name={request.symbol}"
                f"&start_seq={request.first_id}&end_seq={request.last_id}&count={TRADES_PAGE}&sorting=asc")

    def metadata_urls(self) -> list[str]:
        """get_instruments for each currency the symbols are listed under (one request a second allowed:
        a feed spans few currencies)."""
        currencies = dict.fromkeys(currency_of(symbol) for symbol in self.symbols)
        return [f"{self.rest_base}/api/v2/public/get_instruments?currency={currency}&expired=false"
                for currency in currencies]

    def poll_urls(self) -> list[str]:
        return []
