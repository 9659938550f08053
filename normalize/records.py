"""The tick contract: one record type per kind of market event, the same for every venue.

These Struct classes are the single source of truth for the schema. The Arrow schema
(`normalize.arrow_schema`), and through it the wire codec, the Parquet lake and the
Timescale DDL, are all derived from the annotations below; no column list is written twice.

Conventions every consumer relies on:

* All timestamps are int64 nanoseconds since the Unix epoch, UTC.
  `ts_event` is the venue's matching/transaction time, `ts_exch` the venue's send time where
  it is distinct (else None), `ts_recv` the local receive time of the frame, taken before parsing.
* Prices and sizes are float64. Sizes are in base-asset units with the venue's contract
  multiplier applied; `size_native` keeps the venue's own number (e.g. contracts) when it differs.
* A decimal string from a venue round-trips exactly through float64 (`repr(float(s))` equals
  it up to trailing zeros) whenever it has at most 15 significant digits; otherwise the
  record carries `Flag.INEXACT`.
* Sides are small integers: +1 buy/bid/long, -1 sell/ask/short, 0 unknown.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Annotated, ClassVar

import msgspec
import pyarrow as pa

from normalize.flags import DERIVED, FROM_REST, LAST, SNAPSHOT


class ArrowType:
    """Annotation marker that pins the Arrow type of a field where the Python type is ambiguous."""

    __slots__ = ("arrow_type",)

    def __init__(self, arrow_type: pa.DataType) -> None:
        self.arrow_type = arrow_type

    def __repr__(self) -> str:
        return f"ArrowType({self.arrow_type})"


TsNs = Annotated[int, ArrowType(pa.timestamp("ns", tz="UTC"))]
"""Nanoseconds since the Unix epoch, UTC."""
Int8 = Annotated[int, ArrowType(pa.int8()), msgspec.Meta(ge=-(2**7), lt=2**7)]
Int32 = Annotated[int, ArrowType(pa.int32()), msgspec.Meta(ge=-(2**31), lt=2**31)]


class Record(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The envelope every record carries.

    Fields are positional, in this order, then the type's own fields: hot paths construct
    records positionally (several times faster than keywords). Every producer states ts_exch,
    exch_seq and flags explicitly.

    `flags` is a `normalize.flags.Flag` bit set. `exch_seq` is the venue's sequence or update
    id for the message the record came from (None where the venue has none).
    """

    record_type: ClassVar[str]
    key_columns: ClassVar[tuple[str, ...]]
    """Columns that, with `flags & key_flags`, identify one venue event: two distinct events never
    share a key, and two handlers receiving the same event always do (so nothing local to one
    receiver is in it: not ts_recv, not the connection; where the venue gives an id or a sequence
    it is in the key). Both stores deduplicate on it: a unique index in TimescaleDB, the Parquet
    sink per flush and the day seal. Every key holds ts_event, TimescaleDB's partitioning column.
    Records the handler itself observes (the feed_status journal, book_top samples) are keyed by
    their own time and connection: they are each handler's own events."""
    key_flags: ClassVar[int] = 0
    """Flag bits that are part of the key: a book snapshot row is another event than an update of
    the same level in the same message; a BBO derived from our book another than the venue's."""

    venue: str
    symbol: str
    instrument: str
    ts_event: TsNs
    ts_recv: TsNs
    ts_exch: TsNs | None
    exch_seq: int | None
    flags: Int32


class Trade(Record, frozen=True, array_like=True, gc=False):
    """One execution. `side` is the aggressor (taker) side: +1 buy, -1 sell, 0 unknown.

    `trade_type` says what kind of print it is where it is not an ordinary market trade (one of
    TRADE_TYPES: a block trade reported to the tape, a liquidation's fill, an insurance-fund or
    auto-deleveraging print); None for a market trade. Every print is kept; bars, VWAP and volume
    leave the others out unless asked (pipelines/bars.py)."""

    record_type: ClassVar[str] = "trade"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "trade_id", "ts_event")

    price: float
    size: float
    side: Int8
    trade_id: str
    size_native: float | None = None
    trade_type: str | None = None


class BookDelta(Record, frozen=True, array_like=True, gc=False):
    """One L2 level change (long format).

    `side` is +1 bid, -1 ask; `size` is the level's new absolute size in base units, 0 deletes it.
    Rows from one venue message share ts_event/exch_seq; the last one carries Flag.LAST.
    Snapshot rows carry Flag.SNAPSHOT and replace the whole book.
    """

    record_type: ClassVar[str] = "book_delta"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event", "exch_seq", "side", "price")
    key_flags: ClassVar[int] = SNAPSHOT

    side: Int8
    price: float
    size: float
    size_native: float | None = None


Level = tuple[float, float]
"""(price, size) as a venue message lists it."""

LEVEL_BYTES = 16
"""A packed level: price then size, little-endian float64 each."""
_LEVEL = struct.Struct("<dd")


def pack_levels(levels: Iterable[Level]) -> bytes:
    """(price, size) pairs -> packed levels (what `BookDeltas` holds)."""
    packed = array("d", chain.from_iterable(levels))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack_levels(packed: bytes) -> list[Level]:
    """Packed levels -> (price, size) pairs, for code that reads levels one by one."""
    return list(_LEVEL.iter_unpack(packed))  # type: ignore[arg-type]


class BookDeltas(Record, frozen=True, array_like=True, gc=False):
    """The book_delta rows of one venue message, packed: the common fields once, then the bid and
    ask levels as bytes, 16 a level (`pack_levels`; no Python object per level).

    This is what normalizers emit for depth: building a BookDelta per level costs more than
    decoding and applying the message, and so did a float tuple per level (a third of a Binance
    depth message's time), where `L2Book` writes these bytes in one go. It is the same data as
    `rows()`: bids then asks in the venue's order, `flags` on every row and LAST added to the
    final one. The wire codec carries the bytes as they are and the Arrow conversion reads them as
    columns; `size_native` lists are set only where the venue's unit differs (contracts), aligned
    with the levels.
    """

    record_type: ClassVar[str] = "book_delta"
    key_columns: ClassVar[tuple[str, ...]] = BookDelta.key_columns
    key_flags: ClassVar[int] = BookDelta.key_flags

    bids: bytes
    asks: bytes
    bids_native: list[float] | None = None
    asks_native: list[float] | None = None

    def row_count(self) -> int:
        return (len(self.bids) + len(self.asks)) // LEVEL_BYTES

    def levels(self) -> tuple[list[Level], list[Level]]:
        """(bids, asks) as (price, size) pairs."""
        return unpack_levels(self.bids), unpack_levels(self.asks)

    def row_tuples(self) -> list[tuple[object, ...]]:
        """The rows as tuples in BookDelta's field order (what row writers such as COPY take)."""
        head = (self.venue, self.symbol, self.instrument, self.ts_event, self.ts_recv, self.ts_exch, self.exch_seq,
                self.flags)
        bids, asks = self.levels()
        rows: list[tuple[object, ...]]
        if self.bids_native is None and self.asks_native is None:
            rows = [(*head, 1, price, size, None) for price, size in bids]
            rows += [(*head, -1, price, size, None) for price, size in asks]
        else:
            bids_native: Sequence[float | None] = self.bids_native or [None] * len(bids)
            asks_native: Sequence[float | None] = self.asks_native or [None] * len(asks)
            rows = [(*head, 1, p, q, n) for (p, q), n in zip(bids, bids_native, strict=True)]
            rows += [(*head, -1, p, q, n) for (p, q), n in zip(asks, asks_native, strict=True)]
        if rows:
            last = rows[-1]
            rows[-1] = (*last[:7], self.flags | LAST, *last[8:])
        return rows

    def rows(self) -> list[BookDelta]:
        return [BookDelta(*row) for row in self.row_tuples()]  # type: ignore[arg-type]


def expand(records: list[Record]) -> list[Record]:
    """Records with every BookDeltas replaced by its rows (for code that wants one row per level)."""
    out: list[Record] = []
    for record in records:
        if type(record) is BookDeltas:
            out.extend(record.rows())
        else:
            out.append(record)
    return out


class Bbo(Record, frozen=True, array_like=True, gc=False):
    """Best bid and offer. A side is None when the book side is empty.

    Venue-native BBO and BBO derived from our own book (Flag.DERIVED) share this type.
    """

    record_type: ClassVar[str] = "bbo"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event", "exch_seq")
    key_flags: ClassVar[int] = DERIVED

    bid_price: float | None
    bid_size: float | None
    ask_price: float | None
    ask_size: float | None


class Funding(Record, frozen=True, array_like=True, gc=False):
    """Funding rate state of a perpetual.

    `funding_rate` is a fraction per funding interval (0.0001 = 1 bp), never percent, and is the
    rate that applies at `next_funding_ts`. `predicted_rate` is the venue's forecast of the rate
    after that, where published. `interval_s` is the funding interval in seconds.
    """

    record_type: ClassVar[str] = "funding"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event")
    key_flags: ClassVar[int] = FROM_REST

    funding_rate: float
    predicted_rate: float | None = None
    interval_s: Int32 | None = None
    next_funding_ts: TsNs | None = None
    mark_price: float | None = None
    index_price: float | None = None


class MarkIndex(Record, frozen=True, array_like=True, gc=False):
    """Mark and index price; `estimated_settle_price` where the venue publishes one."""

    record_type: ClassVar[str] = "mark_index"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event")

    mark_price: float | None
    index_price: float | None
    estimated_settle_price: float | None = None


class OpenInterest(Record, frozen=True, array_like=True, gc=False):
    """Open interest in base units; `open_interest_native` in the venue's unit where it differs,
    `open_interest_value` in quote currency where the venue publishes it."""

    record_type: ClassVar[str] = "open_interest"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event")
    key_flags: ClassVar[int] = FROM_REST

    open_interest: float
    open_interest_native: float | None = None
    open_interest_value: float | None = None


class Liquidation(Record, frozen=True, array_like=True, gc=False):
    """A forced liquidation.

    `side` is the side of the liquidated position: +1 long, -1 short. `order_side` is the side of
    the liquidation order as the venue published it (+1 buy, -1 sell): a liquidated long is
    closed by a sell order, so the two are normally opposite. Venues that sample these events
    set Flag.SAMPLED. Venues publish no liquidation id: `exch_seq` numbers the identical
    liquidations (same instrument, time, side, price and size) of one venue message 0, 1, ...,
    so two of them are two records (`normalize.event_ids.number_repeats`).
    """

    record_type: ClassVar[str] = "liquidation"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event", "side", "price", "size",
                                              "exch_seq")

    price: float
    size: float
    side: Int8
    order_side: Int8
    size_native: float | None = None


class Instrument(Record, frozen=True, array_like=True, gc=False):
    """Reference data for one instrument, as of ts_event (the time the metadata was fetched).

    `contract_size` is base units per contract for linear contracts and quote units per contract
    for inverse ones (`inverse` True). `kind` is one of perpetual, future, spot, option; options also
    carry `strike` (in the quote of the instrument id: BTC-USD-20220325-60000-C has strike 60000 USD)
    and `option_type` (call or put), None for every other kind.
    """

    record_type: ClassVar[str] = "instrument"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event")

    kind: str
    base: str
    quote: str
    settle: str
    inverse: bool
    contract_size: float
    tick_size: float
    lot_size: float
    min_size: float | None = None
    funding_interval_s: Int32 | None = None
    expiry_ts: TsNs | None = None
    status: str | None = None
    strike: float | None = None
    option_type: str | None = None


class FeedStatus(Record, frozen=True, array_like=True, gc=False):
    """The gap journal: one row per connection event or data-integrity event.

    `event` is one of FEED_EVENTS. `symbol`/`instrument` are empty for connection-wide events.
    `seq_from`/`seq_to` bound a sequence gap where known; `detail` says why in words.
    """

    record_type: ClassVar[str] = "feed_status"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "connection_id", "ts_recv", "event", "instrument",
                                              "ts_event")

    event: str
    connection_id: str
    detail: str = ""
    seq_from: int | None = None
    seq_to: int | None = None


class BookTop(Record, frozen=True, array_like=True, gc=False):
    """One level of a top-N book snapshot taken from ticklake's own book (long format).

    Taken on demand or every interval (`--top-depth`/`--top-every`), so a query for the book at a
    time reads N rows instead of replaying deltas. `level` counts from 1 (best) per side.
    `ts_event` is the venue time of the last update applied to the book, `ts_recv` when the
    snapshot was taken; `exch_seq` the book's last update id. Rows carry DERIVED, the last one LAST,
    and MAYBE_BAD_BOOK when the book is crossed.
    """

    record_type: ClassVar[str] = "book_top"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_recv", "side", "level", "ts_event")

    side: Int8
    level: Int32
    price: float
    size: float


class OptionSummary(Record, frozen=True, array_like=True, gc=False):
    """What a venue publishes about an option besides its book and trades: the mark price and the
    implied volatilities and greeks it is computed from, and the underlying price they refer to.

    Implied volatilities are fractions a year (0.65 = 65 %), whatever the venue's unit. `underlying` names
    what `underlying_price` is the price of (a future, or the index), as the venue writes it. The greeks
    are the venue's own, in its units (delta per unit of the underlying; vega, theta and rho as the venue
    publishes them). `mark_price` is in the option's price currency (the instrument record's `quote`)."""

    record_type: ClassVar[str] = "option_summary"
    key_columns: ClassVar[tuple[str, ...]] = ("venue", "instrument", "ts_event")

    mark_price: float | None
    mark_iv: float | None
    bid_iv: float | None = None
    ask_iv: float | None = None
    underlying_price: float | None = None
    underlying: str | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None
    interest_rate: float | None = None


TRADE_TYPES: tuple[str, ...] = ("block", "liquidation", "insurance_fund", "adl", "unknown")
"""Kinds of print that are not ordinary market trades (Trade.trade_type); `unknown`: the venue marks
the print as not a market trade without saying what it is."""

FEED_EVENTS: tuple[str, ...] = (
    "connect", "disconnect", "gap", "checksum_failure", "resync_start", "resync_done",
    "stale", "queue_overflow", "trade_gap", "backfill_done", "trades_lost", "silent_after_connect",
    "venue_notice", "normalizer_error", "bus_gap", "repaired",
)

RECORD_CLASSES: dict[str, type[Record]] = {
    cls.record_type: cls
    for cls in (Trade, BookDelta, Bbo, Funding, MarkIndex, OpenInterest, Liquidation, Instrument, FeedStatus,
                BookTop, OptionSummary)
}
"""Record type name -> class. The names are also the lake's top folders and the hypertables.
New types go at the end: the wire codec's type codes follow this order."""

RECORD_TYPES: tuple[str, ...] = tuple(RECORD_CLASSES)
