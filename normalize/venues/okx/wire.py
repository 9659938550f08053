"""OKX v5's messages as they are on the wire: one msgspec Struct per channel's data, field names
as OKX sends them, and their decoders."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

VENUE = "okx"
MS = 1_000_000

PREFIX = b'{"arg":{"channel":"'

T = TypeVar("T")


class Arg(msgspec.Struct, frozen=True):
    channel: str  # channel name
    instId: str = ""  # venue symbol (index name for index-tickers); absent for liquidation-orders
    instType: str = ""  # SWAP, FUTURES, ...: liquidation-orders subscribe per type


class DataFrame(msgspec.Struct, Generic[T], frozen=True):
    arg: Arg
    data: list[T]
    action: str = ""  # books: snapshot or update


class Book(msgspec.Struct, frozen=True, gc=False):
    """A books message. Its levels stay raw JSON, `[[px, sz, liquidated orders (deprecated, "0"),
    orders], ...]`: the book (TextBook.apply_json) parses them in C and keeps each level's text,
    which the checksum is computed over."""

    asks: msgspec.Raw
    bids: msgspec.Raw
    ts: int  # book time, ms
    checksum: int = 0  # signed CRC32 of the top 25 levels; 0 when not sent
    seqId: int | None = None  # sequence id of this message
    prevSeqId: int | None = None  # seqId of the previous message; -1 on a snapshot


class BboMessage(msgspec.Struct, frozen=True):
    """A bbo-tbt message: one level a side, as text (`[px, sz, "0", orders]`)."""

    asks: list[tuple[str, ...]]
    bids: list[tuple[str, ...]]
    ts: int  # ms
    seqId: int | None = None


class TradeData(msgspec.Struct, frozen=True):
    tradeId: str  # trade id
    px: str  # price
    sz: str  # size: contracts (swaps, futures) or base units (spot)
    side: str  # taker side: buy or sell
    ts: int  # trade time, ms


class FundingData(msgspec.Struct, frozen=True):
    """Kept as text: fields come and go across vintages and may be empty strings."""

    instId: str
    fundingRate: str = ""  # rate applied at fundingTime, fraction
    nextFundingRate: str = ""  # forecast for the period after ("" when not forecast)
    fundingTime: str = ""  # next settlement, ms
    nextFundingTime: str = ""  # the settlement after that, ms
    prevFundingTime: str = ""  # the previous settlement, ms
    ts: str = ""  # push time, ms (absent in 2021 frames)


class MarkPriceData(msgspec.Struct, frozen=True):
    instId: str
    markPx: float  # mark price
    ts: int  # ms


class IndexTickerData(msgspec.Struct, frozen=True):
    instId: str  # index, e.g. BTC-USDT
    idxPx: float  # index price
    ts: int  # ms


class OpenInterestData(msgspec.Struct, frozen=True):
    instId: str
    oi: float  # contracts
    oiCcy: float  # coins (base units)
    ts: int  # ms
    oiUsd: str = ""  # USD value (newer frames)


class LiquidationDetail(msgspec.Struct, frozen=True):
    bkPx: float  # bankruptcy price
    sz: float  # contracts
    side: str  # liquidation order side: buy or sell
    ts: int  # ms
    posSide: str = ""  # liquidated position: long, short (net mode: net or empty)


class LiquidationData(msgspec.Struct, frozen=True):
    instId: str
    details: list[LiquidationDetail]


class Envelope(msgspec.Struct, frozen=True):
    """Any frame, to find its channel or event when it does not start with the arg."""

    arg: Arg | None = None
    event: str = ""  # subscribe, unsubscribe, error, notice, ...
    code: str = ""
    msg: str = ""


envelope_decoder = msgspec.json.Decoder(Envelope, strict=False)
books_decoder = msgspec.json.Decoder(DataFrame[Book], strict=False)
bbo_decoder = msgspec.json.Decoder(DataFrame[BboMessage], strict=False)
trades_decoder = msgspec.json.Decoder(DataFrame[TradeData], strict=False)
funding_decoder = msgspec.json.Decoder(DataFrame[FundingData], strict=False)
mark_decoder = msgspec.json.Decoder(DataFrame[MarkPriceData], strict=False)
index_decoder = msgspec.json.Decoder(DataFrame[IndexTickerData], strict=False)
open_interest_decoder = msgspec.json.Decoder(DataFrame[OpenInterestData], strict=False)
liquidations_decoder = msgspec.json.Decoder(DataFrame[LiquidationData], strict=False)
