"""Bybit v5's messages as they are on the wire: one msgspec Struct per topic and REST body, field
names as Bybit sends them, and their decoders."""

from __future__ import annotations

import msgspec

from normalize.records import Level

VENUE = "bybit"
MS = 1_000_000

TOPIC = b'"topic":"'


# -- wire Structs ---------------------------------------------------------------------------------
class TradeItem(msgspec.Struct, frozen=True):
    """Price and size stay text until the exactness check (see `_on_trades`)."""

    T: int  # fill time, ms
    s: str  # symbol
    S: str  # taker side: Buy, Sell
    v: str  # size: base units (linear), contracts (inverse)
    p: str  # price
    i: str  # trade id
    BT: bool = False  # block trade
    seq: int | None = None  # cross sequence (sent since 2024)


class TradeMessage(msgspec.Struct, frozen=True):
    ts: int  # send time, ms
    data: list[TradeItem]


class BookData(msgspec.Struct, frozen=True):
    s: str  # symbol
    b: list[Level]  # bids: [price, new absolute size]; size 0 deletes
    a: list[Level]  # asks
    u: int  # update id: +1 per message of this topic; 1 after a service restart
    seq: int | None = None  # cross sequence


class BookMessage(msgspec.Struct, frozen=True):
    type: str  # snapshot, delta
    ts: int  # send time, ms
    data: BookData
    cts: int | None = None  # matching engine time, ms


class TickerData(msgspec.Struct, frozen=True):
    """Only what the records need; a delta omits fields that did not change, "" means not
    applicable (funding of a dated future)."""

    symbol: str
    markPrice: str | None = None
    indexPrice: str | None = None
    predictedDeliveryPrice: str | None = None  # futures, 30 min before delivery; else "0.00" or ""
    fundingRate: str | None = None  # fraction per interval
    nextFundingTime: str | None = None  # ms, as text
    fundingIntervalHour: str | None = None  # hours, as text
    openInterest: str | None = None  # base units (linear), contracts (inverse)
    openInterestValue: str | None = None  # quote currency (linear), coin (inverse)


class TickerMessage(msgspec.Struct, frozen=True):
    type: str  # snapshot, delta
    ts: int  # ms
    data: TickerData
    cs: int | None = None  # cross sequence


class AllLiquidationItem(msgspec.Struct, frozen=True):
    T: int  # ms
    s: str  # symbol
    S: str  # liquidated POSITION side: Buy = a long was liquidated
    v: str  # executed size
    p: str  # bankruptcy price


class AllLiquidationMessage(msgspec.Struct, frozen=True):
    ts: int
    data: list[AllLiquidationItem]


class LiquidationData(msgspec.Struct, frozen=True):
    updatedTime: int  # ms
    symbol: str
    side: str  # liquidated position side, as allLiquidation's S
    size: str
    price: str  # bankruptcy price


class LiquidationMessage(msgspec.Struct, frozen=True):
    ts: int
    data: LiquidationData


class Control(msgspec.Struct, frozen=True):
    """Replies to our requests: `{"success":true,"ret_msg":"pong","op":"ping",...}`,
    `{"success":true,"ret_msg":"","op":"subscribe",...}`, `{"op":"pong","args":[...]}`."""

    op: str
    success: bool | None = None
    ret_msg: str = ""


class PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str


class LotSizeFilter(msgspec.Struct, frozen=True):
    qtyStep: str
    minOrderQty: str | None = None


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    baseCoin: str
    quoteCoin: str
    priceFilter: PriceFilter
    lotSizeFilter: LotSizeFilter
    contractType: str = ""  # LinearPerpetual, LinearFutures, InversePerpetual, InverseFutures
    status: str | None = None  # Trading, PreLaunch, Settling, ...
    settleCoin: str = ""
    deliveryTime: str = "0"  # ms, as text; 0 for perpetuals
    fundingInterval: int | None = None  # minutes


class InstrumentsResult(msgspec.Struct, frozen=True):
    items: list[InstrumentInfo] = msgspec.field(name="list")
    category: str = ""
    nextPageCursor: str = ""


class InstrumentsBody(msgspec.Struct, frozen=True):
    retCode: int
    result: InstrumentsResult | None = None
    retMsg: str = ""
    time: int | None = None  # ms


trades_decoder = msgspec.json.Decoder(TradeMessage, strict=False)
book_decoder = msgspec.json.Decoder(BookMessage, strict=False)
ticker_decoder = msgspec.json.Decoder(TickerMessage, strict=False)
all_liquidation_decoder = msgspec.json.Decoder(AllLiquidationMessage, strict=False)
liquidation_decoder = msgspec.json.Decoder(LiquidationMessage, strict=False)
control_decoder = msgspec.json.Decoder(Control, strict=False)
instruments_decoder = msgspec.json.Decoder(InstrumentsBody, strict=False)
