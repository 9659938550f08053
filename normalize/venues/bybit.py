"""Bybit v5 public derivatives streams (linear, and inverse where fed): raw frames -> contract records.

Every data frame is `{"topic": "<channel>.[<depth>.]<symbol>", "type": "snapshot"|"delta", "ts": <ms>,
"data": ...}`. The channel is read from the topic with a byte search, then the frame is decoded
once by that channel's Struct:

* `publicTrade.<s>` -> trade, one per element of `data`. `S` is the taker (aggressor) side, so it
  is the trade side as is; `T` the fill time (ts_event), `ts` the send time (ts_exch); the trade
  id `i` is text (a UUID on derivatives). Block trades (`BT` true) are kept: they are executions.
  {"topic":"publicTrade.LTCUSDT","type":"snapshot","ts":1680688979985,"data":[{"T":1680688979983,
   "s":"LTCUSDT","S":"Buy","v":"0.4","p":"94.53","L":"ZeroMinusTick","i":"4c7b6bdc-...","BT":false}]}
* `orderbook.<depth>.<s>` -> book_delta (+ a DERIVED bbo per message). A `snapshot` replaces the
  book; every `delta` must carry u == previous u + 1. A break is a `gap` for that symbol only: the
  book stops publishing and asks for a snapshot (`out.snapshot_requests`), which Bybit sends when
  the topic is subscribed again. A snapshot that arrives unasked and does not continue the
  sequence (u=1 after Bybit restarts its book service) resets the book and is journaled as a gap.
  Bybit publishes the top N levels only and deletes a level leaving them: rows are DEPTH_LIMITED.
  ts_event is `cts` (matching engine time) where present, with `ts` as ts_exch.
  {"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1733011200693,"data":{"s":"XRPUSDT",
   "b":[["1.9531","6198"]],"a":[["1.9535","8415"]],"u":20254870,"seq":130020239261},"cts":1733011200691}
* `tickers.<s>` -> mark_index, funding, open_interest. A snapshot, then deltas carrying only some
  fields: the fields are merged per symbol and a record is emitted, complete, from the merged state
  when one of its own fields changed. Funding interval from `fundingIntervalHour` where sent, else
  the instrument's, else 8 h. ts_event `ts`, exch_seq `cs` (cross sequence).
* `allLiquidation.<s>` -> liquidation, one per element of `data`. Bybit documents `S` as the
  POSITION side ("When you receive a Buy update, this means that a long position has been
  liquidated"): side = S, order_side = the opposite. Price is the bankruptcy price.
  {"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,"data":[{"T":1740480207110,
   "s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}
* `liquidation.<s>` (deprecated; at most one per symbol per second, so SAMPLED): `side` likewise
  the position side.
* Control frames: pongs and subscription acks (`{"success":true,"op":"subscribe",...}`) are read
  and ignored; a refused request (`"success":false`) is a dead letter.
* REST `/v5/market/instruments-info` -> instrument (perpetuals `BASE-QUOTE-PERP`, futures
  `BASE-QUOTE-YYYYMMDD`). Without it ids come from the symbol (BTCUSDT -> BTC-USDT-PERP). A page
  that names a `nextPageCursor` asks for the next page (Emitted.rest_requests).

Units: linear sizes are base units already (contract size 1). Inverse contracts are 1 USD each:
sizes become base units as contracts / price, with the contracts kept in `size_native`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import msgspec

from normalize.book import L2Book, books_report, books_tops
from normalize.decimals import frame_has_inexact_decimal, is_exact, parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.event_ids import number_repeats
from normalize.flags import (
    DEPTH_LIMITED,
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
    Level,
    Liquidation,
    MarkIndex,
    OpenInterest,
    Record,
    Trade,
)
from normalize.rest_urls import with_query

VENUE = "bybit"
MS = 1_000_000
DEFAULT_FUNDING_INTERVAL_S = 8 * 3600
_SIDES = {"Buy": 1, "Sell": -1}
_TOPIC = b'"topic":"'


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


_trades = msgspec.json.Decoder(TradeMessage, strict=False)
_book = msgspec.json.Decoder(BookMessage, strict=False)
_ticker = msgspec.json.Decoder(TickerMessage, strict=False)
_all_liquidation = msgspec.json.Decoder(AllLiquidationMessage, strict=False)
_liquidation = msgspec.json.Decoder(LiquidationMessage, strict=False)
_control = msgspec.json.Decoder(Control, strict=False)
_instruments = msgspec.json.Decoder(InstrumentsBody, strict=False)


# -- instruments ----------------------------------------------------------------------------------
class Spec(NamedTuple):
    """What a frame needs to know about its symbol."""

    instrument: str
    inverse: bool
    contract_size: float
    """Base units per contract (linear), quote units per contract (inverse)."""


_DATED = re.compile(r"^([A-Z0-9]+?)(USDT)?-(\d{1,2}[A-Z]{3}\d\d)$")
_INVERSE_FUTURE = re.compile(r"^[A-Z0-9]+USD[FGHJKMNQUVXZ]\d\d$")


def spec_from_symbol(symbol: str) -> Spec:
    """The spec without metadata, from Bybit's naming: BTCUSDT -> BTC-USDT-PERP, BTCPERP (USDC) ->
    BTC-USDC-PERP, BTC-27DEC24 -> BTC-USDC-20241227, BTCUSD -> BTC-USD-PERP (inverse, 1 USD).
    An inverse future (BTCUSDU23) keeps its symbol as id: its expiry day needs the metadata."""
    if found := _DATED.match(symbol):
        day = dt.datetime.strptime(found[3].title(), "%d%b%y").strftime("%Y%m%d")
        return Spec(f"{found[1]}-{found[2] or 'USDC'}-{day}", False, 1.0)
    for suffix, quote in (("USDT", "USDT"), ("USDC", "USDC"), ("PERP", "USDC")):
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return Spec(f"{symbol[: -len(suffix)]}-{quote}-PERP", False, 1.0)
    if symbol.endswith("USD") and len(symbol) > 3:
        return Spec(f"{symbol[:-3]}-USD-PERP", True, 1.0)
    return Spec(symbol, _INVERSE_FUTURE.match(symbol) is not None, 1.0)


@dataclass
class InstrumentMaster:
    """Symbol -> spec and funding interval, from /v5/market/instruments-info (else the symbol)."""

    specs: dict[str, Spec] = field(default_factory=dict)
    funding_interval_s: dict[str, int] = field(default_factory=dict)

    def spec(self, symbol: str) -> Spec:
        found = self.specs.get(symbol)
        if found is None:
            found = self.specs[symbol] = spec_from_symbol(symbol)
        return found


_KINDS = {"LinearPerpetual": "perpetual", "InversePerpetual": "perpetual",
          "LinearFutures": "future", "InverseFutures": "future"}


def instruments_info(body: InstrumentsBody, ts_recv: int) -> list[Instrument]:
    """Instrument records of a v5 instruments-info page (derivatives only; spot and options skipped)."""
    if body.retCode != 0 or body.result is None:
        raise ValueError(f"retCode {body.retCode}: {body.retMsg}")
    ts_event = body.time * MS if body.time else ts_recv
    flags = FROM_REST | (0 if body.time else TS_EVENT_IMPUTED)
    out = []
    for item in body.result.items:
        kind = _KINDS.get(item.contractType)
        if kind is None:
            continue
        delivery_ms = int(item.deliveryTime or 0)
        expiry = delivery_ms * MS if kind == "future" and delivery_ms else None
        suffix = "PERP" if expiry is None else dt.datetime.fromtimestamp(delivery_ms / 1000, dt.UTC).strftime("%Y%m%d")
        lot = item.lotSizeFilter
        out.append(Instrument(
            VENUE, item.symbol, f"{item.baseCoin}-{item.quoteCoin}-{suffix}", ts_event, ts_recv, None, None, flags,
            kind, item.baseCoin, item.quoteCoin, item.settleCoin or item.quoteCoin,
            item.contractType.startswith("Inverse"), 1.0, float(item.priceFilter.tickSize), float(lot.qtyStep),
            float(lot.minOrderQty) if lot.minOrderQty else None,
            item.fundingInterval * 60 if kind == "perpetual" and item.fundingInterval else None,
            expiry, item.status,
        ))
    return out


# -- books ----------------------------------------------------------------------------------------
@dataclass
class BookSync:
    """Per-symbol book state: in sync (deltas applied while u continues) or waiting for a snapshot
    (deltas dropped: the snapshot Bybit sends on resubscription supersedes them)."""

    symbol: str
    spec: Spec
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    last_u: int = 0
    fresh: bool = False
    """No delta applied since the last snapshot: deltas already inside it (u <= its u) are dropped."""
    gap_pending: bool = False
    breaks: int = 0
    applied: int = 0
    ts_event: int = 0
    """Venue time of the last message applied to the book."""

    @property
    def instrument(self) -> str:
        return self.spec.instrument

    @property
    def seq(self) -> int:
        return self.last_u


def _to_base(levels: list[Level], contract_size: float) -> tuple[list[Level], list[float]]:
    """Inverse levels: (price, contracts) -> (price, base units), and the contracts."""
    return [(price, size * contract_size / price) for price, size in levels], [size for _, size in levels]


# -- tickers --------------------------------------------------------------------------------------
_MARK_FIELDS = ("markPrice", "indexPrice", "predictedDeliveryPrice")
_FUNDING_FIELDS = ("fundingRate", "nextFundingTime", "fundingIntervalHour")
_OI_FIELDS = ("openInterest", "openInterestValue")
_TICKER_FIELDS = _MARK_FIELDS + _FUNDING_FIELDS + _OI_FIELDS


def _exact_flag(*texts: str | None) -> int:
    return 0 if all(t is None or is_exact(t) for t in texts) else INEXACT


class Bybit:
    """The Bybit normalizer: feed it frames in receive order; it keeps one book and one ticker
    state per symbol."""

    venue: Literal["bybit"] = "bybit"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.tickers: dict[str, dict[str, str]] = {}
        """Per symbol: the merged text of the ticker fields the records need."""
        self._channels: dict[bytes, Callable[[bytes, int, Emitted], None]] = {
            b"orderbook": self._on_book, b"publicTrade": self._on_trades, b"tickers": self._on_ticker,
            b"allLiquidation": self._on_all_liquidation, b"liquidation": self._on_liquidation,
        }

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        start = payload.find(_TOPIC)
        if start < 0:
            self._on_control(payload, ts_recv, out)
            return
        start += len(_TOPIC)
        channel = payload[start:payload.find(b'"', start)].partition(b".")[0]
        handler = self._channels.get(channel)
        if handler is None:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown topic {channel.decode(errors='replace')}",
                                               payload))
            return
        try:
            handler(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
        except (ValueError, ArithmeticError) as exc:  # a number that is not one, a zero price to divide by
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad value: {exc}", payload))

    def _on_control(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            reply = _control.decode(payload)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        if reply.success is False:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue refused {reply.op}: {reply.ret_msg}", payload))

    def _on_trades(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hottest path after books. Short decimal text is exact by length (at most 15
        characters cannot hold 16 significant digits); records are built first and appended
        together, so a bad element dead-letters the whole frame and half of it is never emitted."""
        message = _trades.decode(payload)
        ts_exch = message.ts * MS
        items = message.data
        last = items[-1] if items else None
        specs, spec_of = self.master.specs, self.master.spec
        records: list[Record] = []
        append = records.append
        for t in items:
            price, size, inexact = parse_decimals(t.p, t.v)
            flags = (LAST if t is last else 0) | (INEXACT if inexact else 0)
            spec = specs.get(t.s) or spec_of(t.s)
            if spec.inverse:
                append(Trade(VENUE, t.s, spec.instrument, t.T * MS, ts_recv, ts_exch, t.seq, flags, price,
                             size * spec.contract_size / price, _SIDES.get(t.S, 0), t.i, size))
            else:
                append(Trade(VENUE, t.s, spec.instrument, t.T * MS, ts_recv, ts_exch, t.seq, flags, price, size,
                             _SIDES.get(t.S, 0), t.i))
        out.records.extend(records)

    def _liquidation_record(self, symbol: str, ts_event: int, ts_recv: int, ts_exch: int, flags: int,
                            position_side: str, v: str, p: str) -> Liquidation:
        spec = self.master.spec(symbol)
        price, size, inexact = parse_decimals(p, v)
        flags |= INEXACT if inexact else 0
        side = _SIDES.get(position_side, 0)
        if spec.inverse:
            return Liquidation(VENUE, symbol, spec.instrument, ts_event, ts_recv, ts_exch, 0, flags, price,
                               size * spec.contract_size / price, side, -side, size)
        return Liquidation(VENUE, symbol, spec.instrument, ts_event, ts_recv, ts_exch, 0, flags, price, size,
                           side, -side)

    def _on_all_liquidation(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        message = _all_liquidation.decode(payload)
        last = len(message.data) - 1
        out.records.extend(number_repeats([
            self._liquidation_record(x.s, x.T * MS, ts_recv, message.ts * MS, LAST if n == last else 0, x.S, x.v, x.p)
            for n, x in enumerate(message.data)]))

    def _on_liquidation(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        message = _liquidation.decode(payload)
        x = message.data
        out.records.append(self._liquidation_record(x.symbol, x.updatedTime * MS, ts_recv, message.ts * MS,
                                                    LAST | SAMPLED, x.side, x.size, x.price))

    # -- tickers ------------------------------------------------------------------------------
    def _on_ticker(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Merge into a copy of the symbol's state, kept only once its records were built: a frame
        with a bad value is a dead letter and does not poison the state for the frames after it."""
        message = _ticker.decode(payload)
        data = message.data
        state = {} if message.type == "snapshot" else dict(self.tickers.get(data.symbol, ()))
        changed = set()
        for name in _TICKER_FIELDS:
            value = getattr(data, name)
            if value is not None and state.get(name) != value:
                state[name] = value
                changed.add(name)
        records = self._ticker_records(data.symbol, state, changed, message.ts * MS, ts_recv, message.cs)
        self.tickers[data.symbol] = state
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
            out.records.extend(records)

    def _ticker_records(self, symbol: str, state: dict[str, str], changed: set[str], ts: int, ts_recv: int,
                        cs: int | None) -> list[Record]:
        """Complete records from the merged state, for each group with a changed field."""
        spec = self.master.spec(symbol)
        mark, index = state.get("markPrice") or None, state.get("indexPrice") or None
        records: list[Record] = []
        if mark and index and not changed.isdisjoint(_MARK_FIELDS):
            settle = state.get("predictedDeliveryPrice") or None  # "0.00" until 30 min before delivery
            records.append(MarkIndex(VENUE, symbol, spec.instrument, ts, ts_recv, None, cs,
                                     _exact_flag(mark, index, settle), float(mark), float(index),
                                     (float(settle) or None) if settle else None))
        rate, next_time = state.get("fundingRate") or None, state.get("nextFundingTime") or None
        if rate and next_time and not changed.isdisjoint(_FUNDING_FIELDS):
            hours = state.get("fundingIntervalHour")
            interval = (int(hours) * 3600 if hours
                        else self.master.funding_interval_s.get(symbol, DEFAULT_FUNDING_INTERVAL_S))
            records.append(Funding(VENUE, symbol, spec.instrument, ts, ts_recv, None, cs,
                                   _exact_flag(rate, mark, index), float(rate), None, interval, int(next_time) * MS,
                                   float(mark) if mark else None, float(index) if index else None))
        oi, value = state.get("openInterest") or None, state.get("openInterestValue") or None
        if oi and value and not changed.isdisjoint(_OI_FIELDS):
            flags = _exact_flag(oi, value)
            if spec.inverse:  # openInterest counts contracts, openInterestValue is in the coin (base)
                contracts = float(oi)
                records.append(OpenInterest(VENUE, symbol, spec.instrument, ts, ts_recv, None, cs, flags, float(value),
                                            contracts, contracts * spec.contract_size))
            else:
                records.append(OpenInterest(VENUE, symbol, spec.instrument, ts, ts_recv, None, cs, flags, float(oi),
                                            None, float(value)))
        return records

    # -- order books --------------------------------------------------------------------------
    def book_report(self) -> dict[str, tuple[int, int, bool]]:
        return books_report(self.books)

    def book_tops(self, depth: int, ts_recv: int, out: Emitted) -> None:
        out.records.extend(books_tops(self.books, VENUE, depth, ts_recv))

    def _book(self, symbol: str) -> BookSync:
        sync = self.books.get(symbol)
        if sync is None:
            sync = self.books[symbol] = BookSync(symbol, self.master.spec(symbol))
        return sync

    def _status(self, sync: BookSync, event: str, ts_recv: int, detail: str, seq_from: int | None = None,
                seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        return FeedStatus(VENUE, sync.symbol, sync.instrument, ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)

    def _on_book(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        message = _book.decode(payload)
        data = message.data
        sync = self.books.get(data.s) or self._book(data.s)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        if message.type == "delta":
            if sync.synced and data.u == sync.last_u + 1:
                self._emit(sync, message, ts_recv, DEPTH_LIMITED | extra, out)
                sync.applied += 1
            else:
                self._off_sequence(sync, message, ts_recv, out)
        elif message.type == "snapshot":
            self._on_snapshot(sync, message, ts_recv, out, extra)
        else:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown book message type {message.type}", payload))

    def _off_sequence(self, sync: BookSync, message: BookMessage, ts_recv: int, out: Emitted) -> None:
        """A delta that does not continue the book: stale, waiting, or a gap."""
        u = message.data.u
        if sync.synced and sync.fresh and u <= sync.last_u:
            return  # already contained in the snapshot just applied
        out.snapshot_requests.add(sync.symbol)  # again while waiting: the handler retries a lost snapshot
        if sync.synced:
            self._break(sync, ts_recv, f"delta u={u} does not follow u={sync.last_u}", u,
                        (message.cts or message.ts) * MS, out)

    def _break(self, sync: BookSync, ts_recv: int, detail: str, seq_to: int | None, ts_event: int,
               out: Emitted) -> None:
        """The book is no longer known to be right: journal it, publish nothing of it until Bybit's
        next snapshot (which resubscribing makes it send)."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        out.records.append(self._status(sync, "gap", ts_recv, detail, sync.last_u, seq_to, ts_event))
        out.records.append(self._status(sync, "resync_start", ts_recv, "waiting for a snapshot (resubscribe)"))
        out.snapshot_requests.add(sync.symbol)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, ts_recv, reason, None, ts_recv, out)

    def _on_snapshot(self, sync: BookSync, message: BookMessage, ts_recv: int, out: Emitted, extra: int) -> None:
        u = message.data.u
        if sync.synced and not sync.last_u <= u <= sync.last_u + 1:
            # unasked and not continuing: the venue reset the book (u=1: its book service restarted)
            sync.breaks += 1
            sync.gap_pending = True
            why = "the venue restarted its book service" if u == 1 else "the venue resent the book"
            out.records.append(self._status(sync, "gap", ts_recv, f"snapshot u={u} after u={sync.last_u}: {why}",
                                            sync.last_u, u, (message.cts or message.ts) * MS))
            out.records.append(self._status(sync, "resync_start", ts_recv, "book reset by the venue's snapshot"))
        was_gap = sync.gap_pending
        sync.book.clear()
        self._emit(sync, message, ts_recv, SNAPSHOT | DEPTH_LIMITED | extra | (GAP_BEFORE if was_gap else 0), out)
        sync.synced = sync.fresh = True
        sync.gap_pending = False
        out.snapshot_requests.discard(sync.symbol)
        if was_gap:
            out.records.append(self._status(sync, "resync_done", ts_recv, f"book reset from snapshot u={u}"))

    def _emit(self, sync: BookSync, message: BookMessage, ts_recv: int, flags: int, out: Emitted) -> None:
        """Apply a message's levels to the book, emit them packed (the decoder's own lists; base
        units alongside the contracts for inverse books), then the derived BBO."""
        data = message.data
        bids, asks = data.b, data.a
        book = sync.book
        cts = message.cts
        ts_event, ts_exch = (cts * MS, message.ts * MS) if cts else (message.ts * MS, None)
        symbol, instrument = sync.symbol, sync.spec.instrument
        records = out.records
        if sync.spec.inverse:
            contract_size = sync.spec.contract_size
            (bids, bids_native), (asks, asks_native) = _to_base(bids, contract_size), _to_base(asks, contract_size)
            packed_bids, packed_asks = book.apply_levels(bids, asks)
            records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, data.u, flags,
                                      packed_bids, packed_asks, bids_native, asks_native))
        else:
            packed_bids, packed_asks = book.apply_levels(bids, asks)
            records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, data.u, flags,
                                      packed_bids, packed_asks))
        sync.last_u, sync.fresh, sync.ts_event = data.u, False, ts_event
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, data.u, derived, *book.bbo()))

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        path = url.partition("?")[0]
        if not path.endswith("/v5/market/instruments-info"):
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {path}", payload))
            return
        try:
            body = _instruments.decode(payload)
            instruments = instruments_info(body, ts_recv)
        except (msgspec.DecodeError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))
            return
        cursor = body.result.nextPageCursor if body.result else ""
        if cursor:  # pages hold at most 1,000 instruments: ask for the next
            out.rest_requests += (with_query(url, cursor=cursor),)
        for instrument in instruments:
            self.master.specs[instrument.symbol] = Spec(instrument.instrument, instrument.inverse,
                                                        instrument.contract_size)
            if instrument.funding_interval_s:
                self.master.funding_interval_s[instrument.symbol] = instrument.funding_interval_s
        out.records.extend(self.instrument_log.news(instruments))
