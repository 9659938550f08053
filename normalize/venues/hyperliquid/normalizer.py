"""The Hyperliquid normalizer: frames in receive order -> contract records (the channels are
described in the package docstring)."""

from __future__ import annotations

from typing import Literal

import msgspec

from normalize.decimals import frame_has_inexact_decimal, parse_decimals
from normalize.emitted import DeadLetter, Emitted
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
    MarkIndex,
    OpenInterest,
    Trade,
)
from normalize.venues.books import SymbolBooks
from normalize.venues.hyperliquid.book_sync import BookState, Tape, level_changes
from normalize.venues.hyperliquid.instruments import (
    FUNDING_INTERVAL_S,
    HOUR_NS,
    funding_interval_s,
    instrument_id,
    meta_instruments,
)
from normalize.venues.hyperliquid.wire import (
    CONNECTED_TEXT,
    MS,
    VENUE,
    ActiveAssetCtxMsg,
    BboMsg,
    ErrorMsg,
    FundingEntry,
    L2BookMsg,
    SubscriptionAck,
    SubscriptionResponseMsg,
    TradesMsg,
    WsActiveAssetCtx,
    WsBbo,
    WsBook,
    WsTrade,
    book_body_decoder,
    funding_history_decoder,
    message_decoder,
    request_decoder,
)

TRADE_MEMORY = 1024
"""Trade ids remembered per coin; a subscription replays the last 30, so any seen one is among these."""

_SIDES = {"B": 1, "A": -1}


class Hyperliquid(SymbolBooks):
    """The Hyperliquid normalizer: feed it frames in receive order; it keeps one book per coin."""

    venue: Literal["hyperliquid"] = "hyperliquid"

    def __init__(self, connection_id: str = "offline", trade_memory: int = TRADE_MEMORY) -> None:
        self.connection_id = connection_id
        self.trade_memory = trade_memory
        self.instruments: dict[str, str] = {}
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookState] = {}
        self.tapes: dict[str, Tape] = {}
        self.last_settlement: dict[str, int] = {}
        """Per coin, the latest funding settlement emitted (ns)."""

    def instrument(self, coin: str) -> str:
        found = self.instruments.get(coin)
        if found is None:
            found = self.instruments[coin] = instrument_id(coin)
        return found

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            message = message_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            if payload.strip() != CONNECTED_TEXT:  # the greeting some venue versions send
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(message)
        if kind is TradesMsg:
            self._on_trades(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is L2BookMsg:
            extra = INEXACT if frame_has_inexact_decimal(payload) else 0
            try:
                self._on_book(message.data, ts_recv, out, extra)  # type: ignore[union-attr,arg-type]
            except ValueError as exc:  # a level no book can hold (negative size, nan price)
                # the book may be half-replaced: the next message (a full book) goes out as a snapshot
                self._book(message.data.coin).fresh = True  # type: ignore[union-attr]
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad l2Book frame: {exc}", payload))
        elif kind is BboMsg:
            self._on_bbo(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is ActiveAssetCtxMsg:
            self._on_asset_ctx(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is SubscriptionResponseMsg:
            self._on_subscription(message.data)  # type: ignore[union-attr,arg-type]
        elif kind is ErrorMsg:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue error: {message.data}", payload))  # type: ignore[union-attr]

    def _on_subscription(self, ack: SubscriptionAck) -> None:
        sub = ack.subscription
        if ack.method != "subscribe" or sub.coin is None:
            return
        if sub.type == "l2Book":
            self._book(sub.coin).fresh = True
        elif sub.type == "trades":
            self._tape(sub.coin).replay_pending = True

    def _tape(self, coin: str) -> Tape:
        tape = self.tapes.get(coin)
        if tape is None:
            tape = self.tapes[coin] = Tape(coin, self.instrument(coin))
        return tape

    def _on_trades(self, trades: list[WsTrade], payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hot path. Decimals are checked for exactness by length first (text of at most 15
        characters cannot hold 16 significant digits), as for Binance."""
        if not trades:
            return
        tape = self._tape(trades[0].coin)
        seen = tape.seen
        fresh = [t for t in trades if t.tid not in seen] if seen else trades
        gap = tape.replay_pending and bool(seen) and len(fresh) == len(trades)
        tape.replay_pending = False
        if not fresh:
            return
        records = []
        instrument = tape.instrument
        last = len(fresh) - 1
        try:
            for index, t in enumerate(fresh):
                price, size, inexact = parse_decimals(t.px, t.sz)
                flags = (LAST if index == last else 0) | (INEXACT if inexact else 0)
                records.append(Trade(VENUE, t.coin, instrument, t.time * MS, ts_recv, None, None, flags,
                                     price, size, _SIDES.get(t.side, 0), str(t.tid)))
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad trade decimal: {exc}", payload))
            return
        if gap:
            first = records[0]
            records[0] = msgspec.structs.replace(first, flags=first.flags | GAP_BEFORE)
            out.records.append(FeedStatus(
                VENUE, tape.symbol, instrument, first.ts_event, ts_recv, None, None, 0, "gap", self.connection_id,
                "trades: no trade of the subscription replay was seen before; trades may be missing"))
        out.records.extend(records)
        order, memory = tape.order, self.trade_memory
        for t in fresh:
            if len(order) >= memory:
                seen.discard(order.popleft())
            order.append(t.tid)
            seen.add(t.tid)

    def _on_bbo(self, data: WsBbo, payload: bytes, ts_recv: int, out: Emitted) -> None:
        levels = data.bbo
        bid = levels[0] if levels else None
        ask = levels[1] if len(levels) > 1 else None
        flags = LAST | (INEXACT if frame_has_inexact_decimal(payload) else 0)
        out.records.append(Bbo(VENUE, data.coin, self.instrument(data.coin), data.time * MS, ts_recv, None, None,
                               flags, bid.px if bid else None, bid.sz if bid else None,
                               ask.px if ask else None, ask.sz if ask else None))

    def _on_asset_ctx(self, data: WsActiveAssetCtx, payload: bytes, ts_recv: int, out: Emitted) -> None:
        ctx, coin = data.ctx, data.coin
        instrument = self.instrument(coin)
        flags = TS_EVENT_IMPUTED | (INEXACT if frame_has_inexact_decimal(payload) else 0)
        next_funding = (ts_recv // HOUR_NS + 1) * HOUR_NS
        out.records += (
            MarkIndex(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags, ctx.markPx, ctx.oraclePx),
            Funding(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags, ctx.funding, None,
                    FUNDING_INTERVAL_S, next_funding, ctx.markPx, ctx.oraclePx),
            OpenInterest(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags | LAST, ctx.openInterest),
        )

    # -- order books --------------------------------------------------------------------------
    def _book(self, coin: str) -> BookState:
        state = self.books.get(coin)
        if state is None:
            state = self.books[coin] = BookState(coin, self.instrument(coin))
        return state

    def _on_book(self, data: WsBook, ts_recv: int, out: Emitted, extra: int) -> None:
        """Diff a full snapshot against the coin's book and emit the changes (see module docstring)."""
        state = self._book(data.coin)
        book = state.book
        bid_levels, ask_levels = data.levels
        flags = extra
        if state.fresh:
            # a subscription's first snapshot replaces the book; an empty one cannot be sent as
            # SNAPSHOT rows (there are none), so it is sent as the removal of every level held
            if state.applied:
                flags |= GAP_BEFORE
            if bid_levels or ask_levels:
                flags |= SNAPSHOT
                book.clear()
            state.fresh = False
            if state.resyncing:
                state.resyncing = False
                out.records.append(FeedStatus(VENUE, state.symbol, state.instrument, data.time * MS, ts_recv, None,
                                              None, 0, "resync_done", self.connection_id,
                                              "book replaced by a snapshot"))
        held_bids, held_asks = book.top(len(book))  # best first, the order the venue sent them in
        bid_changes = level_changes(dict(held_bids), bid_levels)
        ask_changes = level_changes(dict(held_asks), ask_levels)
        packed_bids, packed_asks = book.apply_levels(bid_changes, ask_changes)
        ts_event = data.time * MS
        state.ts_event = ts_event
        state.applied += 1
        if not (bid_changes or ask_changes):
            return
        symbol, instrument = state.symbol, state.instrument
        records = out.records
        records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, None, None, flags | DEPTH_LIMITED,
                                  packed_bids, packed_asks))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | FROM_REST))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, None, None, derived, *book.bbo()))

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        """Every l2Book message is the whole book: the next one, asked for by resubscribing, goes
        out as a snapshot replacing it (GAP_BEFORE)."""
        state = self.books.get(symbol)
        if state is None or state.fresh:
            return
        state.fresh = state.resyncing = True
        state.breaks += 1
        for event, detail in (("gap", reason), ("resync_start", "resubscribing to l2Book")):
            out.records.append(FeedStatus(VENUE, symbol, state.instrument, ts_recv, ts_recv, None, None,
                                          TS_EVENT_IMPUTED, event, self.connection_id, detail))
        out.snapshot_requests.add(symbol)

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            request = request_decoder.decode(url.partition("#")[2])
            extra = INEXACT if frame_has_inexact_decimal(payload) else 0
            if request.type == "meta":
                instruments = meta_instruments(payload, ts_recv, FROM_REST | TS_EVENT_IMPUTED | extra)
                for record in instruments:
                    self.instruments[record.symbol] = record.instrument
                out.records.extend(self.instrument_log.news(instruments))
            elif request.type == "fundingHistory":
                self._on_funding_history(funding_history_decoder.decode(payload), ts_recv, out, extra)
            elif request.type == "l2Book":
                self._on_book(book_body_decoder.decode(payload), ts_recv, out, FROM_REST | extra)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown info request {request.type}", payload))
        except (msgspec.DecodeError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))

    def _on_funding_history(self, entries: list[FundingEntry], ts_recv: int, out: Emitted, extra: int) -> None:
        """Settled rates, newer than the last settlement emitted for their coin (module docstring)."""
        records = []
        for entry in entries:
            settled = entry.time * MS
            if settled <= self.last_settlement.get(entry.coin, -1):
                continue
            self.last_settlement[entry.coin] = settled
            records.append(Funding(VENUE, entry.coin, self.instrument(entry.coin), settled, ts_recv, None, None,
                                   FROM_REST | extra, entry.fundingRate, None, funding_interval_s(settled),
                                   settled))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)
