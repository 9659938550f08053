"""The Bybit normalizer: frames in receive order -> contract records (the topics are described in
the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from normalize.decimals import frame_has_inexact_decimal, is_exact, parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.event_ids import number_repeats
from normalize.flags import (
    DEPTH_LIMITED,
    DERIVED,
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
    Liquidation,
    MarkIndex,
    OpenInterest,
    Record,
    Trade,
)
from normalize.rest_urls import with_query
from normalize.venues.books import SymbolBooks
from normalize.venues.bybit.book_sync import BookSync, to_base
from normalize.venues.bybit.instruments import DEFAULT_FUNDING_INTERVAL_S, InstrumentMaster, Spec, instruments_info
from normalize.venues.bybit.wire import (
    MS,
    TOPIC,
    VENUE,
    BookMessage,
    all_liquidation_decoder,
    book_decoder,
    control_decoder,
    instruments_decoder,
    liquidation_decoder,
    ticker_decoder,
    trades_decoder,
)

_SIDES = {"Buy": 1, "Sell": -1}

# -- tickers --------------------------------------------------------------------------------------
_MARK_FIELDS = ("markPrice", "indexPrice", "predictedDeliveryPrice")
_FUNDING_FIELDS = ("fundingRate", "nextFundingTime", "fundingIntervalHour")
_OI_FIELDS = ("openInterest", "openInterestValue")
_TICKER_FIELDS = _MARK_FIELDS + _FUNDING_FIELDS + _OI_FIELDS


def _exact_flag(*texts: str | None) -> int:
    return 0 if all(t is None or is_exact(t) for t in texts) else INEXACT


class Bybit(SymbolBooks):
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
        start = payload.find(TOPIC)
        if start < 0:
            self._on_control(payload, ts_recv, out)
            return
        start += len(TOPIC)
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
            reply = control_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        if reply.success is False:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue refused {reply.op}: {reply.ret_msg}", payload))

    def _on_trades(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hottest path after books. Short decimal text is exact by length (at most 15
        characters cannot hold 16 significant digits); records are built first and appended
        together, so a bad element dead-letters the whole frame and half of it is never emitted."""
        message = trades_decoder.decode(payload)
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
                             size * spec.contract_size / price, _SIDES.get(t.S, 0), t.i, size,
                             "block" if t.BT else None))
            else:
                append(Trade(VENUE, t.s, spec.instrument, t.T * MS, ts_recv, ts_exch, t.seq, flags, price, size,
                             _SIDES.get(t.S, 0), t.i, None, "block" if t.BT else None))
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
        message = all_liquidation_decoder.decode(payload)
        last = len(message.data) - 1
        out.records.extend(number_repeats([
            self._liquidation_record(x.s, x.T * MS, ts_recv, message.ts * MS, LAST if n == last else 0, x.S, x.v, x.p)
            for n, x in enumerate(message.data)]))

    def _on_liquidation(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        message = liquidation_decoder.decode(payload)
        x = message.data
        out.records.append(self._liquidation_record(x.symbol, x.updatedTime * MS, ts_recv, message.ts * MS,
                                                    LAST | SAMPLED, x.side, x.size, x.price))

    # -- tickers ------------------------------------------------------------------------------
    def _on_ticker(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Merge into a copy of the symbol's state, kept only once its records were built: a frame
        with a bad value is a dead letter and does not poison the state for the frames after it."""
        message = ticker_decoder.decode(payload)
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
        message = book_decoder.decode(payload)
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
            (bids, bids_native), (asks, asks_native) = to_base(bids, contract_size), to_base(asks, contract_size)
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
            body = instruments_decoder.decode(payload)
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
