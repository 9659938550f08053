"""Binance spot's messages as they are on the wire: one msgspec Struct per event and REST body, field
names as Binance sends them, and their decoders. Where the spot and USD-M bodies agree (aggregate
trades over REST, the depth snapshot) the USD-M Structs are used."""

from __future__ import annotations

import msgspec

from normalize.venues.binance_usdm.wire import MS, DepthSnapshot, RestAggTrade

__all__ = ["MS", "VENUE", "DepthSnapshot", "RestAggTrade"]

VENUE = "binance-spot"


class AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", frozen=True, gc=False):
    """Price and quantity stay text until the exactness check (normalize.decimals.parse_decimals)."""

    E: int  # event (send) time, ms
    s: str  # symbol
    trade_id: int = msgspec.field(name="a")  # aggregate trade id
    p: str  # price
    q: str  # quantity, base units
    T: int  # trade time, ms
    m: bool  # buyer is maker


class RawTrade(msgspec.Struct, tag_field="e", tag="trade", frozen=True, gc=False):
    """Spot prints are all market trades: there is no `X` (futures' print type)."""

    E: int  # event (send) time, ms
    s: str  # symbol
    trade_id: int = msgspec.field(name="t")  # trade id
    p: str  # price
    q: str  # quantity, base units
    T: int  # trade time, ms
    m: bool  # buyer is maker


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate", frozen=True):
    """No transaction time `T` and no previous id `pu`, unlike futures."""

    E: int  # event time, ms: the only time given
    s: str  # symbol
    U: int  # first update id in this event
    u: int  # final update id in this event
    b: msgspec.Raw  # bid levels as the frame has them: parsed and applied by L2Book.apply_json
    a: msgspec.Raw  # ask levels


class Kline(msgspec.Struct, tag_field="e", tag="kline", frozen=True):
    """Subscribed by some recorders; ticklake builds its own bars, so these are ignored."""

    s: str  # symbol


Event = AggTrade | RawTrade | DepthUpdate | Kline


class Combined(msgspec.Struct, frozen=True, gc=False):
    """The combined-stream wrapper (see the USD-M one): a bare event decodes with no `data`."""

    data: Event | None = None


class BookTicker(msgspec.Struct, frozen=True):
    """Spot bookTicker has no event type, event time or transaction time: only the book's update id."""

    u: int  # order book update id
    s: str  # symbol
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity


class CombinedBookTicker(msgspec.Struct, frozen=True):
    data: BookTicker


BOOK_TICKER_STREAM = b'@bookTicker"'
"""How a combined bookTicker frame names its stream (within its first bytes)."""

combined_decoder = msgspec.json.Decoder(Combined, strict=False)
bare_event_decoder = msgspec.json.Decoder(Event, strict=False)
book_ticker_decoder = msgspec.json.Decoder(CombinedBookTicker, strict=False)
bare_book_ticker_decoder = msgspec.json.Decoder(BookTicker, strict=False)
snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)
agg_trades_decoder = msgspec.json.Decoder(list[RestAggTrade])
