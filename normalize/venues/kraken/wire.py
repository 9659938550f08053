"""Kraken spot WebSocket messages as they are on the wire, v1 and v2: msgspec Structs, field names as
Kraken sends them, and their decoders.

v1 (`wss://ws.kraken.com`, frozen) sends data as JSON arrays `[channelID, payload..., channelName,
pair]` with every decimal quoted; v2 (`wss://ws.kraken.com/v2`) sends objects
`{"channel":..,"type":"snapshot"|"update","data":[..]}` whose decimals are JSON numbers written with
the pair's full precision (`0.000022900`). v2 numbers that become records or enter the checksum are
kept as raw JSON text (msgspec.Raw): the checksum is over that text.
"""

from __future__ import annotations

import msgspec

VENUE = "kraken"
MS = 1_000_000


# -- v1 ---------------------------------------------------------------------------------------------
class V1Book(msgspec.Struct, frozen=True):
    """One payload dict of a v1 book frame: a snapshot (`as`, `bs`) or an update (`a` and/or `b`,
    the checksum `c` in the last dict of the frame). Levels are [price, volume, timestamp] plus a
    4th "r" when republished; every element a string."""

    as_: list[list[str]] | None = msgspec.field(default=None, name="as")  # snapshot asks
    bs: list[list[str]] | None = None  # snapshot bids
    a: list[list[str]] | None = None  # ask updates, oldest first
    b: list[list[str]] | None = None  # bid updates, oldest first
    c: str | None = None  # CRC32 of the top 10 asks and bids, unsigned decimal


class V1Ticker(msgspec.Struct, frozen=True):
    a: list[str | int]  # ask: [price, whole lot volume, lot volume]
    b: list[str | int]  # bid: [price, whole lot volume, lot volume]


v1_parts_decoder = msgspec.json.Decoder(list[msgspec.Raw])
v1_book_decoder = msgspec.json.Decoder(V1Book)
v1_trade_frame_decoder = msgspec.json.Decoder(tuple[int, list[list[str]], str, str])
"""[channelID, [[price, volume, time, side b/s, type m/l, misc(, id)], ...], "trade", pair]."""
v1_ticker_decoder = msgspec.json.Decoder(V1Ticker)
v1_spread_decoder = msgspec.json.Decoder(list[str])  # [bid, ask, timestamp, bid volume, ask volume]
str_decoder = msgspec.json.Decoder(str)


# -- v2 ---------------------------------------------------------------------------------------------
class V2Level(msgspec.Struct, frozen=True):
    price: msgspec.Raw  # JSON number with the pair's price precision
    qty: msgspec.Raw  # JSON number with the pair's quantity precision; 0 removes the level


class V2Book(msgspec.Struct, frozen=True):
    symbol: str  # BTC/USD
    bids: list[V2Level]
    asks: list[V2Level]
    checksum: int  # CRC32 of the top 10 asks and bids after applying this message
    timestamp: str = ""  # RFC 3339 (updates)


class V2Trade(msgspec.Struct, frozen=True):
    symbol: str
    side: str  # taker side: buy or sell
    price: msgspec.Raw
    qty: msgspec.Raw
    trade_id: int  # sequential per book
    timestamp: str  # RFC 3339, µs
    ord_type: str = ""  # taker order type: market or limit


class V2Ticker(msgspec.Struct, frozen=True):
    symbol: str
    bid: msgspec.Raw
    bid_qty: msgspec.Raw
    ask: msgspec.Raw
    ask_qty: msgspec.Raw
    timestamp: str = ""  # RFC 3339 where sent


class V2Pair(msgspec.Struct, frozen=True):
    symbol: str  # BTC/USD
    base: str
    quote: str
    status: str = ""  # online, cancel_only, post_only, limit_only, reduce_only, maintenance, delisted
    price_increment: float | None = None
    qty_increment: float | None = None
    qty_min: float | None = None


class V2Instruments(msgspec.Struct, frozen=True):
    pairs: list[V2Pair] = []


class Control(msgspec.Struct, frozen=True):
    """Any object frame that is not v2 market data: v1 events, v2 answers and status."""

    event: str = ""  # v1: heartbeat, systemStatus, subscriptionStatus, pong, error
    status: str = ""  # v1: online, subscribed, error, ...
    errorMessage: str = ""  # v1
    channel: str = ""  # v2: heartbeat, status
    method: str = ""  # v2: subscribe, unsubscribe, pong
    success: bool = True  # v2 answers
    error: str = ""  # v2 answers
    result: msgspec.Raw = msgspec.Raw(b"null")  # v2 subscribe answer: {"channel":"book","depth":10,"symbol":...}


class SubscribeResult(msgspec.Struct, frozen=True):
    channel: str = ""
    symbol: str = ""
    depth: int = 0


class V2Frame(msgspec.Struct, frozen=True):
    channel: str
    type: str
    data: msgspec.Raw


control_decoder = msgspec.json.Decoder(Control)
subscribe_result_decoder = msgspec.json.Decoder(SubscribeResult)
v2_frame_decoder = msgspec.json.Decoder(V2Frame)
v2_book_decoder = msgspec.json.Decoder(list[V2Book])
v2_trades_decoder = msgspec.json.Decoder(list[V2Trade])
v2_ticker_decoder = msgspec.json.Decoder(list[V2Ticker])
v2_instruments_decoder = msgspec.json.Decoder(V2Instruments)
