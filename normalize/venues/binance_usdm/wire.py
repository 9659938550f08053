"""Binance USD-M's messages as they are on the wire: one msgspec Struct per event and REST body,
field names as Binance sends them, and their decoders."""

from __future__ import annotations

import msgspec

VENUE = "binance-usdm"
MS = 1_000_000


class AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", frozen=True, gc=False):
    """Price and quantity stay text until the exactness check (see `_on_trade`). Trade Structs and
    their wrapper are untracked by the garbage collector (gc=False: they hold only scalars): one
    is made per frame, and tracked allocations are what set off collector passes."""

    E: int  # event (send) time, ms
    s: str  # symbol
    trade_id: int = msgspec.field(name="a")  # aggregate trade id
    p: str  # price
    q: str  # quantity, base units
    T: int  # trade time, ms
    m: bool  # buyer is maker


class RawTrade(msgspec.Struct, tag_field="e", tag="trade", frozen=True, gc=False):
    E: int
    s: str
    trade_id: int = msgspec.field(name="t")
    p: str
    q: str
    T: int
    m: bool
    X: str = "MARKET"  # MARKET, INSURANCE_FUND, ADL, NA


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate", frozen=True):
    E: int
    T: int
    s: str
    U: int  # first update id in this event
    u: int  # final update id in this event
    pu: int  # final update id of the previous event
    b: msgspec.Raw  # levels as the frame has them: parsed and applied in one call by L2Book.apply_json
    a: msgspec.Raw


class BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker", frozen=True):
    u: int
    s: str
    b: float
    B: float
    a: float
    A: float
    T: int
    E: int


class MarkPriceUpdate(msgspec.Struct, tag_field="e", tag="markPriceUpdate", frozen=True):
    E: int
    s: str
    p: float  # mark price
    r: float  # funding rate, fraction per interval
    T: int  # next funding time, ms (0 for delivery contracts)
    i: float | None = None  # index price (absent in the 2019 schema)
    P: float | None = None  # estimated settle price


class ForceOrderDetail(msgspec.Struct, frozen=True):
    s: str
    S: str  # order side
    q: float  # original quantity
    p: float  # order price
    ap: float  # average fill price
    z: float  # filled accumulated quantity
    T: int  # order trade time, ms


class ForceOrder(msgspec.Struct, tag_field="e", tag="forceOrder", frozen=True):
    E: int
    o: ForceOrderDetail


class Kline(msgspec.Struct, tag_field="e", tag="kline", frozen=True):
    """Subscribed by some recorders; ticklake builds its own bars, so these are ignored."""

    s: str


Event = AggTrade | RawTrade | DepthUpdate | BookTicker | MarkPriceUpdate | ForceOrder | Kline


class Combined(msgspec.Struct, frozen=True, gc=False):
    """The combined-stream wrapper; `stream` is not read (the event names its symbol). A bare event
    decodes as one with no `data` (its own fields are skipped) and is decoded again as an event: live
    frames are all combined, and trying them first costs less than testing which kind a frame is."""

    data: Event | None = None


class DepthSnapshot(msgspec.Struct, frozen=True):
    lastUpdateId: int
    bids: msgspec.Raw
    asks: msgspec.Raw
    E: int | None = None
    T: int | None = None


class FundingInfo(msgspec.Struct, frozen=True):
    """One entry of /fapi/v1/fundingInfo (symbols with an adjusted interval, cap or floor)."""

    symbol: str
    fundingIntervalHours: int


class RestAggTrade(msgspec.Struct, frozen=True):
    """One entry of /fapi/v1/aggTrades: the aggTrade event's fields without E."""

    a: int  # aggregate trade id
    p: str  # price
    q: str  # quantity, base units
    T: int  # trade time, ms
    m: bool  # buyer is maker


class OpenInterestBody(msgspec.Struct, frozen=True):
    symbol: str
    openInterest: float
    time: int | None = None


combined_decoder = msgspec.json.Decoder(Combined, strict=False)
bare_event_decoder = msgspec.json.Decoder(Event, strict=False)
snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)
open_interest_decoder = msgspec.json.Decoder(OpenInterestBody, strict=False)
funding_info_decoder = msgspec.json.Decoder(list[FundingInfo])
agg_trades_decoder = msgspec.json.Decoder(list[RestAggTrade])
