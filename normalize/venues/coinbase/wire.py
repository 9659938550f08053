"""Coinbase's messages as they are on the wire, in both of its public WebSocket protocols, field names
as Coinbase sends them, and their decoders.

* The Exchange feed (`wss://ws-feed.exchange.coinbase.com`, formerly ws-feed.pro.coinbase.com, the
  protocol of the bundled 2021 capture): one message per event, `{"type": ...}`.
* Advanced Trade (`wss://advanced-trade-ws.coinbase.com`): `{"channel": ..., "timestamp": ...,
  "sequence_num": ..., "events": [...]}`, the channel named differently from the subscription
  (`level2` arrives as `l2_data`).

Times are RFC 3339 text in UTC to the microsecond (Exchange) or nanosecond (Advanced Trade message
timestamps): `iso_ns` reads them exactly.
"""

from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar

import msgspec

VENUE = "coinbase"
T = TypeVar("T")

# -- the Exchange feed ------------------------------------------------------------------------


class Snapshot(msgspec.Struct, tag_field="type", tag="snapshot", frozen=True):
    """level2 / level2_batch: the whole book, sent first after subscribing."""

    product_id: str  # e.g. BTC-USD
    bids: msgspec.Raw  # [["price", "size"], ...]: applied by L2Book.apply_json
    asks: msgspec.Raw
    time: str = ""  # absent in 2021 messages


class L2Update(msgspec.Struct, tag_field="type", tag="l2update", frozen=True, gc=False):
    product_id: str
    changes: list[tuple[str, str, str]]  # [side buy|sell, price, new size ("0" removes)]
    time: str  # matching engine time of the change


class Match(msgspec.Struct, tag_field="type", tag="match", frozen=True, gc=False):
    """matches: one trade. `side` is the MAKER order's side (a `sell` match is an up-tick)."""

    trade_id: int  # counts up by one per product
    side: str  # maker side: buy or sell
    size: str  # base units
    price: str
    product_id: str
    sequence: int  # the product's feed sequence at this event
    time: str


class LastMatch(Match, tag="last_match", frozen=True, gc=False):
    """The product's latest trade, sent once when `matches` is subscribed."""


class Ticker(msgspec.Struct, tag_field="type", tag="ticker", frozen=True):
    """ticker / ticker_batch: the best bid and ask as of the product's last match."""

    product_id: str
    sequence: int = 0  # the product's feed sequence at the match
    time: str = ""  # the match's time
    best_bid: str = ""
    best_ask: str = ""
    best_bid_size: str = ""  # absent in 2021 messages
    best_ask_size: str = ""


class Subscriptions(msgspec.Struct, tag_field="type", tag="subscriptions", frozen=True):
    """The answer to a subscribe or unsubscribe message."""


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat", frozen=True):
    """Once a second per product of the `heartbeat` channel."""


class Status(msgspec.Struct, tag_field="type", tag="status", frozen=True):
    """Products and currencies, on the `status` channel."""


class Error(msgspec.Struct, tag_field="type", tag="error", frozen=True):
    message: str = ""
    reason: str = ""


ExchangeMessage = Snapshot | L2Update | Match | LastMatch | Ticker | Subscriptions | Heartbeat | Status | Error

# -- Advanced Trade -------------------------------------------------------------------------------


class L2Level(msgspec.Struct, frozen=True, gc=False):
    side: str  # bid or offer
    event_time: str  # matching engine time of the change (the epoch in snapshots)
    price_level: str
    new_quantity: str  # the level's new size ("0" removes); contracts for futures


class L2Event(msgspec.Struct, frozen=True):
    type: str  # snapshot or update
    product_id: str
    updates: list[L2Level]


class AtTrade(msgspec.Struct, frozen=True, gc=False):
    trade_id: str
    product_id: str
    price: str
    size: str  # base units (spot) or contracts (futures)
    side: str  # BUY or SELL: the taker's side
    time: str


class TradesEvent(msgspec.Struct, frozen=True):
    type: str  # snapshot (recent trades, on subscribing) or update
    trades: list[AtTrade]


class AtTicker(msgspec.Struct, frozen=True):
    product_id: str
    best_bid: str = ""
    best_bid_quantity: str = ""
    best_ask: str = ""
    best_ask_quantity: str = ""


class TickerEvent(msgspec.Struct, frozen=True):
    type: str
    tickers: list[AtTicker]


class Message(msgspec.Struct, Generic[T], frozen=True):
    channel: str  # l2_data, market_trades, ticker, ticker_batch, heartbeats, subscriptions, ...
    timestamp: str  # send time, to the nanosecond
    sequence_num: int  # counts up by one per message on the connection
    events: list[T]


class Envelope(msgspec.Struct, frozen=True):
    """Any Advanced Trade message, for its channel and sequence number."""

    channel: str
    sequence_num: int
    timestamp: str = ""


AT_PREFIX = b'{"channel":"'
L2_CHANNEL = "l2_data"
"""How Advanced Trade names the `level2` channel in its messages."""

exchange_decoder = msgspec.json.Decoder(ExchangeMessage, strict=False)
envelope_decoder = msgspec.json.Decoder(Envelope, strict=False)
l2_decoder = msgspec.json.Decoder(Message[L2Event], strict=False)
trades_decoder = msgspec.json.Decoder(Message[TradesEvent], strict=False)
ticker_decoder = msgspec.json.Decoder(Message[TickerEvent], strict=False)


# -- time ---------------------------------------------------------------------------------------

_SECONDS: dict[str, int] = {}
"""`YYYY-MM-DDTHH:MM:SS` -> seconds since the epoch: a stream's messages share a few seconds."""


def iso_ns(text: str) -> int:
    """`2021-04-17T16:43:37.075687Z` -> ns since the epoch, exactly (a fraction of up to 9 digits; the
    zone must be `Z` or absent). ValueError for anything else. The hot path is one dict lookup and
    one int() for Coinbase's own two forms (6 and 9 digits, `Z`)."""
    seconds = _SECONDS.get(text[:19])
    if seconds is not None and text[-1:] == "Z" and text[19:20] == "." and text.isascii():
        digits = text[20:-1]
        size = len(digits)
        if (size == 6 or size == 9) and digits.isdigit():
            return seconds * 1_000_000_000 + int(digits) * (1000 if size == 6 else 1)
    return _iso_ns(text)


def _iso_ns(text: str) -> int:
    head = text[:19]
    seconds = _SECONDS.get(head)
    if seconds is None:
        if len(head) != 19 or head[10] != "T" or not head.isascii() or not head[:4].isdigit():
            raise ValueError(f"not an RFC 3339 UTC time: {text[:40]!r}")
        seconds = int(dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp())
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[head] = seconds
    fraction = text[19:-1] if text.endswith("Z") else text[19:]
    if not fraction:
        return seconds * 1_000_000_000
    digits = fraction[1:]
    if fraction[0] != "." or not 0 < len(digits) <= 9 or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not an RFC 3339 UTC time: {text[:40]!r}")
    return seconds * 1_000_000_000 + int(digits.ljust(9, "0"))
