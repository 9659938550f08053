"""BitMEX's realtime messages as they are on the wire: one msgspec Struct per table's rows and REST body,
field names as BitMEX sends them, and their decoders. Every data frame is `{"table": ..., "action":
partial|insert|update|delete, "data": [rows]}`; numbers are JSON numbers, times ISO 8601 strings (ms)."""

from __future__ import annotations

import calendar
import time
from typing import Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

VENUE = "bitmex"
MS = 1_000_000

PREFIX = b'{"table":"'
"""Every data frame starts so: the table name follows."""

T = TypeVar("T")


_SECONDS: dict[str, int] = {}
"""`2021-07-22T22:36:10` -> its epoch seconds: a feed's times share few seconds, parsed once each."""


def iso_ns(text: str) -> int:
    """`2021-07-22T22:36:10.014Z` -> ns since the epoch (BitMEX times are whole ms)."""
    seconds = _SECONDS.get(text[:19])
    if seconds is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        seconds = _SECONDS[text[:19]] = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    millis = text[20:23]
    if len(text) != 24 or text[19] != "." or text[23] != "Z" or not millis.isdigit():
        raise ValueError(f"not a BitMEX time: {text!r}")
    return seconds * 1_000_000_000 + int(millis) * MS


def interval_s(text: str) -> int:
    """BitMEX writes a duration as a time after 2000-01-01 (`2000-01-01T08:00:00.000Z` is 8 h)."""
    return (iso_ns(text) - 946_684_800_000_000_000) // 1_000_000_000


class Filter(msgspec.Struct, frozen=True):
    symbol: str = ""


class Table(msgspec.Struct, Generic[T], frozen=True):
    table: str
    action: str  # partial, insert, update, delete
    data: list[T]
    filter: Filter | None = None  # partials: what they are the partial of


class BookLevel(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    id: int  # the level's key; before July 2023 it encoded the price, now arbitrary
    side: str  # Buy, Sell
    size: float | None = None  # contracts; absent on delete
    price: float | None = None  # on partial and insert; on update and delete too since 2023
    timestamp: str | None = None  # since 2022-02-14: matching engine time (orderBookL2)


class Quote(msgspec.Struct, frozen=True, gc=False):
    timestamp: str
    symbol: str
    bidSize: float | None = None  # contracts
    bidPrice: float | None = None
    askPrice: float | None = None
    askSize: float | None = None


class TradeRow(msgspec.Struct, frozen=True, gc=False):
    timestamp: str
    symbol: str
    side: str  # taker side: Buy, Sell
    size: float  # contracts
    price: float
    trdMatchID: str
    trdType: str | None = None  # Regular; otherwise not a market trade (absent in 2021)


class InstrumentRow(msgspec.Struct, frozen=True):
    """A row of the instrument table, or of REST /api/v1/instrument: updates carry only what changed
    (UNSET: not in the row; None: null)."""

    symbol: str
    timestamp: str | UnsetType | None = UNSET
    # terms (partials, REST)
    typ: str | UnsetType | None = UNSET  # FFWCSX perpetual, FFCCSX future, IFXXXP spot, O... options, M... indices
    state: str | UnsetType | None = UNSET
    underlying: str | UnsetType | None = UNSET  # XBT
    quoteCurrency: str | UnsetType | None = UNSET  # USD
    settlCurrency: str | UnsetType | None = UNSET  # XBt (satoshi), USDt
    isInverse: bool | UnsetType | None = UNSET
    isQuanto: bool | UnsetType | None = UNSET
    multiplier: int | UnsetType | None = UNSET  # settlement units per contract (negative for inverse)
    underlyingToSettleMultiplier: int | UnsetType | None = UNSET  # inverse contracts
    quoteToSettleMultiplier: int | UnsetType | None = UNSET  # linear and quanto contracts
    lotSize: float | UnsetType | None = UNSET
    tickSize: float | UnsetType | None = UNSET
    expiry: str | UnsetType | None = UNSET
    fundingInterval: str | UnsetType | None = UNSET
    optionStrikePrice: float | UnsetType | None = UNSET
    optionMultiplier: float | UnsetType | None = UNSET
    # state (streamed)
    markPrice: float | UnsetType | None = UNSET
    indicativeSettlePrice: float | UnsetType | None = UNSET  # the index price (mark = index + fair basis)
    fundingRate: float | UnsetType | None = UNSET  # applies at fundingTimestamp
    indicativeFundingRate: float | UnsetType | None = UNSET  # forecast of the one after
    fundingTimestamp: str | UnsetType | None = UNSET
    openInterest: float | UnsetType | None = UNSET  # contracts


class FundingRow(msgspec.Struct, frozen=True):
    """A settled funding: published at the funding time."""

    timestamp: str
    symbol: str
    fundingRate: float
    fundingInterval: str | None = None


class LiquidationRow(msgspec.Struct, frozen=True):
    """An open liquidation order: inserted when placed, updated, deleted when done (no time in the row)."""

    orderID: str
    symbol: str | None = None
    side: str | None = None  # the liquidation order's side
    price: float | None = None
    leavesQty: float | None = None  # contracts


class Control(msgspec.Struct, frozen=True):
    """The welcome (`info`), answers to our requests (`success`, `subscribe`/`unsubscribe`), errors; and the
    table of a data frame written otherwise than BitMEX writes them (not compact)."""

    table: str | None = None
    info: str | None = None
    success: bool | None = None
    subscribe: str | None = None
    unsubscribe: str | None = None
    error: str | None = None
    status: int | None = None


book_decoder = msgspec.json.Decoder(Table[BookLevel])
quote_decoder = msgspec.json.Decoder(Table[Quote])
trade_decoder = msgspec.json.Decoder(Table[TradeRow])
instrument_decoder = msgspec.json.Decoder(Table[InstrumentRow])
funding_decoder = msgspec.json.Decoder(Table[FundingRow])
liquidation_decoder = msgspec.json.Decoder(Table[LiquidationRow])
control_decoder = msgspec.json.Decoder(Control)
instruments_body_decoder = msgspec.json.Decoder(list[InstrumentRow])
