"""The Deribit normalizer: frames in receive order -> contract records (the channels are described in the
package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import msgspec

from normalize.decimals import frame_has_inexact_decimal, is_exact
from normalize.emitted import DeadLetter, Emitted
from normalize.event_ids import SameTimeRepeats, number_repeats
from normalize.flags import (
    DERIVED,
    FROM_REST,
    GAP_BEFORE,
    INEXACT,
    LAST,
    MAYBE_BAD_BOOK,
    SNAPSHOT,
    TRAILING,
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
    OptionSummary,
    Record,
    Trade,
)
from normalize.trade_ids import Backfill, TradeIds
from normalize.venues.books import SymbolBooks
from normalize.venues.deribit.book_sync import BookSync, levels
from normalize.venues.deribit.instruments import FUNDING_INTERVAL_S, InstrumentMaster, Spec
from normalize.venues.deribit.wire import (
    MS,
    PREFIX,
    TEST_ANSWER,
    VENUE,
    BookData,
    Greeks,
    TradeData,
    TradesPage,
    book_decoder,
    control_decoder,
    instruments_decoder,
    quote_decoder,
    ticker_decoder,
    trades_decoder,
    trades_page_decoder,
)

_SIDES = {"buy": 1, "sell": -1}
_NO_GREEKS = Greeks()
TRADES_CHANNEL = "trades"
"""The venue channel whose trade_seq ids are checked (TradeIds, Backfill.channel)."""


def _fraction(percent: float | None) -> float | None:
    """Deribit's implied volatility in percent a year -> a fraction, exactly (120.74 -> 1.2074); 0 (no
    quote on that side) -> None."""
    if not percent:
        return None
    return float(Decimal(repr(percent)).scaleb(-2))


def _base(amount: float | None, price: float | None, spec: Spec) -> float | None:
    """A quote's amount in base units (None for an empty side)."""
    if not amount or not price:
        return None
    return amount / price if spec.inverse else amount


class Deribit(SymbolBooks):
    """The Deribit normalizer: feed it frames in receive order; it keeps one book per instrument."""

    venue: Literal["deribit"] = "deribit"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.trade_ids = TradeIds(TRADES_CHANNEL)
        self.open_interest: dict[str, float] = {}
        """The last open interest published per instrument: a ticker repeats it every 100 ms."""
        self.quote_repeats = SameTimeRepeats()
        self._channels: dict[bytes, Callable[[bytes, int, Emitted], None]] = {
            b"book": self._on_book, b"trades": self._on_trades, b"ticker": self._on_ticker, b"quote": self._on_quote}

    def resume_trades(self, trades: Sequence[Trade], channels: Collection[str]) -> None:
        """trade_seq (the records' exch_seq) counts up by one per instrument."""
        for trade in trades:
            if trade.exch_seq is not None:
                self.trade_ids.resume(trade.symbol, trade.exch_seq)

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if payload.startswith(PREFIX):
            start = len(PREFIX)
            channel = payload[start:payload.find(b".", start)]
            name = ""
        else:
            name = self._on_control(payload, ts_recv, out)
            if not name:
                return
            channel = name.partition(".")[0].encode()
        handler = self._channels.get(channel)
        if handler is None:
            name = name or payload[len(PREFIX):payload.find(b'"', len(PREFIX))].decode(errors="replace")
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported channel {name}", payload))
            return
        try:
            handler(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable {channel.decode()} frame: {exc}",
                                               payload))
        except (ValueError, ArithmeticError) as exc:  # a value the contract cannot hold, a zero price
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {channel.decode()} frame: {exc}", payload))

    def _on_control(self, payload: bytes, ts_recv: int, out: Emitted) -> str:
        """Answers to our requests are read and ignored, errors are dead letters; a `test_request`
        heartbeat is answered with `public/test` on the same connection. Returns the channel of a
        notification that is not written compactly (Deribit's own are), else ""."""
        try:
            message = control_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return ""
        if message.method == "subscription" and message.params is not None and message.params.channel:
            return message.params.channel
        if message.method == "heartbeat":
            if message.params is not None and message.params.type == "test_request":
                out.replies += (TEST_ANSWER,)
        elif message.error is not None:
            reason = f"venue error {message.error.code}: {message.error.message} (request {message.id})"
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, reason, payload))
        elif not message.result:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, "neither a notification nor an answer", payload))
        return ""

    def _spec(self, name: str) -> Spec:
        spec = self.master.spec(name)
        if spec is None:
            raise ValueError(f"{name} is not an instrument ticklake normalizes (a combo, or an unknown name)")
        return spec

    # -- trades ------------------------------------------------------------------------------
    def _on_trades(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hottest path. One trade a frame is the rule: it is checked and appended directly. A trade is
        INEXACT when its price or amount cannot be written in 15 significant digits (the frame's other
        numbers, index and mark prices, are no part of the record)."""
        items = trades_decoder.decode(payload).params.data
        if len(items) != 1:
            self._emit_trades(items, ts_recv, out)
            return
        t = items[0]
        symbol, seq, price, amount = t.instrument_name, t.trade_seq, t.price, t.amount
        spec = self.master.specs.get(symbol) or self._spec(symbol)
        side = _SIDES.get(t.direction)
        last_ids = self.trade_ids.last
        if (side is None or t.liquidation or not (math.isfinite(price) and math.isfinite(amount) and amount >= 0)
                or last_ids.get(symbol, seq - 1) != seq - 1):
            self._emit_trades(items, ts_recv, out)  # an unusual trade: the general path says why
            return
        last_ids[symbol] = seq
        flags = LAST if is_exact(repr(price)) and is_exact(repr(amount)) else LAST | INEXACT
        size, native = (amount / price, amount) if spec.inverse else (amount, None)
        out.records.append(Trade(VENUE, symbol, spec.instrument, t.timestamp * MS, ts_recv, None, seq, flags, price,
                                 size, side, t.trade_id, native, "block" if t.block_trade_id else None))

    def _emit_trades(self, items: list[TradeData], ts_recv: int, out: Emitted, gap: tuple[int, int] | None = None,
                     from_rest: int = 0) -> None:
        """A frame's trades (or a REST page's, FROM_REST, filling `gap`): read whole first, so a bad one
        dead-letters the frame before any id is taken. trade_seq counts up by one per instrument: a jump
        is a `trade_gap` (the next trade GAP_BEFORE, the missing ones asked for over REST), a trade seen
        before is dropped. Liquidation fills become Liquidation records too."""
        checked = []
        specs = self.master.specs
        for t in items:
            spec = specs.get(t.instrument_name) or self._spec(t.instrument_name)
            side = _SIDES.get(t.direction)
            if side is None:
                raise ValueError(f"trade direction {t.direction!r}")
            if not (math.isfinite(t.price) and math.isfinite(t.amount) and t.amount >= 0):
                raise ValueError(f"trade price {t.price} or amount {t.amount}")
            size, native = (t.amount / t.price, t.amount) if spec.inverse else (t.amount, None)
            flags = from_rest | (0 if is_exact(repr(t.price)) and is_exact(repr(t.amount)) else INEXACT)
            checked.append((t, spec, side, size, native, flags))
        ids = self.trade_ids
        last_ids = ids.last
        trades: list[Record] = []
        liquidations: list[Liquidation] = []
        last = len(checked) - 1
        for i, (t, spec, side, size, native, flags) in enumerate(checked):
            extra = LAST if i == last else 0
            symbol, seq = t.instrument_name, t.trade_seq
            if gap is not None:
                if not (gap[0] <= seq <= gap[1] and ids.take(symbol, seq)):
                    continue
            elif last_ids.get(symbol, seq - 1) == seq - 1:
                last_ids[symbol] = seq
            elif (jump := ids.jumped(symbol, seq)) is not None:
                out.records.append(self._status(symbol, spec.instrument, "trade_gap", ts_recv,
                                                f"trade_seq {jump.first_id}..{jump.last_id} missing", jump.first_id,
                                                jump.last_id, t.timestamp * MS))
                out.backfill_requests.append(jump)
                extra |= GAP_BEFORE
            elif not ids.take(symbol, seq):
                continue  # seen before
            ts_event = t.timestamp * MS
            trade_type = "liquidation" if t.liquidation else "block" if t.block_trade_id else None
            trades.append(Trade(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, seq, flags | extra, t.price,
                                size, side, t.trade_id, native, trade_type))
            if t.liquidation:
                # taker liquidated: its order is the aggressor (the position the opposite side); maker
                # liquidated: its order rested on the other side
                for who, order_side in (("T", side), ("M", -side)):
                    if who in t.liquidation:
                        liquidations.append(Liquidation(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None,
                                                        flags, t.price, size, -order_side, order_side, native))
        if trades and not trades[-1].flags & LAST:  # the last trade of the frame was a repeat, dropped
            trades[-1] = msgspec.structs.replace(trades[-1], flags=trades[-1].flags | LAST)
        out.records.extend(trades)
        if liquidations:
            liquidations[-1] = msgspec.structs.replace(liquidations[-1], flags=liquidations[-1].flags | LAST)
            out.records.extend(number_repeats(liquidations))

    # -- ticker and quote --------------------------------------------------------------------
    def _on_ticker(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Mark and index prices every message; funding (perpetuals); open interest when it changed;
        an option summary (options). Combos' tickers are read and ignored."""
        d = ticker_decoder.decode(payload).params.data
        spec = self.master.spec(d.instrument_name)
        if spec is None:
            return
        symbol, instrument, ts = d.instrument_name, spec.instrument, d.timestamp * MS
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        mark, index = d.mark_price, d.index_price
        records: list[Record] = []
        if mark is not None or index is not None:
            settle = d.estimated_delivery_price if spec.kind in ("future", "option") else None
            records.append(MarkIndex(VENUE, symbol, instrument, ts, ts_recv, None, None, extra, mark, index,
                                     settle if isinstance(settle, float) else None))
        if spec.kind == "perpetual" and d.funding_8h is not None:
            # the funding of the 8 h before ts_event: Deribit charges funding continuously (support article
            # "Funding Specifications", read 2026-12-07), so there is no settlement time
            records.append(Funding(VENUE, symbol, instrument, ts, ts_recv, None, None, extra | TRAILING, d.funding_8h,
                                   None, FUNDING_INTERVAL_S, None, mark, index))
        oi = d.open_interest
        if oi is not None and self.open_interest.get(symbol) != oi and (mark or not spec.inverse):
            self.open_interest[symbol] = oi
            if spec.inverse:  # USD: base units at the mark price, the USD kept native and as the value
                records.append(OpenInterest(VENUE, symbol, instrument, ts, ts_recv, None, None, extra,
                                            oi / mark, oi, oi))  # type: ignore[operator]
            else:
                records.append(OpenInterest(VENUE, symbol, instrument, ts, ts_recv, None, None, extra, oi))
        if spec.kind == "option":
            g = d.greeks or _NO_GREEKS
            records.append(OptionSummary(VENUE, symbol, instrument, ts, ts_recv, None, None, extra, mark,
                                         _fraction(d.mark_iv), _fraction(d.bid_iv), _fraction(d.ask_iv),
                                         d.underlying_price, d.underlying_index, g.delta, g.gamma, g.vega, g.theta,
                                         g.rho, d.interest_rate))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
            out.records.extend(records)

    def _on_quote(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The venue's best bid and offer; an empty side (amount 0) is None. Deribit sends no sequence:
        exch_seq numbers quotes of one instrument in one millisecond (SameTimeRepeats)."""
        d = quote_decoder.decode(payload).params.data
        spec = self.master.spec(d.instrument_name)
        if spec is None:
            return
        ts = d.timestamp * MS
        bid_size, ask_size = _base(d.best_bid_amount, d.best_bid_price, spec), _base(d.best_ask_amount,
                                                                                      d.best_ask_price, spec)
        out.records.append(Bbo(VENUE, d.instrument_name, spec.instrument, ts, ts_recv, None,
                               self.quote_repeats.number(d.instrument_name, ts),
                               LAST | (INEXACT if frame_has_inexact_decimal(payload) else 0),
                               d.best_bid_price if bid_size is not None else None, bid_size,
                               d.best_ask_price if ask_size is not None else None, ask_size))

    # -- order books --------------------------------------------------------------------------
    def _on_book(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        data = book_decoder.decode(payload).params.data
        symbol = data.instrument_name
        sync = self.books.get(symbol)
        if sync is None:
            sync = self.books[symbol] = BookSync(symbol, self._spec(symbol))
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        if data.type == "snapshot" or (not data.type and data.prev_change_id is None):
            self._snapshot(sync, data, ts_recv, out, extra)
        elif data.type not in ("change", ""):
            raise ValueError(f"book message type {data.type!r}")
        elif not sync.synced:
            out.snapshot_requests.add(symbol)  # nothing to apply it to until a snapshot comes
        elif data.prev_change_id != sync.change_id:
            self._break(sync, "gap", ts_recv, f"change prev_change_id={data.prev_change_id} does not follow "
                        f"change_id={sync.change_id}", sync.change_id, data.prev_change_id, data.timestamp * MS, out)
        elif self._apply(sync, data, ts_recv, out, extra):
            sync.applied += 1

    def _snapshot(self, sync: BookSync, data: BookData, ts_recv: int, out: Emitted, extra: int) -> None:
        resync = sync.gap_pending
        # a snapshot replacing a live book (a reconnect) may follow lost changes unless it is where the book was
        continues = sync.synced and data.change_id == sync.change_id
        flags = extra | SNAPSHOT | (GAP_BEFORE if resync or (sync.synced and not continues) else 0)
        if not self._apply(sync, data, ts_recv, out, flags):
            return
        sync.synced, sync.gap_pending = True, False
        sync.snapshots += 1
        out.snapshot_requests.discard(sync.symbol)
        if resync:
            out.records.append(self._status(sync.symbol, sync.instrument, "resync_done", ts_recv,
                                            f"book reset from a snapshot, change_id {data.change_id}", None,
                                            data.change_id, data.timestamp * MS))

    def _apply(self, sync: BookSync, data: BookData, ts_recv: int, out: Emitted, flags: int) -> bool:
        """Apply one message (a snapshot replaces the book) and publish it with the derived BBO. Levels that
        do not read (an unknown action, a price that is not finite) leave the book reset and waiting for a
        snapshot, and raise: the frame is a dead letter."""
        inverse = sync.spec.inverse
        book = sync.book
        try:
            bids, bids_native = levels(data.bids, inverse)
            asks, asks_native = levels(data.asks, inverse)
            if flags & SNAPSHOT:
                book.clear()
            packed_bids, packed_asks = book.apply_levels(bids, asks)
        except (ValueError, ArithmeticError) as exc:
            self._break(sync, "gap", ts_recv, f"unreadable levels in change_id {data.change_id}: {exc}",
                        sync.change_id, data.change_id, data.timestamp * MS, out)
            raise
        ts_event = data.timestamp * MS
        sync.ts_event, sync.change_id = ts_event, data.change_id
        symbol, instrument = sync.symbol, sync.instrument
        out.records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, None, data.change_id, flags,
                                      packed_bids, packed_asks, bids_native, asks_native))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        out.records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, None, data.change_id, derived,
                               *book.bbo()))
        return True

    def _break(self, sync: BookSync, event: str, ts_recv: int, detail: str, seq_from: int | None,
               seq_to: int | None, ts_event: int, out: Emitted) -> None:
        """This instrument's book is wrong or unknown: journal it, forget the book, ask for a snapshot (the
        handler resubscribes its book channel; Deribit's first message of a subscription is the snapshot)."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        sync.change_id = None
        sync.book.clear()
        out.records.append(self._status(sync.symbol, sync.instrument, event, ts_recv, detail, seq_from, seq_to,
                                        ts_event))
        out.records.append(self._status(sync.symbol, sync.instrument, "resync_start", ts_recv,
                                        "resubscribing to the book channel"))
        out.snapshot_requests.add(sync.symbol)

    def _status(self, symbol: str, instrument: str, event: str, ts_recv: int, detail: str,
                seq_from: int | None = None, seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        return FeedStatus(VENUE, symbol, instrument, ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, "gap", ts_recv, reason, sync.change_id, None, sync.ts_event, out)

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        parts = urlsplit(url)
        try:
            if parts.path.endswith("/public/get_instruments"):
                out.records.extend(self.instrument_log.news(self.master.load(instruments_decoder.decode(payload),
                                                                             ts_recv)))
            elif parts.path.endswith("/public/get_last_trades_by_instrument"):
                query = parse_qs(parts.query)
                self._on_trades_page(query["instrument_name"][0], int(query["start_seq"][0]),
                                     int(query["count"][0]), trades_page_decoder.decode(payload), ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {parts.path}", payload))
        except (msgspec.DecodeError, KeyError, ValueError, ArithmeticError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))

    def _on_trades_page(self, symbol: str, start_seq: int, count: int, page: TradesPage, ts_recv: int,
                        out: Emitted) -> None:
        """A page of get_last_trades_by_instrument from `start_seq`, asked for a gap: its missing trades
        (FROM_REST), then `backfill_done`, the next page, or `trades_lost` for what the venue did not serve."""
        if page.error is not None or page.result is None:
            raise ValueError(f"error {page.error.code}: {page.error.message}" if page.error else "no result")
        ids = self.trade_ids
        gap = ids.gap_of(symbol, start_seq)
        if gap is None:
            return  # an answer for a gap already settled
        trades = page.result.trades
        self._emit_trades(trades, ts_recv, out, gap, FROM_REST)
        instrument = self._spec(symbol).instrument
        newest = max((t.trade_seq for t in trades), default=start_seq - 1)
        lost = False
        for lo, hi in ids.still_missing(symbol, gap):
            if page.result.has_more and len(trades) >= count and lo > newest:
                out.backfill_requests.append(Backfill(symbol, ids.channel, lo, gap[1]))
                return
            ids.give_up(symbol, lo, hi)
            lost = True
            out.records.append(self._status(symbol, instrument, "trades_lost", ts_recv,
                                            f"trade_seq {lo}..{hi} not served by the venue", lo, hi))
        ids.settle(symbol, gap)
        if not lost:
            out.records.append(self._status(symbol, instrument, "backfill_done", ts_recv,
                                            f"trade_seq {gap[0]}..{gap[1]} fetched over REST", gap[0], gap[1]))
