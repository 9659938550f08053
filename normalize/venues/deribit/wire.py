"""Deribit's JSON-RPC v2 messages as they are on the wire: one msgspec Struct per notification's data and
REST body, field names as Deribit sends them, and their decoders. Numbers are JSON numbers (decoded to
the float nearest the decimal, as float(text) gives), times are ms."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

VENUE = "deribit"
MS = 1_000_000

PREFIX = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'
"""Every notification starts so: the channel name follows."""

T = TypeVar("T")


class Params(msgspec.Struct, Generic[T], frozen=True):
    channel: str  # book.BTC-PERPETUAL.100ms, trades.BTC-PERPETUAL.100ms, ticker..., quote.BTC-PERPETUAL
    data: T


class Notification(msgspec.Struct, Generic[T], frozen=True):
    params: Params[T]


Level = tuple[str, float, float]
"""[action, price, amount]: action new, change or delete (amount 0)."""


class BookData(msgspec.Struct, frozen=True, gc=False):
    timestamp: int  # ms
    instrument_name: str
    change_id: int  # this message's id
    bids: list[Level]
    asks: list[Level]
    type: str = ""  # snapshot or change (absent before 2021: a message without prev_change_id is the snapshot)
    prev_change_id: int | None = None  # change_id of the message before; absent on the first


class TradeData(msgspec.Struct, frozen=True, gc=False):
    trade_seq: int  # +1 per trade of the instrument
    trade_id: str
    timestamp: int  # ms
    price: float
    amount: float  # USD for inverse futures and perpetuals, coins for options and linear contracts
    direction: str  # taker side: buy or sell
    instrument_name: str
    liquidation: str | None = None  # M: the maker was liquidated, T: the taker, MT: both
    block_trade_id: str | None = None  # set on block trades


class Greeks(msgspec.Struct, frozen=True):
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None


class TickerData(msgspec.Struct, frozen=True):
    timestamp: int  # ms
    instrument_name: str
    mark_price: float | None = None
    index_price: float | None = None
    open_interest: float | None = None  # amount units: USD (inverse), coins (options, linear)
    funding_8h: float | None = None  # perpetuals: the funding rate over 8 h, fraction
    current_funding: float | None = None  # perpetuals: the rate now (unit not documented)
    estimated_delivery_price: float | str | None = None  # "expired" once delivered
    underlying_price: float | None = None  # options
    underlying_index: str | None = None  # options: the future or index the underlying price is of
    mark_iv: float | None = None  # options: percent a year
    bid_iv: float | None = None
    ask_iv: float | None = None
    interest_rate: float | None = None
    greeks: Greeks | None = None
    state: str = ""  # open, closed (and, since 2026-01-13, settlement, delivered, inactive, locked, halted...)


class QuoteData(msgspec.Struct, frozen=True):
    timestamp: int  # ms
    instrument_name: str
    best_bid_price: float | None = None  # 0 or null with no bid
    best_bid_amount: float | None = None
    best_ask_price: float | None = None
    best_ask_amount: float | None = None


class Error(msgspec.Struct, frozen=True):
    code: int
    message: str = ""


class ControlParams(msgspec.Struct, frozen=True):
    type: str = ""  # heartbeat: heartbeat or test_request
    channel: str = ""  # a notification written otherwise than Deribit writes it (not compact): its channel


class Control(msgspec.Struct, frozen=True):
    """Anything that is not a notification: answers to our requests (`result`, or `error`) and the
    server's heartbeats (`{"method":"heartbeat","params":{"type":"test_request"}}`)."""

    jsonrpc: str
    method: str = ""
    params: ControlParams | None = None
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw()  # empty when absent
    error: Error | None = None


class InstrumentEntry(msgspec.Struct, frozen=True):
    instrument_name: str
    kind: str  # future, option, spot, future_combo, option_combo
    base_currency: str
    quote_currency: str  # the price currency: USD (inverse), the coin (inverse options), USDC...
    tick_size: float
    contract_size: float  # the amount's step: 10 USD (BTC-PERPETUAL), 1 coin (options)
    min_trade_amount: float
    expiration_timestamp: int  # ms; year 3000 for perpetuals
    settlement_period: str = ""  # perpetual, month, week, day
    counter_currency: str = ""  # newer bodies: what the strike and the id's quote are in
    settlement_currency: str = ""  # newer bodies
    future_type: str = ""  # newer bodies: reversed (inverse) or linear
    instrument_type: str = ""  # newest bodies: reversed or linear
    option_type: str = ""  # call or put
    strike: float | None = None
    is_active: bool = True
    state: str = ""  # newest bodies: open, settlement, delivered, inactive, locked, halted, archivized


class InstrumentsBody(msgspec.Struct, frozen=True):
    jsonrpc: str
    result: list[InstrumentEntry] | None = None
    error: Error | None = None
    usOut: int | None = None  # server time the answer left, us


class TradesResult(msgspec.Struct, frozen=True):
    trades: list[TradeData]
    has_more: bool = False


class TradesPage(msgspec.Struct, frozen=True):
    """public/get_last_trades_by_instrument (start_seq .. end_seq, sorting asc)."""

    jsonrpc: str
    result: TradesResult | None = None
    error: Error | None = None


book_decoder = msgspec.json.Decoder(Notification[BookData])
trades_decoder = msgspec.json.Decoder(Notification[list[TradeData]])
ticker_decoder = msgspec.json.Decoder(Notification[TickerData])
quote_decoder = msgspec.json.Decoder(Notification[QuoteData])
control_decoder = msgspec.json.Decoder(Control)
instruments_decoder = msgspec.json.Decoder(InstrumentsBody)
trades_page_decoder = msgspec.json.Decoder(TradesPage)


def request(method: str, params: dict[str, object], request_id: int) -> str:
    """A JSON-RPC request as Deribit takes them on the socket."""
    return msgspec.json.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).decode()


TEST_REQUEST_ID = 9
"""The id of our answers to the server's test_request (the ids only pair answers with requests)."""
TEST_ANSWER = request("public/test", {}, TEST_REQUEST_ID)
"""What Deribit wants after a `test_request` heartbeat, or it closes the connection."""
