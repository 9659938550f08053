"""Binance USD-M futures: raw frames -> contract records.

Channels (combined stream `/stream?streams=...`, frames `{"stream": ..., "data": {...}}`):

* `<s>@aggTrade`, `<s>@trade` -> trade. `m` true means the buyer was the maker, so the aggressor
  sold: side -1. `T` is the trade time (ts_event), `E` the send time (ts_exch).
  {"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,
   "l":23961322,"T":1626992741421,"m":false}
* `<s>@depth@100ms|@0ms` -> book_delta (+ a DERIVED bbo per message). Sync rule: after a REST
  snapshot with lastUpdateId L, drop diffs with u < L; the first applied diff has U <= L <= u;
  every later diff has pu == previous u. Any break is a gap for that symbol only.
  {"e":"depthUpdate","E":1626992741037,"T":1626992741024,"s":"SUSHIUSDT","U":600859599090,
   "u":600859600917,"pu":600859598061,"b":[["7.5040","813"]],"a":[["7.6150","1563"]]}
* `<s>@bookTicker` -> bbo (venue-native). ts_event T, ts_exch E, exch_seq u.
* `<s>@markPrice@1s` -> mark_index, and funding for perpetuals (T > 0). r is a fraction per
  interval; T the next funding time. E is the only time given: ts_event.
* `<s>@forceOrder` -> liquidation, flagged SAMPLED (Binance pushes at most one per symbol per
  second). `S` is the liquidation order's side; the liquidated position is the opposite.
* REST `/fapi/v1/depth` -> book snapshot rows (SNAPSHOT, FROM_REST); `/fapi/v1/openInterest`
  -> open_interest (FROM_REST); `/fapi/v1/exchangeInfo` -> instrument; `/fapi/v1/fundingInfo` ->
  the funding interval of the perpetuals it lists (8 h for the rest).
  [{"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000","adjustedFundingRateFloor":"-0.02500000",
    "fundingIntervalHours":8,"disclaimer":false}]

USD-M contracts are linear with a multiplier of 1: sizes are already base units.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import msgspec

from normalize.book import L2Book, books_report, books_tops
from normalize.decimals import frame_has_inexact_decimal, parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import (
    DERIVED,
    FROM_REST,
    GAP_BEFORE,
    INEXACT,
    LAST,
    MAYBE_BAD_BOOK,
    SAMPLED,
    SNAPSHOT,
    TS_EVENT_IMPUTED,
)
from normalize.instruments import InstrumentLog
from normalize.records import (
    Bbo,
    BookDeltas,
    FeedStatus,
    Funding,
    Instrument,
    Liquidation,
    MarkIndex,
    OpenInterest,
    Trade,
)
from normalize.trade_ids import Backfill, TradeIds

VENUE = "binance-usdm"
MS = 1_000_000
DEFAULT_FUNDING_INTERVAL_S = 8 * 3600
MAX_BUFFERED_DIFFS = 10_000
_SIDES = {"BUY": 1, "SELL": -1}
CONTRACT_KINDS = {
    "PERPETUAL": "perpetual", "PERPETUAL_DELIVERING": "perpetual", "TRADIFI_PERPETUAL": "perpetual",
    "CURRENT_MONTH": "future", "NEXT_MONTH": "future", "CURRENT_QUARTER": "future", "NEXT_QUARTER": "future",
}
"""exchangeInfo `contractType` -> instrument kind. TRADIFI_PERPETUAL (gold, silver, equities, since
2026) is a perpetual like any other for market data; checked 2026-12-07 (docs/venues.md)."""
_QUOTES = ("USDT", "BUSD", "USDC", "FDUSD")



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


_combined = msgspec.json.Decoder(Combined, strict=False)
_bare_event = msgspec.json.Decoder(Event, strict=False)
_snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False)
_open_interest = msgspec.json.Decoder(OpenInterestBody, strict=False)
_funding_info = msgspec.json.Decoder(list[FundingInfo])
_agg_trades = msgspec.json.Decoder(list[RestAggTrade])


def instrument_id(symbol: str) -> str:
    """Normalized id without metadata: BTCUSDT -> BTC-USDT-PERP, BTCUSDT_210326 -> BTC-USDT-20210326."""
    pair, _, expiry = symbol.partition("_")
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            return f"{base}-{quote}-{'20' + expiry if expiry else 'PERP'}"
    return symbol


@dataclass
class InstrumentMaster:
    """Symbol -> normalized id (from /fapi/v1/exchangeInfo) and funding interval (from
    /fapi/v1/fundingInfo, which lists only the symbols off the 8 h default)."""

    ids: dict[str, str] = field(default_factory=dict)
    funding_interval_s: dict[str, int] = field(default_factory=dict)

    def instrument(self, symbol: str) -> str:
        found = self.ids.get(symbol)
        if found is None:
            found = self.ids[symbol] = instrument_id(symbol)
        return found


class SymbolFilter(msgspec.Struct, frozen=True):
    """One entry of a symbol's `filters` (only what the instrument record needs)."""

    filterType: str
    tickSize: str | None = None  # PRICE_FILTER
    stepSize: str | None = None  # LOT_SIZE
    minQty: str | None = None  # LOT_SIZE


class SymbolInfo(msgspec.Struct, frozen=True):
    """One entry of exchangeInfo's `symbols`."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    contractType: str = ""
    marginAsset: str | None = None
    status: str | None = None
    deliveryDate: int = 0
    filters: list[SymbolFilter] = []


class ExchangeInfo(msgspec.Struct, frozen=True):
    """Symbols stay raw: one that does not read is reported, and the others are kept."""

    symbols: list[msgspec.Raw]
    serverTime: int | None = None


_exchange_info = msgspec.json.Decoder(ExchangeInfo)
_symbol_info = msgspec.json.Decoder(SymbolInfo)


def _decimal(text: str | None) -> float:
    """A filter's decimal text; nan where the venue gives none."""
    return float("nan") if text is None else parse_decimals(text)[0]


def _instrument(s: SymbolInfo, kind: str, ts_event: int, ts_recv: int, funding_interval_s: Mapping[str, int]
                ) -> Instrument:
    filters = {f.filterType: f for f in s.filters}
    expiry = None
    suffix = "PERP"
    if kind == "future":
        expiry = s.deliveryDate * MS
        suffix = dt.datetime.fromtimestamp(s.deliveryDate / 1000, dt.UTC).strftime("%Y%m%d")
    lot = filters.get("LOT_SIZE")
    return Instrument(
        venue=VENUE, symbol=s.symbol, instrument=f"{s.baseAsset}-{s.quoteAsset}-{suffix}",
        ts_event=ts_event, ts_recv=ts_recv, ts_exch=None, exch_seq=None, flags=FROM_REST, kind=kind,
        base=s.baseAsset, quote=s.quoteAsset, settle=s.marginAsset or s.quoteAsset, inverse=False,
        contract_size=1.0,
        tick_size=_decimal(filters["PRICE_FILTER"].tickSize if "PRICE_FILTER" in filters else None),
        lot_size=_decimal(lot.stepSize if lot else None),
        min_size=_decimal(lot.minQty) if lot and lot.minQty is not None else None,
        funding_interval_s=(funding_interval_s.get(s.symbol, DEFAULT_FUNDING_INTERVAL_S)
                            if kind == "perpetual" else None),
        expiry_ts=expiry, status=s.status,
    )


def exchange_info_instruments(body: bytes, ts_recv: int, funding_interval_s: Mapping[str, int]
                              ) -> tuple[list[Instrument], list[str]]:
    """Instrument records from an exchangeInfo body (perpetuals and dated futures that trade);
    perpetuals fund every `funding_interval_s[symbol]`, else every 8 h. Also why each symbol entry
    that does not read was left out (the body as a whole raises msgspec.DecodeError)."""
    info = _exchange_info.decode(body)
    ts_event = (info.serverTime if info.serverTime is not None else ts_recv // MS) * MS
    out, unreadable = [], []
    for raw in info.symbols:
        try:
            s = _symbol_info.decode(raw)
            kind = CONTRACT_KINDS.get(s.contractType)
            if kind is not None:
                out.append(_instrument(s, kind, ts_event, ts_recv, funding_interval_s))
        except (msgspec.DecodeError, ValueError, OverflowError, OSError) as exc:
            unreadable.append(f"{bytes(raw)[:60]!r}: {exc}")
    return out, unreadable


@dataclass
class BookSync:
    """Per-symbol book state machine for the U/u/pu rules.

    States: waiting for a snapshot (diffs buffered), or synced (diffs applied). A break anywhere
    sends this symbol alone back to waiting; other symbols are untouched.
    """

    symbol: str
    instrument: str
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    last_u: int | None = None
    buffered: deque[tuple[DepthUpdate, int, bytes]] = field(default_factory=deque)
    """(diff, ts_recv, frame) received while waiting for a snapshot."""
    gap_pending: bool = False
    snapshot_id: int | None = None
    breaks: int = 0
    applied: int = 0
    ts_event: int = 0
    """Venue time of the last message applied to the book."""
    seq: int | None = None
    """Update id of the last message applied."""


class BinanceUsdm:
    """The Binance USD-M normalizer: feed it frames in receive order; it keeps one book per symbol."""

    venue: Literal["binance-usdm"] = "binance-usdm"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.agg_trade_ids = TradeIds("aggTrade")
        self.trade_ids = TradeIds("trade")

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            event = _combined.decode(payload).data
            if event is None:
                event = _bare_event.decode(payload)
        except msgspec.DecodeError as exc:
            if payload.lstrip().startswith(b'{"result"'):
                return  # subscription acknowledgement
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(event)
        if kind is AggTrade:
            self._on_trade(event, self.agg_trade_ids, payload, ts_recv, out)  # type: ignore[arg-type]
            return
        if kind is RawTrade:
            self._on_trade(event, self.trade_ids, payload, ts_recv, out)  # type: ignore[arg-type]
            return
        if kind is DepthUpdate:  # its decimals are all levels: apply_json reports INEXACT ones
            self._on_diff(event, ts_recv, payload, out)  # type: ignore[arg-type]
        elif kind is not Kline:
            try:
                self._on_event(event, ts_recv, out, INEXACT if frame_has_inexact_decimal(payload) else 0)
            except ValueError as exc:  # a value the contract cannot hold (an unknown side, say)
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {type(event).__name__} frame: {exc}", payload))

    def _on_trade(self, t: AggTrade | RawTrade, ids: TradeIds, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hottest path: the price and size text is parsed and checked for exactness in one
        compiled call, a fifth of the cost of float() on each and a sixth of scanning the frame.
        Trade ids count up by one per symbol: any other id is a gap (or a repeat) for `_id_jump`."""
        try:
            price, size, inexact = parse_decimals(t.p, t.q)
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad trade decimal: {exc}", payload))
            return
        flags = (LAST | INEXACT) if inexact else LAST
        symbol, trade_id, last_ids = t.s, t.trade_id, ids.last
        if last_ids.get(symbol, trade_id - 1) == trade_id - 1:
            last_ids[symbol] = trade_id
        elif (extra := self._id_jump(ids, t, ts_recv, out)) is None:
            return
        else:
            flags |= extra
        instrument = self.master.ids.get(symbol) or self.master.instrument(symbol)
        out.records.append(Trade(VENUE, symbol, instrument, t.T * MS, ts_recv, t.E * MS, None, flags, price, size,
                                 -1 if t.m else 1, str(trade_id)))

    def _id_jump(self, ids: TradeIds, t: AggTrade | RawTrade, ts_recv: int, out: Emitted) -> int | None:
        """A trade whose id does not follow the last: after a jump, the skipped ids are journaled
        (`trade_gap`) and asked for again, and this trade is flagged GAP_BEFORE; a missing id arriving
        late fills its hole; an id seen before is dropped (None), as the sinks would drop it."""
        gap = ids.jumped(t.s, t.trade_id)
        if gap is not None:
            out.records.append(self._status(t.s, "trade_gap", ts_recv, f"{ids.channel} ids {gap.first_id}.."
                                            f"{gap.last_id} missing", gap.first_id, gap.last_id, t.T * MS))
            out.backfill_requests.append(gap)
            return GAP_BEFORE
        return 0 if ids.take(t.s, t.trade_id) else None

    def _on_event(self, event: Event, ts_recv: int, out: Emitted, extra: int) -> None:
        records = out.records
        kind = type(event)
        if kind is BookTicker:
            t: BookTicker = event  # type: ignore[assignment]
            records.append(Bbo(VENUE, t.s, self.master.instrument(t.s), t.T * MS, ts_recv, t.E * MS, t.u,
                               LAST | extra, t.b, t.B, t.a, t.A))
        elif kind is MarkPriceUpdate:
            m: MarkPriceUpdate = event  # type: ignore[assignment]
            instrument = self.master.instrument(m.s)
            ts = m.E * MS
            records.append(MarkIndex(VENUE, m.s, instrument, ts, ts_recv, None, None, extra | (0 if m.T else LAST),
                                     m.p, m.i, m.P))
            if m.T:
                interval = self.master.funding_interval_s.get(m.s, DEFAULT_FUNDING_INTERVAL_S)
                records.append(Funding(VENUE, m.s, instrument, ts, ts_recv, None, None, LAST | extra, m.r, None,
                                       interval, m.T * MS, m.p, m.i))
        elif kind is ForceOrder:
            order = event.o  # type: ignore[union-attr]
            order_side = _SIDES.get(order.S)
            if order_side is None:
                raise ValueError(f"liquidation order side {order.S!r} is neither BUY nor SELL")
            records.append(Liquidation(
                VENUE, order.s, self.master.instrument(order.s), order.T * MS, ts_recv,
                event.E * MS, 0, LAST | SAMPLED | extra,  # type: ignore[union-attr]
                order.ap or order.p, order.z or order.q, -order_side, order_side,
            ))

    def book_report(self) -> dict[str, tuple[int, int, bool]]:
        return books_report(self.books)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, ts_recv, reason, out)

    def book_tops(self, depth: int, ts_recv: int, out: Emitted) -> None:
        out.records.extend(books_tops(self.books, VENUE, depth, ts_recv))

    # -- order books --------------------------------------------------------------------------
    def _book(self, symbol: str) -> BookSync:
        sync = self.books.get(symbol)
        if sync is None:
            sync = self.books[symbol] = BookSync(symbol, self.master.instrument(symbol))
        return sync

    def _status(self, symbol: str, event: str, ts_recv: int, detail: str,
                seq_from: int | None = None, seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        return FeedStatus(VENUE, symbol, self.master.instrument(symbol), ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)

    def _on_diff(self, diff: DepthUpdate, ts_recv: int, payload: bytes, out: Emitted) -> None:
        sync = self._book(diff.s)
        if not sync.synced:
            self._buffer(sync, (diff, ts_recv, payload), out)
            return
        if sync.last_u is None:  # first diff after a snapshot: U <= lastUpdateId <= u
            snapshot_id = sync.snapshot_id or 0
            if diff.u < snapshot_id:
                return  # already contained in the snapshot
            if diff.U <= snapshot_id:
                self._apply(sync, diff, ts_recv, payload, out)
                return
            expected = snapshot_id
        elif diff.pu == sync.last_u:
            self._apply(sync, diff, ts_recv, payload, out)
            return
        else:
            expected = sync.last_u
        self._break(sync, ts_recv, f"diff U={diff.U} pu={diff.pu} does not follow u={expected}", out,
                    expected, diff.U, diff.T * MS)
        self._buffer(sync, (diff, ts_recv, payload), out)

    def _break(self, sync: BookSync, ts_recv: int, detail: str, out: Emitted, seq_from: int | None = None,
               seq_to: int | None = None, ts_event: int | None = None) -> None:
        """The book is no longer known to be right: record the gap and wait for a snapshot."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        out.records.append(self._status(sync.symbol, "gap", ts_recv, detail, seq_from, seq_to, ts_event))
        out.records.append(self._status(sync.symbol, "resync_start", ts_recv, "waiting for a REST snapshot"))
        out.snapshot_requests.add(sync.symbol)

    def _buffer(self, sync: BookSync, item: tuple[DepthUpdate, int, bytes], out: Emitted) -> None:
        if len(sync.buffered) >= MAX_BUFFERED_DIFFS:
            sync.buffered.popleft()
            sync.gap_pending = True
        sync.buffered.append(item)
        out.snapshot_requests.add(sync.symbol)

    def _apply(self, sync: BookSync, diff: DepthUpdate, ts_recv: int, payload: bytes, out: Emitted) -> None:
        """Apply a diff in sequence; one whose levels do not parse is dead-lettered, and the book,
        having missed it, resyncs."""
        try:
            self._emit_levels(sync, diff.b, diff.a, diff.T * MS, diff.E * MS, ts_recv, diff.u,
                              GAP_BEFORE if sync.gap_pending else 0, out)
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad depth levels: {exc}", payload))
            self._break(sync, ts_recv, f"diff U={diff.U} u={diff.u} dead-lettered: the book missed it", out,
                        sync.last_u, diff.U, diff.T * MS)
            return
        sync.gap_pending = False
        sync.last_u = diff.u
        sync.applied += 1

    def _emit_levels(self, sync: BookSync, bids_json: msgspec.Raw, asks_json: msgspec.Raw, ts_event: int,
                     ts_exch: int | None, ts_recv: int, seq: int, flags: int, out: Emitted) -> None:
        """Parse and apply a message's levels in one call, emit them packed, then the derived BBO.
        Raises ValueError, with the book unchanged, when the levels do not parse."""
        book = sync.book
        bids, asks, inexact = book.apply_json(bids_json, asks_json)
        if inexact:
            flags |= INEXACT
        sync.ts_event, sync.seq = ts_event, seq
        symbol, instrument = sync.symbol, sync.instrument
        records = out.records
        records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, seq, flags, bids, asks))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, seq, derived, *book.bbo()))

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        symbol = query.get("symbol", [""])[0]
        try:
            if parts.path.endswith("/depth"):
                self._on_snapshot(symbol, _snapshot.decode(payload), ts_recv, out)
            elif parts.path.endswith("/openInterest"):
                self._on_open_interest(_open_interest.decode(payload), ts_recv, out)
            elif parts.path.endswith("/exchangeInfo"):
                instruments, unreadable = exchange_info_instruments(payload, ts_recv, self.master.funding_interval_s)
                if unreadable:
                    out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"exchangeInfo: {len(unreadable)} symbols "
                                                       f"unreadable, the others kept: {'; '.join(unreadable)[:900]}",
                                                       payload))
                for instrument in instruments:
                    self.master.ids[instrument.symbol] = instrument.instrument
                out.records.extend(self.instrument_log.news(instruments))
            elif parts.path.endswith("/fundingInfo"):
                self._on_funding_info(_funding_info.decode(payload), ts_recv, out)
            elif parts.path.endswith("/aggTrades"):
                self._on_agg_trades(symbol, int(query["fromId"][0]), int(query.get("limit", ["500"])[0]),
                                    _agg_trades.decode(payload), ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {parts.path}", payload))
        except (msgspec.DecodeError, KeyError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))

    def _on_funding_info(self, entries: list[FundingInfo], ts_recv: int, out: Emitted) -> None:
        """Set every perpetual's funding interval: those listed, else 8 h. Perpetuals already
        published whose interval this changes are published again (the body has no time: ts_event
        is ts_recv)."""
        intervals = {}
        for entry in entries:
            if entry.fundingIntervalHours <= 0:
                raise ValueError(f"funding interval of {entry.fundingIntervalHours} h for {entry.symbol}")
            intervals[entry.symbol] = entry.fundingIntervalHours * 3600
        self.master.funding_interval_s = intervals
        changed = [msgspec.structs.replace(i, ts_event=ts_recv, ts_recv=ts_recv, ts_exch=None,
                                           flags=FROM_REST | TS_EVENT_IMPUTED, funding_interval_s=interval)
                   for i in self.instrument_log.latest.values() if i.kind == "perpetual"
                   and (interval := intervals.get(i.symbol, DEFAULT_FUNDING_INTERVAL_S)) != i.funding_interval_s]
        out.records.extend(self.instrument_log.news(changed))

    def _on_agg_trades(self, symbol: str, from_id: int, limit: int, trades: list[RestAggTrade], ts_recv: int,
                       out: Emitted) -> None:
        """A page of /fapi/v1/aggTrades from `from_id`, asked for a gap: its missing trades are
        emitted (FROM_REST; a REST trade has no send time). Then the gap is done (`backfill_done`),
        or the next page is asked for, or what the venue did not serve is `trades_lost`."""
        ids = self.agg_trade_ids
        gap = ids.gap_of(symbol, from_id)
        if gap is None:
            return  # an answer for a gap already settled
        first, last = gap
        instrument = self.master.instrument(symbol)
        for t in trades:
            if first <= t.a <= last and ids.take(symbol, t.a):
                price, size, inexact = parse_decimals(t.p, t.q)
                out.records.append(Trade(VENUE, symbol, instrument, t.T * MS, ts_recv, None, None,
                                         LAST | FROM_REST | (INEXACT if inexact else 0), price, size,
                                         -1 if t.m else 1, str(t.a)))
        newest = max((t.a for t in trades), default=from_id - 1)
        lost = False
        for lo, hi in ids.still_missing(symbol, gap):
            if len(trades) >= limit and lo > newest:  # beyond a full page: the next page
                out.backfill_requests.append(Backfill(symbol, ids.channel, lo, last))
                return
            ids.give_up(symbol, lo, hi)
            lost = True
            out.records.append(self._status(symbol, "trades_lost", ts_recv,
                                            f"aggTrade ids {lo}..{hi} not served by the venue", lo, hi))
        ids.settle(symbol, gap)
        if not lost:
            out.records.append(self._status(symbol, "backfill_done", ts_recv,
                                            f"aggTrade ids {first}..{last} fetched over REST", first, last))

    def _on_open_interest(self, body: OpenInterestBody, ts_recv: int, out: Emitted) -> None:
        flags = FROM_REST | LAST | (TS_EVENT_IMPUTED if body.time is None else 0)
        ts_event = body.time * MS if body.time is not None else ts_recv
        out.records.append(OpenInterest(VENUE, body.symbol, self.master.instrument(body.symbol), ts_event, ts_recv,
                                        None, None, flags, body.openInterest))

    def _on_snapshot(self, symbol: str, snap: DepthSnapshot, ts_recv: int, out: Emitted) -> None:
        """Reset the book from a REST snapshot, then replay the buffered diffs that follow it."""
        if not symbol:
            raise ValueError("depth snapshot URL has no symbol parameter")
        sync = self._book(symbol)
        last_id = snap.lastUpdateId
        if sync.synced and sync.last_u is not None and last_id <= sync.last_u:
            return  # an unneeded snapshot older than the live book: nothing to learn from it
        while sync.buffered and sync.buffered[0][0].u < last_id:
            sync.buffered.popleft()
        if sync.buffered and sync.buffered[0][0].U > last_id:
            out.records.append(self._status(
                symbol, "resync_start", ts_recv,
                f"snapshot {last_id} older than first buffered diff U={sync.buffered[0][0].U}; need a newer one"))
            out.snapshot_requests.add(symbol)
            return
        was_gap = sync.gap_pending or sync.snapshot_id is not None
        sync.book.clear()
        ts_event = snap.T * MS if snap.T else ts_recv
        flags = SNAPSHOT | FROM_REST | (GAP_BEFORE if was_gap else 0) | (0 if snap.T else TS_EVENT_IMPUTED)
        try:
            self._emit_levels(sync, snap.bids, snap.asks, ts_event, snap.E * MS if snap.E else None, ts_recv,
                              last_id, flags, out)
        except ValueError:  # dead-lettered by on_rest; the book, cleared, waits for another snapshot
            if sync.synced:
                self._break(sync, ts_recv, f"snapshot {last_id} does not parse", out)
            out.snapshot_requests.add(symbol)
            raise
        sync.gap_pending = False
        sync.synced = True
        sync.snapshot_id = last_id
        sync.last_u = None
        out.snapshot_requests.discard(symbol)
        if was_gap:
            out.records.append(self._status(symbol, "resync_done", ts_recv, f"book reset from snapshot {last_id}"))
        pending = list(sync.buffered)
        sync.buffered.clear()
        for diff, diff_ts_recv, payload in pending:
            self._on_diff(diff, diff_ts_recv, payload, out)
