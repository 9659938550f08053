"""Kraken Futures (Derivatives WebSocket v1, `wss://futures.kraken.com/ws/v1`) messages as they are on
the wire: one msgspec Struct per feed, field names as Kraken sends them, and their decoders.

Numbers are JSON numbers, not strings. Book levels are decoded as floats by msgspec (its parser
rounds correctly: the value equals float() of the text) and validated by the book; the fields of
trades and tickers that become record values are kept as raw JSON text and parsed with
`normalize.decimals.parse_decimals`, so exactness is judged field by field (a ticker's `change`
has 16 digits and is not used). Decoders are strict: a number sent as a string is a dead letter.
"""

from __future__ import annotations

import msgspec

VENUE = "kraken-futures"
MS = 1_000_000


class Envelope(msgspec.Struct, frozen=True):
    """Any frame: data frames name their `feed`, control frames their `event`."""

    feed: str = ""  # book_snapshot, book, trade_snapshot, trade, ticker, ticker_lite, heartbeat
    event: str = ""  # info, subscribed, unsubscribed, subscribed_failed, alert, error
    product_id: str = ""  # venue symbol, upper case (PI_XBTUSD)
    message: str = ""  # alert/error text


class Level(msgspec.Struct, frozen=True):
    price: float  # price
    qty: float  # contracts at the price


class BookSnapshot(msgspec.Struct, frozen=True):
    product_id: str
    timestamp: int  # book time, ms
    seq: int  # per-product sequence; the first `book` delta after it is seq + 1
    bids: list[Level]
    asks: list[Level]


class BookDelta(msgspec.Struct, frozen=True):
    """One level of one side: the level's new size (0 removes it)."""

    product_id: str
    side: str  # buy (bid) or sell (ask)
    seq: int  # previous seq + 1 for the product
    price: float
    qty: float  # contracts; 0 removes the level
    timestamp: int  # ms


class TradeData(msgspec.Struct, frozen=True):
    product_id: str
    uid: str  # trade id
    side: str  # taker side: buy or sell
    time: int  # ms
    qty: msgspec.Raw  # contracts
    price: msgspec.Raw
    type: str = "fill"  # fill, liquidation, assignment, termination, block
    seq: int | None = None  # per-product trade sequence


class TradeSnapshot(msgspec.Struct, frozen=True):
    """The most recent trades (up to 100), newest first, sent on subscribing."""

    product_id: str
    trades: list[TradeData]


ZERO = msgspec.Raw(b"0")
"""An omitted ticker number: Kraken leaves out a field whose value is zero."""


class Ticker(msgspec.Struct, frozen=True):
    """`ticker` (throttled to one message a second per product). Kraken omits a numeric field whose
    value is zero, so an absent funding field of a perpetual means 0."""

    product_id: str
    time: int  # server time, ms
    tag: str = ""  # perpetual, month, quarter, semiannual
    bid: msgspec.Raw = ZERO
    ask: msgspec.Raw = ZERO
    bid_size: msgspec.Raw = ZERO  # contracts
    ask_size: msgspec.Raw = ZERO
    index: msgspec.Raw = ZERO  # real-time index of the product
    markPrice: msgspec.Raw = ZERO
    openInterest: msgspec.Raw = ZERO  # contracts
    funding_rate: msgspec.Raw = ZERO  # ABSOLUTE: quote currency per contract per interval (not used)
    funding_rate_prediction: msgspec.Raw = ZERO  # absolute, next interval (not used)
    relative_funding_rate: msgspec.Raw = ZERO  # funding_rate / price: a fraction per interval
    relative_funding_rate_prediction: msgspec.Raw = ZERO  # fraction, the next interval's estimate
    next_funding_rate_time: int | None = None  # ms: when the current interval's funding settles
    maturityTime: int | None = None  # ms; 0 for perpetuals
    suspended: bool = False


envelope_decoder = msgspec.json.Decoder(Envelope)
book_snapshot_decoder = msgspec.json.Decoder(BookSnapshot)
book_decoder = msgspec.json.Decoder(BookDelta)
trade_decoder = msgspec.json.Decoder(TradeData)
trade_snapshot_decoder = msgspec.json.Decoder(TradeSnapshot)
ticker_decoder = msgspec.json.Decoder(Ticker)
