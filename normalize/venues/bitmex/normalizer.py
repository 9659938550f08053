"""The BitMEX normalizer: frames in receive order -> contract records (the tables are described in the
package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from msgspec import UNSET

from normalize.decimals import frame_has_inexact_decimal, is_exact
from normalize.emitted import DeadLetter, Emitted
from normalize.event_ids import SameTimeRepeats, number_repeats
from normalize.flags import (
    DEPTH_LIMITED,
    DERIVED,
    FROM_REST,
    GAP_BEFORE,
    INEXACT,
    LAST,
    MAYBE_BAD_BOOK,
    SNAPSHOT,
    TS_EVENT_IMPUTED,
)
from normalize.instruments import InstrumentLog
from normalize.records import (
    Bbo,
    BookDeltas,
    FeedStatus,
    Funding,
    Level,
    Liquidation,
    MarkIndex,
    OpenInterest,
    Record,
    Trade,
)
from normalize.venues.bitmex.book_sync import BookSync
from normalize.venues.bitmex.instruments import InstrumentMaster, Spec
from normalize.venues.bitmex.wire import (
    PREFIX,
    VENUE,
    BookLevel,
    InstrumentRow,
    book_decoder,
    control_decoder,
    funding_decoder,
    instrument_decoder,
    instruments_body_decoder,
    interval_s,
    iso_ns,
    liquidation_decoder,
    quote_decoder,
    trade_decoder,
)
from normalize.venues.books import SymbolBooks

_SIDES = {"Buy": 1, "Sell": -1}
Sides = tuple[list[Level], list[Level], list[float], list[float]]
"""A book message's bids and asks in base units, then their contracts."""
_BOOK_TABLES = ("orderBookL2", "orderBookL2_25")
_IGNORED = frozenset((
    "orderBook10", "settlement", "insurance", "announcement", "publicNotifications", "connected",
    "tradeBin1m", "tradeBin5m", "tradeBin1h", "tradeBin1d", "quoteBin1m", "quoteBin5m", "quoteBin1h", "quoteBin1d"))
"""Tables read and ignored: orderBook10 is a top-10 copy of orderBookL2; settlement, insurance and the
bins are not events of the contract (ticklake builds its own bars)."""
_MARK_FIELDS = frozenset(("markPrice", "indicativeSettlePrice"))
_FUNDING_FIELDS = frozenset(("fundingRate", "indicativeFundingRate", "fundingTimestamp", "fundingInterval"))
_OI_FIELDS = frozenset(("openInterest",))
_STATE_FIELDS = (*_MARK_FIELDS, *_FUNDING_FIELDS, *_OI_FIELDS)


def trade_type(trd_type: str | None) -> str | None:
    """`Regular` (or no trdType, as before 2022) is a market trade; liquidations and block trades are
    named; anything else (`Referential` index prints, ...) is `unknown`."""
    if trd_type is None or trd_type == "Regular":
        return None
    if "Liquidation" in trd_type:
        return "liquidation"
    if "Block" in trd_type:
        return "block"
    return "unknown"


def _inexact(*values: object) -> int:
    """INEXACT where a value used from a row cannot be written in 15 significant digits (its text had
    more). Trade and instrument frames also carry long figures no record uses (homeNotional, turnover),
    so those frames are not scanned whole."""
    return INEXACT if any(isinstance(v, float) and not is_exact(repr(v)) for v in values) else 0


def _side(text: str) -> int:
    side = _SIDES.get(text)
    if side is None:
        raise ValueError(f"side {text!r}")
    return side


class Bitmex(SymbolBooks):
    """The BitMEX normalizer: feed it frames in receive order; it keeps one book and one instrument state
    per symbol."""

    venue: Literal["bitmex"] = "bitmex"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.states: dict[str, dict[str, Any]] = {}
        """Per symbol: the merged fields of the instrument table the records need."""
        self.quote_repeats = SameTimeRepeats()
        self.book_repeats = SameTimeRepeats()
        self._tables: dict[str, Callable[[bytes, int, Emitted], None]] = {
            **dict.fromkeys(_BOOK_TABLES, self._on_book), "quote": self._on_quote, "trade": self._on_trades,
            "instrument": self._on_instrument, "funding": self._on_funding, "liquidation": self._on_liquidation}

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if payload.startswith(PREFIX):
            start = len(PREFIX)
            table = payload[start:payload.find(b'"', start)].decode(errors="replace")
        else:
            table = self._on_control(payload, ts_recv, out)
            if not table:
                return
        handler = self._tables.get(table)
        if handler is None:
            if table not in _IGNORED:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported table {table}", payload))
            return
        try:
            handler(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable {table} frame: {exc}", payload))
        except (ValueError, ArithmeticError) as exc:  # a value the contract cannot hold, a zero price
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {table} frame: {exc}", payload))

    def _on_control(self, payload: bytes, ts_recv: int, out: Emitted) -> str:
        """The welcome, subscription answers and the `pong` to our text ping are ignored; errors and
        refusals are dead letters. Returns the table of a data frame not written compactly (BitMEX's
        own are), else ""."""
        if payload == b"pong":
            return ""
        try:
            message = control_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return ""
        if message.table:
            return message.table
        if message.error is not None or message.success is False:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue error {message.status}: {message.error}",
                                               payload))
        elif message.info is None and message.success is None:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, "neither a table row nor an answer", payload))
        return ""

    def _spec(self, symbol: str) -> Spec:
        spec = self.master.specs.get(symbol)
        if spec is None:
            raise ValueError(f"no contract size for {symbol}: its instrument terms are not loaded")
        return spec

    def _time(self, text: str | None, ts_recv: int) -> tuple[int, int]:
        """(ts_event, flags) of a row: its time, else the receive time (TS_EVENT_IMPUTED)."""
        return (iso_ns(text), 0) if text is not None else (ts_recv, TS_EVENT_IMPUTED)

    # -- trades, quotes ----------------------------------------------------------------------
    def _on_trades(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Every row a trade (a partial repeats the last one: the same key). Sizes in base units, the
        contracts native; a frame's trades are published whole or not at all."""
        rows = trade_decoder.decode(payload).data
        last = len(rows) - 1
        records: list[Record] = []
        for i, t in enumerate(rows):
            spec = self._spec(t.symbol)
            if not (math.isfinite(t.price) and math.isfinite(t.size) and t.size >= 0):
                raise ValueError(f"trade price {t.price} or size {t.size}")
            records.append(Trade(VENUE, t.symbol, spec.instrument, iso_ns(t.timestamp), ts_recv, None, None,
                                 _inexact(t.price, t.size) | (LAST if i == last else 0), t.price,
                                 spec.to_base(t.size, t.price), _side(t.side), t.trdMatchID, t.size,
                                 trade_type(t.trdType)))
        out.records.extend(records)

    def _on_quote(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The venue's best bid and offer. BitMEX sends no sequence and several quotes of one symbol in a
        millisecond: exch_seq numbers them (SameTimeRepeats). A partial repeats the last quote at
        subscription: its exch_seq is None, so it never takes the key of another quote of its millisecond."""
        message = quote_decoder.decode(payload)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        partial = message.action == "partial"
        rows = message.data
        last = len(rows) - 1
        records: list[Record] = []
        number = self.quote_repeats.number
        symbol, spec = "", None
        for i, q in enumerate(rows):
            if q.symbol != symbol or spec is None:  # a frame's rows are one symbol's, as subscribed
                symbol = q.symbol
                spec = self._spec(symbol)
            ts = iso_ns(q.timestamp)
            bid_price, bid_size, ask_price, ask_size = q.bidPrice, q.bidSize, q.askPrice, q.askSize
            records.append(Bbo(
                VENUE, symbol, spec.instrument, ts, ts_recv, None, None if partial else number(symbol, ts),
                extra | LAST if i == last else extra,
                bid_price if bid_size and bid_price else None,
                spec.to_base(bid_size, bid_price) if bid_size and bid_price else None,
                ask_price if ask_size and ask_price else None,
                spec.to_base(ask_size, ask_price) if ask_size and ask_price else None))
        out.records.extend(records)

    # -- instrument, funding, liquidation ----------------------------------------------------
    def _on_instrument(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Rows carry only what changed: merged per symbol; a record is emitted, complete from the merged
        state, when one of its own fields changed. A partial also gives the contracts' terms, and an update a
        quanto's new quoteToSettleMultiplier."""
        message = instrument_decoder.decode(payload)
        records: list[Record] = []
        for row in message.data:
            self.master.learn(row)
            state = self.states.setdefault(row.symbol, {})
            changed = set()
            for name in _STATE_FIELDS:
                value = getattr(row, name)
                if value is not UNSET and state.get(name) != value:
                    state[name] = value
                    changed.add(name)
            ts, flags = self._time(row.timestamp if isinstance(row.timestamp, str) else None, ts_recv)
            records += self._state_records(row.symbol, state, changed, ts, ts_recv, flags)
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
            out.records.extend(records)

    def _state_records(self, symbol: str, state: dict[str, Any], changed: set[str], ts: int, ts_recv: int,
                       flags: int) -> list[Record]:
        instrument = self.master.instrument(symbol)
        mark, index = state.get("markPrice"), state.get("indicativeSettlePrice")
        flags |= _inexact(*(state.get(name) for name in _STATE_FIELDS))
        records: list[Record] = []
        if (mark is not None or index is not None) and changed & _MARK_FIELDS:
            records.append(MarkIndex(VENUE, symbol, instrument, ts, ts_recv, None, None, flags, mark, index))
        rate, next_time = state.get("fundingRate"), state.get("fundingTimestamp")
        if rate is not None and next_time is not None and changed & _FUNDING_FIELDS:
            interval = state.get("fundingInterval")
            records.append(Funding(VENUE, symbol, instrument, ts, ts_recv, None, None, flags, rate,
                                   state.get("indicativeFundingRate"), interval_s(interval) if interval else None,
                                   iso_ns(next_time), mark, index))
        oi, spec = state.get("openInterest"), self.master.specs.get(symbol)
        if oi is not None and changed & _OI_FIELDS and spec is not None and (mark or not spec.inverse):
            records.append(OpenInterest(VENUE, symbol, instrument, ts, ts_recv, None, None, flags,
                                        spec.to_base(oi, mark or 1.0), oi,  # linear: the price plays no part
                                        oi * spec.contract_size if spec.inverse else None))
        return records

    def _on_funding(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Settled fundings, published at the funding time: the venue's settlement history on the socket,
        flagged FROM_REST as venue history is (a streamed record of the same millisecond keeps its own key);
        ts_event = next_funding_ts = the settlement."""
        rows = funding_decoder.decode(payload).data
        records: list[Record] = []
        for f in rows:
            ts = iso_ns(f.timestamp)
            records.append(Funding(VENUE, f.symbol, self.master.instrument(f.symbol), ts, ts_recv, None, None,
                                   FROM_REST, f.fundingRate, None,
                                   interval_s(f.fundingInterval) if f.fundingInterval else None, ts, None, None))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=FROM_REST | LAST)
            out.records.extend(records)

    def _on_liquidation(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """An inserted row is a liquidation order BitMEX placed: one Liquidation (price and size the order's,
        side the liquidated position, the opposite of the order). Its updates and deletion, and the orders
        open at subscription (the partial), are not new liquidations. Rows carry no time: ts_event is the
        receive time (TS_EVENT_IMPUTED)."""
        message = liquidation_decoder.decode(payload)
        if message.action != "insert":
            return
        records: list[Liquidation] = []
        for row in message.data:
            if row.symbol is None or row.side is None or row.price is None or row.leavesQty is None:
                raise ValueError(f"liquidation {row.orderID} without symbol, side, price or quantity")
            spec = self._spec(row.symbol)
            order_side = _side(row.side)
            records.append(Liquidation(VENUE, row.symbol, spec.instrument, ts_recv, ts_recv, None, None,
                                       TS_EVENT_IMPUTED, row.price, spec.to_base(row.leavesQty, row.price),
                                       -order_side, order_side, row.leavesQty))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=TS_EVENT_IMPUTED | LAST)
            out.records.extend(number_repeats(records))

    # -- order books --------------------------------------------------------------------------
    def _on_book(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        message = book_decoder.decode(payload)
        rows = message.data
        symbol = rows[0].symbol if rows else message.filter.symbol if message.filter else ""
        if not symbol:
            return  # an empty change
        if len(rows) > 1 and any(row.symbol != symbol for row in rows):
            raise ValueError("rows of several symbols in one book message")
        sync = self.books.get(symbol)
        if sync is None:
            sync = self.books[symbol] = BookSync(symbol, self._spec(symbol))
        extra = DEPTH_LIMITED if message.table == "orderBookL2_25" else 0
        if frame_has_inexact_decimal(payload):
            extra |= INEXACT
        action = message.action
        if action == "partial":
            self._partial(sync, rows, ts_recv, extra, out)
        elif action not in ("insert", "update", "delete"):
            raise ValueError(f"book action {action!r}")
        elif not sync.synced:
            out.snapshot_requests.add(symbol)  # nothing to apply it to until a partial comes
        else:
            try:
                self._change(sync, action, rows, ts_recv, extra, out)
            except (ValueError, ArithmeticError) as exc:  # a row that does not read: the book misses it
                self._break(sync, ts_recv, f"unreadable {action}: {exc}", out)
                raise

    def _partial(self, sync: BookSync, rows: list[BookLevel], ts_recv: int, extra: int, out: Emitted) -> None:
        """The book replaced: the levels in base units, the ids remembered (a partial holds thousands of
        levels: one pass, no call per level but the conversion)."""
        to_base = sync.spec.to_base
        levels: dict[int, tuple[int, float]] = {}
        bids: list[Level] = []
        asks: list[Level] = []
        bids_native: list[float] = []
        asks_native: list[float] = []
        for row in rows:
            level_id, price, size = row.id, row.price, row.size
            if price is None or size is None or size < 0 or level_id in levels:
                raise ValueError(f"partial level {level_id} without price or size, negative, or twice")
            if row.side == "Buy":
                levels[level_id] = (1, price)
                bids.append((price, to_base(size, price)))
                bids_native.append(size)
            elif row.side == "Sell":
                levels[level_id] = (-1, price)
                asks.append((price, to_base(size, price)))
                asks_native.append(size)
            else:
                raise ValueError(f"side {row.side!r}")
        resync = sync.gap_pending
        flags = extra | SNAPSHOT | (GAP_BEFORE if resync or sync.synced else 0)
        try:
            self._publish(sync, (bids, asks, bids_native, asks_native), rows, ts_recv, flags, out, clear=True)
        except (ValueError, ArithmeticError) as exc:
            if sync.synced:
                self._break(sync, ts_recv, f"unreadable partial: {exc}", out)
            out.snapshot_requests.add(sync.symbol)
            raise
        sync.levels = levels
        sync.synced, sync.gap_pending = True, False
        sync.snapshots += 1
        out.snapshot_requests.discard(sync.symbol)
        if resync:
            out.records.append(self._status(sync, "resync_done", ts_recv, "book reset from a partial"))

    def _change(self, sync: BookSync, action: str, rows: list[BookLevel], ts_recv: int, extra: int,
                out: Emitted) -> None:
        """Check every row against the ids the book holds before applying any: a row the book cannot
        place is a break (nothing of the message is applied)."""
        held = sync.levels
        to_base = sync.spec.to_base
        overlay: dict[int, tuple[int, float] | None] = {}
        sides: Sides = ([], [], [], [])
        for row in rows:
            side = _SIDES.get(row.side) or _side(row.side)
            known = overlay[row.id] if overlay and row.id in overlay else held.get(row.id)
            if action == "insert":
                if known is not None or row.price is None or row.size is None:
                    self._break(sync, ts_recv, f"insert of level id {row.id}, which the book holds" if known else
                                f"insert of level id {row.id} without price or size", out)
                    return
                overlay[row.id] = (side, row.price)
                price, size = row.price, row.size
            elif known is None:
                self._break(sync, ts_recv, f"{action} of level id {row.id}, which the book does not hold", out)
                return
            elif known[0] != side or (row.price is not None and row.price != known[1]):
                self._break(sync, ts_recv, f"{action} of level id {row.id} at {row.side} {row.price}, held at "
                            f"side {known[0]} price {known[1]}", out)
                return
            elif action == "update":
                if row.size is None:
                    raise ValueError(f"update of level id {row.id} without a size")
                price, size = known[1], row.size
            else:
                overlay[row.id] = None
                price, size = known[1], 0.0
            if size < 0:
                raise ValueError(f"level id {row.id} of size {size}")
            if side > 0:
                sides[0].append((price, to_base(size, price)))
                sides[2].append(size)
            else:
                sides[1].append((price, to_base(size, price)))
                sides[3].append(size)
        self._publish(sync, sides, rows, ts_recv, extra, out)
        for level_id, level in overlay.items():
            if level is None:
                held.pop(level_id, None)
            else:
                held[level_id] = level
        sync.applied += 1

    def _publish(self, sync: BookSync, sides: Sides, rows: list[BookLevel], ts_recv: int, flags: int, out: Emitted,
                 clear: bool = False) -> None:
        """Apply a message's levels (bids, asks in base units, and their contracts), then emit them packed,
        contracts native, and the derived BBO; the book validates every level first (finite, size >= 0) and
        raises with nothing applied. ts_event is the rows' matching-engine time (sent since 2022), else the
        receive time; exch_seq numbers the symbol's book messages of one millisecond (BitMEX sends no
        sequence)."""
        bids, asks, bids_native, asks_native = sides
        stamp = rows[0].timestamp if rows else None
        ts_event, imputed = self._time(stamp, ts_recv)
        seq = None if imputed else self.book_repeats.number(sync.symbol, ts_event)
        flags |= imputed
        book = sync.book
        if clear:
            book.clear()
        packed_bids, packed_asks = book.apply_levels(bids, asks)
        sync.ts_event = ts_event
        symbol, instrument = sync.symbol, sync.instrument
        out.records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, None, seq, flags, packed_bids,
                                      packed_asks, bids_native, asks_native))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | TS_EVENT_IMPUTED))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        out.records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, None, seq, derived, *book.bbo()))

    def _break(self, sync: BookSync, ts_recv: int, detail: str, out: Emitted) -> None:
        """The book missed something: journal it, forget it, and ask for a partial (the handler subscribes
        the symbol's book table again)."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        sync.book.clear()
        sync.levels = {}
        out.records.append(self._status(sync, "gap", ts_recv, detail))
        out.records.append(self._status(sync, "resync_start", ts_recv, "resubscribing to the book table"))
        out.snapshot_requests.add(sync.symbol)

    def _status(self, sync: BookSync, event: str, ts_recv: int, detail: str) -> FeedStatus:
        return FeedStatus(VENUE, sync.symbol, sync.instrument, ts_recv, ts_recv, None, None, TS_EVENT_IMPUTED, event,
                          self.connection_id, detail, None, None)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, ts_recv, reason, out)

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        path = url.partition("?")[0]
        if not path.endswith(("/api/v1/instrument/active", "/api/v1/instrument")):
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {path}", payload))
            return
        try:
            rows: list[InstrumentRow] = instruments_body_decoder.decode(payload)
            out.records.extend(self.instrument_log.news(self.master.load(rows, ts_recv)))
        except (msgspec.DecodeError, ValueError, ArithmeticError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))
