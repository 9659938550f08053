"""The Coinbase normalizer: frames of either protocol in receive order -> contract records (the
channels are described in the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from urllib.parse import parse_qs, urlsplit

import msgspec

from normalize.decimals import parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import DERIVED, FROM_REST, GAP_BEFORE, INEXACT, LAST, MAYBE_BAD_BOOK, SNAPSHOT, TS_EVENT_IMPUTED
from normalize.instruments import InstrumentLog
from normalize.records import Bbo, BookDeltas, FeedStatus, Level, Trade
from normalize.trade_ids import Backfill, TradeIds
from normalize.venues.books import SymbolBooks
from normalize.venues.coinbase.book_sync import BookSync, SameTime
from normalize.venues.coinbase.instruments import InstrumentMaster, Spec
from normalize.venues.coinbase.wire import (
    AT_PREFIX,
    L2_CHANNEL,
    VENUE,
    AtTrade,
    Error,
    L2Event,
    L2Update,
    LastMatch,
    Match,
    Message,
    Snapshot,
    Ticker,
    TickerEvent,
    TradesEvent,
    envelope_decoder,
    exchange_decoder,
    iso_ns,
    l2_decoder,
    ticker_decoder,
    trades_decoder,
)

_BOOK_SIDES = {"buy": True, "bid": True, "sell": False, "offer": False, "ask": False}
"""Book sides as the Exchange (buy/sell) and Advanced Trade (bid/offer) write them: True for a bid."""
_MAKER_SIDES = {"buy": -1, "sell": 1}
"""An Exchange match's (and REST trade's) `side` is the maker's: a buy maker means a selling taker."""
_TAKER_SIDES = {"BUY": 1, "SELL": -1}
"""Advanced Trade's market_trades `side` is the taker's (the aggressor)."""
_IGNORED = frozenset(("heartbeats", "subscriptions", "candles", "status"))
_TRADES_PATH = re.compile(r"/products/([^/]+)/trades$")


class RestTrade(msgspec.Struct, frozen=True):
    """One entry of the Exchange's GET /products/<id>/trades (newest first)."""

    trade_id: int
    price: str
    size: str
    side: str  # the maker's side
    time: str


_rest_trades = msgspec.json.Decoder(list[RestTrade])


class Coinbase(SymbolBooks):
    """The Coinbase normalizer: feed it frames in receive order; it keeps one book per product."""

    venue = VENUE

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.trade_ids = TradeIds("matches")
        """Trade ids count up by one per product (both protocols): gaps are fetched again from the
        Exchange's REST trades, which pages by id."""
        self.sequence: dict[str, int] = {}
        """Advanced Trade: the last sequence_num per connection."""
        self._ticker_times: dict[str, SameTime] = {}

    def resume_trades(self, trades: Sequence[Trade], channels: Collection[str]) -> None:
        """Numeric trade ids count up by one per product."""
        for trade in trades:
            if trade.trade_id.isdigit() and trade.trade_id.isascii():
                self.trade_ids.resume(trade.symbol, int(trade.trade_id))

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if payload.startswith(AT_PREFIX):
            self._on_advanced(payload, ts_recv, out)
            return
        try:
            message = exchange_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            if b'"channel"' in payload and b'"sequence_num"' in payload:  # Advanced Trade, keys reordered
                self._on_advanced(payload, ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(message)
        try:
            if kind is L2Update:
                self._on_l2update(message, ts_recv, out)  # type: ignore[arg-type]
            elif kind is Match or kind is LastMatch:
                self._on_match(message, ts_recv, out)  # type: ignore[arg-type]
            elif kind is Snapshot:
                self._on_snapshot(message, ts_recv, out)  # type: ignore[arg-type]
            elif kind is Error:
                error: Error = message  # type: ignore[assignment]
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue error: {error.message} {error.reason}"
                                                   .rstrip(), payload))
            elif kind is Ticker:
                self._on_ticker(message, ts_recv, out)  # type: ignore[arg-type]
        except (ValueError, ArithmeticError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {kind.__name__} frame: {exc}", payload))

    def _spec(self, product: str) -> Spec:
        spec = self.master.specs.get(product) or self.master.spec(product)
        if spec is None:
            raise ValueError(f"no contract size for {product}: its products body is not loaded")
        return spec

    def _book(self, product: str) -> BookSync:
        sync = self.books.get(product)
        if sync is None:
            spec = self._spec(product)
            sync = self.books[product] = BookSync(product, spec.instrument, spec.contract)
        return sync

    # -- the Exchange feed ------------------------------------------------------------------------
    def _on_snapshot(self, m: Snapshot, ts_recv: int, out: Emitted) -> None:
        sync = self._book(m.product_id)
        ts_event, imputed = (iso_ns(m.time), 0) if m.time else (ts_recv, TS_EVENT_IMPUTED)
        flags = self._snapshot_flags(sync) | imputed
        sync.book.clear()
        if sync.contract is None:
            try:
                bids, asks, inexact = sync.book.apply_json(m.bids, m.asks)
            except ValueError:
                self._unsynced(sync, ts_recv, out)
                raise
            self._emit(sync, bids, asks, None, None, ts_event, None, ts_recv, flags | (INEXACT if inexact else 0), out)
        else:
            levels = [("buy", *level) for level in msgspec.json.decode(m.bids, type=list[tuple[str, str]])]
            levels += [("sell", *level) for level in msgspec.json.decode(m.asks, type=list[tuple[str, str]])]
            self._apply(sync, levels, ts_event, None, ts_recv, flags, out)
        self._synced(sync, ts_recv, out)

    def _on_l2update(self, m: L2Update, ts_recv: int, out: Emitted) -> None:
        sync = self.books.get(m.product_id) or self._book(m.product_id)
        if not sync.synced:
            out.snapshot_requests.add(m.product_id)  # nothing to apply it to until a snapshot comes
            return
        self._apply(sync, m.changes, iso_ns(m.time), None, ts_recv, 0, out)
        sync.applied += 1

    def _on_match(self, m: Match, ts_recv: int, out: Emitted) -> None:
        side = _MAKER_SIDES.get(m.side)
        if side is None:
            raise ValueError(f"match side {m.side!r} is neither buy nor sell")
        spec = self._spec(m.product_id)
        price, size, inexact = parse_decimals(m.price, m.size)
        ts_event = iso_ns(m.time)
        extra = self._continuity(m.product_id, m.trade_id, ts_event, ts_recv, out)
        if extra is not None:
            out.records.append(self._trade(spec, m.product_id, ts_event, ts_recv, None, m.sequence,
                                           LAST | extra | (INEXACT if inexact else 0), price, size, m.size, side,
                                           str(m.trade_id)))

    def _on_ticker(self, t: Ticker, ts_recv: int, out: Emitted) -> None:
        """An Exchange ticker: the best bid and ask as of its match (`time`), keyed by its sequence."""
        spec = self._spec(t.product_id)
        quote, inexact = _quote(spec, t.best_bid, t.best_bid_size, t.best_ask, t.best_ask_size)
        ts_event, imputed = (iso_ns(t.time), 0) if t.time else (ts_recv, TS_EVENT_IMPUTED)
        out.records.append(Bbo(VENUE, t.product_id, spec.instrument, ts_event, ts_recv, None, t.sequence,
                               LAST | imputed | inexact, *quote))

    # -- Advanced Trade ----------------------------------------------------------------------------
    def _on_advanced(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        end = payload.find(b'"', len(AT_PREFIX))
        channel = payload[len(AT_PREFIX):end].decode(errors="replace") if payload.startswith(AT_PREFIX) else ""
        try:
            if not channel:
                channel = envelope_decoder.decode(payload).channel
            if channel == L2_CHANNEL:
                message: Message = l2_decoder.decode(payload)  # type: ignore[type-arg]
            elif channel == "market_trades":
                message = trades_decoder.decode(payload)
            elif channel in ("ticker", "ticker_batch"):
                message = ticker_decoder.decode(payload)
            else:
                envelope = envelope_decoder.decode(payload)
                self._in_sequence(envelope.sequence_num, ts_recv, out)
                if channel not in _IGNORED:
                    out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported channel {channel}", payload))
                return
            ts_exch = iso_ns(message.timestamp)
        except (msgspec.DecodeError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable {channel or 'Advanced Trade'} frame: "
                                               f"{exc}", payload))
            return
        number, last = message.sequence_num, self.sequence.get(self.connection_id)
        if last is not None and number == last + 1:
            self.sequence[self.connection_id] = number
        else:
            self._in_sequence(number, ts_recv, out)
        try:
            if channel == L2_CHANNEL:
                for event in message.events:
                    self._on_l2_event(event, ts_exch, ts_recv, out)
            elif channel == "market_trades":
                self._on_market_trades(message.events, ts_exch, ts_recv, out)
            else:
                self._on_tickers(message.events, ts_exch, ts_recv, out)
        except (ValueError, ArithmeticError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {channel} frame: {exc}", payload))

    def _in_sequence(self, number: int, ts_recv: int, out: Emitted) -> None:
        """Every Advanced Trade message on a connection counts up by one, whatever its channel: a jump
        means messages were lost, and which channel's is unknown, so every book in sync is broken and
        resubscribed (trades find their own gaps by trade id). Numbering restarts at 0 on a new
        connection; a number at or below the last is let through (the venue says such messages can
        be ignored; dropping one would be worse)."""
        last = self.sequence.get(self.connection_id)
        if last is None or number > last or number == 0:
            self.sequence[self.connection_id] = number
        if last is None or number <= last + 1:
            return
        detail = f"sequence_num {number} after {last} on connection {self.connection_id}: {number - last - 1} lost"
        broken = [sync for sync in self.books.values() if sync.synced]
        for sync in broken:
            self._break(sync, "gap", ts_recv, detail, out, last + 1, number - 1)
        if not broken:
            out.records.append(FeedStatus(VENUE, "", "", ts_recv, ts_recv, None, None, TS_EVENT_IMPUTED, "gap",
                                          self.connection_id, detail, last + 1, number - 1))

    def _on_l2_event(self, event: L2Event, ts_exch: int, ts_recv: int, out: Emitted) -> None:
        sync = self.books.get(event.product_id) or self._book(event.product_id)
        ts_event, text = 0, ""
        for level in event.updates:  # the event's time: its latest change (snapshots carry the epoch)
            if level.event_time != text:
                text = level.event_time
                ts = iso_ns(text)
                if ts > ts_event:
                    ts_event = ts
        ts_event = ts_event or ts_exch
        levels = [(u.side, u.price_level, u.new_quantity) for u in event.updates]
        if event.type == "update" and sync.synced:
            self._apply(sync, levels, ts_event, ts_exch, ts_recv, 0, out)
            sync.applied += 1
        elif event.type == "snapshot":
            flags = self._snapshot_flags(sync)
            sync.book.clear()
            self._apply(sync, levels, ts_event, ts_exch, ts_recv, flags, out)
            self._synced(sync, ts_recv, out)
        elif event.type != "update":
            raise ValueError(f"l2_data event type {event.type!r}")
        else:
            out.snapshot_requests.add(event.product_id)

    def _on_market_trades(self, events: list[TradesEvent], ts_exch: int, ts_recv: int, out: Emitted) -> None:
        """A frame's trades are read whole, then published in trade id order (a subscription's snapshot
        lists the recent trades newest first)."""
        trades: list[AtTrade] = events[0].trades if len(events) == 1 else [t for e in events for t in e.trades]
        if len(trades) == 1:  # the rule: a trade a frame, without the sorting and collecting
            self._one_trade(trades[0], ts_exch, ts_recv, out)
            return
        numeric = all(t.trade_id.isdigit() and t.trade_id.isascii() for t in trades)
        if numeric and len(trades) > 1:
            trades = sorted(trades, key=lambda t: int(t.trade_id))
        parsed = []
        for t in trades:
            side = _TAKER_SIDES.get(t.side)
            if side is None:
                raise ValueError(f"trade side {t.side!r} is neither BUY nor SELL")
            parsed.append((t, self._spec(t.product_id), side, *parse_decimals(t.price, t.size), iso_ns(t.time)))
        last = len(parsed) - 1
        records = []
        for i, (t, spec, side, price, size, inexact, ts_event) in enumerate(parsed):
            flags = (LAST if i == last else 0) | (INEXACT if inexact else 0)
            if numeric:
                extra = self._continuity(t.product_id, int(t.trade_id), ts_event, ts_recv, out)
                if extra is None:
                    continue
                flags |= extra
            records.append(self._trade(spec, t.product_id, ts_event, ts_recv, ts_exch, None, flags, price, size,
                                       t.size, side, t.trade_id))
        if records and not records[-1].flags & LAST:  # the frame's last trade was a repeat
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)

    def _one_trade(self, t: AtTrade, ts_exch: int, ts_recv: int, out: Emitted) -> None:
        """The hot path of _on_market_trades, for a frame of one trade."""
        side = _TAKER_SIDES.get(t.side)
        if side is None:
            raise ValueError(f"trade side {t.side!r} is neither BUY nor SELL")
        product, trade_id = t.product_id, t.trade_id
        spec = self.master.specs.get(product) or self._spec(product)
        price, size, inexact = parse_decimals(t.price, t.size)
        ts_event = iso_ns(t.time)
        flags = (LAST | INEXACT) if inexact else LAST
        if trade_id.isdigit() and trade_id.isascii():
            number, last_ids = int(trade_id), self.trade_ids.last
            if last_ids.get(product, number - 1) == number - 1:
                last_ids[product] = number
            elif (extra := self._continuity(product, number, ts_event, ts_recv, out)) is None:
                return
            else:
                flags |= extra
        out.records.append(self._trade(spec, product, ts_event, ts_recv, ts_exch, None, flags, price, size, t.size,
                                       side, trade_id))

    def _on_tickers(self, events: list[TickerEvent], ts_exch: int, ts_recv: int, out: Emitted) -> None:
        """Advanced Trade tickers carry no time of their own: ts_event is the message's send time
        (TS_EVENT_IMPUTED), exch_seq numbers a product's tickers of one timestamp."""
        records = []
        for event in events:
            for t in event.tickers:
                spec = self._spec(t.product_id)
                quote, inexact = _quote(spec, t.best_bid, t.best_bid_quantity, t.best_ask, t.best_ask_quantity)
                seq = self._ticker_times.setdefault(t.product_id, SameTime()).next(ts_exch)
                records.append(Bbo(VENUE, t.product_id, spec.instrument, ts_exch, ts_recv, None, seq,
                                   LAST | TS_EVENT_IMPUTED | inexact, *quote))
        out.records.extend(records)

    # -- books --------------------------------------------------------------------------------
    def _snapshot_flags(self, sync: BookSync) -> int:
        """A snapshot replacing a live book (a new subscription, a new connection) may follow lost
        updates: neither protocol can tell, so it is GAP_BEFORE as after a break."""
        return SNAPSHOT | (GAP_BEFORE if sync.gap_pending or sync.synced else 0)

    def _synced(self, sync: BookSync, ts_recv: int, out: Emitted) -> None:
        resync = sync.gap_pending
        sync.synced, sync.gap_pending = True, False
        sync.snapshots += 1
        out.snapshot_requests.discard(sync.symbol)
        if resync:
            out.records.append(self._status(sync.symbol, "resync_done", ts_recv, "book reset from a level2 snapshot"))

    def _unsynced(self, sync: BookSync, ts_recv: int, out: Emitted) -> None:
        """A snapshot that did not read: the book, cleared, waits for another (a live one is broken)."""
        if sync.synced:
            self._break(sync, "gap", ts_recv, "a level2 snapshot did not read", out)
            return
        sync.gap_pending = True
        out.snapshot_requests.add(sync.symbol)

    def _apply(self, sync: BookSync, levels: Iterable[tuple[str, str, str]], ts_event: int, ts_exch: int | None,
               ts_recv: int, flags: int, out: Emitted) -> None:
        """Parse a message's levels, apply them and publish them; a level that does not read leaves the
        book untouched and broken (it missed the message), and raises for the dead letter."""
        contract = sync.contract
        bids: list[Level] = []
        asks: list[Level] = []
        bids_native: list[float] | None = [] if contract else None
        asks_native: list[float] | None = [] if contract else None
        inexact = False
        try:
            for side, price_text, size_text in levels:
                bid = _BOOK_SIDES.get(side)
                if bid is None:
                    raise ValueError(f"book side {side!r}")
                price, size, one_inexact = parse_decimals(price_text, size_text)
                if price <= 0 or size < 0:
                    raise ValueError(f"level {price_text} {size_text}")
                inexact |= one_inexact
                if contract is not None:
                    (bids_native if bid else asks_native).append(size)  # type: ignore[union-attr]
                    size = contract.to_base(size, price, size_text) if size else 0.0
                (bids if bid else asks).append((price, size))
        except ValueError as exc:
            if flags & SNAPSHOT:
                self._unsynced(sync, ts_recv, out)
            else:
                self._break(sync, "gap", ts_recv, f"a book message dead-lettered ({exc}): the book missed it", out,
                            ts_event=ts_event)
            raise
        packed_bids, packed_asks = sync.book.apply_levels(bids, asks)
        self._emit(sync, packed_bids, packed_asks, bids_native, asks_native, ts_event, ts_exch, ts_recv,
                   flags | (INEXACT if inexact else 0), out)

    def _emit(self, sync: BookSync, bids: bytes, asks: bytes, bids_native: list[float] | None,
              asks_native: list[float] | None, ts_event: int, ts_exch: int | None, ts_recv: int, flags: int,
              out: Emitted) -> None:
        same = sync.same_time
        if ts_event == same.ts:
            same.n += 1
        else:
            same.ts, same.n = ts_event, 0
        seq = sync.seq = same.n
        sync.ts_event = ts_event
        symbol, instrument, book = sync.symbol, sync.instrument, sync.book
        out.records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, seq, flags, bids, asks,
                                      bids_native, asks_native))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | TS_EVENT_IMPUTED))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        out.records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, ts_exch, seq, derived, *book.bbo()))

    def _break(self, sync: BookSync, event: str, ts_recv: int, detail: str, out: Emitted,
               seq_from: int | None = None, seq_to: int | None = None, ts_event: int | None = None) -> None:
        """This product's book is wrong or unknown: journal it, forget the book, ask for a snapshot."""
        sync.breaks += 1
        sync.synced, sync.gap_pending = False, True
        sync.book.clear()
        out.records.append(self._status(sync.symbol, event, ts_recv, detail, seq_from, seq_to, ts_event))
        out.records.append(self._status(sync.symbol, "resync_start", ts_recv, "resubscribing to level2"))
        out.snapshot_requests.add(sync.symbol)

    def _status(self, symbol: str, event: str, ts_recv: int, detail: str, seq_from: int | None = None,
                seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        spec = self.master.specs.get(symbol)
        return FeedStatus(VENUE, symbol, spec.instrument if spec else symbol, ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, "gap", ts_recv, reason, out, ts_event=sync.ts_event)

    # -- trades -------------------------------------------------------------------------------
    def _continuity(self, product: str, trade_id: int, ts_event: int, ts_recv: int, out: Emitted) -> int | None:
        """Trade ids count up by one per product: after a jump the skipped ids are journaled
        (`trade_gap`) and asked for again, and this trade is GAP_BEFORE; a missing id arriving late
        fills its hole; an id seen before (a subscription's last_match or snapshot) is dropped."""
        ids = self.trade_ids
        last = ids.last.get(product)
        if last is None or trade_id == last + 1:
            ids.last[product] = trade_id
            return 0
        gap = ids.jumped(product, trade_id)
        if gap is not None:
            out.records.append(self._status(product, "trade_gap", ts_recv, f"trade ids {gap.first_id}..{gap.last_id} "
                                            "missing", gap.first_id, gap.last_id, ts_event))
            out.backfill_requests.append(gap)
            return GAP_BEFORE
        return 0 if ids.take(product, trade_id) else None

    @staticmethod
    def _trade(spec: Spec, product: str, ts_event: int, ts_recv: int, ts_exch: int | None, seq: int | None,
               flags: int, price: float, size: float, size_text: str, side: int, trade_id: str) -> Trade:
        contract = spec.contract
        if contract is None:
            return Trade(VENUE, product, spec.instrument, ts_event, ts_recv, ts_exch, seq, flags, price, size, side,
                         trade_id)
        return Trade(VENUE, product, spec.instrument, ts_event, ts_recv, ts_exch, seq, flags, price,
                     contract.to_base(size, price, size_text), side, trade_id, size)

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        parts = urlsplit(url)
        try:
            if parts.path.endswith("/products"):
                instruments, unreadable = self.master.load(payload, ts_recv)
                if unreadable:
                    out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"products: {len(unreadable)} unreadable, the "
                                                       f"others kept: {'; '.join(unreadable)[:900]}", payload))
                for record in instruments:  # a book opened before the body takes the listed id
                    if (sync := self.books.get(record.symbol)) is not None:
                        sync.instrument = record.instrument
                out.records.extend(self.instrument_log.news(instruments))
            elif match := _TRADES_PATH.search(parts.path):
                query = parse_qs(parts.query)
                self._on_trades_page(match.group(1), int(query["after"][0]), int(query.get("limit", ["1000"])[0]),
                                     _rest_trades.decode(payload), ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {parts.path}", payload))
        except (msgspec.DecodeError, KeyError, ValueError, ArithmeticError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))

    def _on_trades_page(self, product: str, after: int, limit: int, page: list[RestTrade], ts_recv: int,
                        out: Emitted) -> None:
        """A page of the Exchange's trades before id `after` (newest first), asked for a gap: its missing
        trades are emitted (FROM_REST, no send time, no sequence). Then the gap is done
        (`backfill_done`), or the next, older page is asked for, or what was not served is
        `trades_lost`."""
        ids = self.trade_ids
        gap = ids.gap_of(product, after - 1)
        if gap is None:
            return  # an answer for a gap already settled
        first, last = gap
        spec = self._spec(product)
        trades = []
        for t in sorted(page, key=lambda t: t.trade_id):
            side = _MAKER_SIDES.get(t.side)
            if side is None:
                raise ValueError(f"trade side {t.side!r} is neither buy nor sell")
            trades.append((t, side, *parse_decimals(t.price, t.size), iso_ns(t.time)))
        for t, side, price, size, inexact, ts_event in trades:
            if first <= t.trade_id <= last and ids.take(product, t.trade_id):
                out.records.append(self._trade(spec, product, ts_event, ts_recv, None, None,
                                               LAST | FROM_REST | (INEXACT if inexact else 0), price, size, t.size,
                                               side, str(t.trade_id)))
        oldest = min((t.trade_id for t in page), default=after)
        lost = False
        for lo, hi in ids.still_missing(product, gap):
            if len(page) >= limit and lo < oldest:  # older than this page: the next page
                out.backfill_requests.append(Backfill(product, ids.channel, lo, oldest - 1))
                return
            ids.give_up(product, lo, hi)
            lost = True
            out.records.append(self._status(product, "trades_lost", ts_recv, f"trade ids {lo}..{hi} not served by "
                                            "the venue", lo, hi))
        ids.settle(product, gap)
        if not lost:
            out.records.append(self._status(product, "backfill_done", ts_recv, f"trade ids {first}..{last} fetched "
                                            "over REST", first, last))


def _quote(spec: Spec, bid: str, bid_size: str, ask: str, ask_size: str
           ) -> tuple[tuple[float | None, float | None, float | None, float | None], int]:
    """(bid, bid size, ask, ask size) in base units from a ticker's text (a side or size the message
    lacks is None), and INEXACT if a decimal was."""
    values: list[float | None] = []
    inexact = False
    for text in (bid, bid_size, ask, ask_size):
        if text:
            value, one_inexact = parse_decimals(text)
            values.append(value)
            inexact |= bool(one_inexact)
        else:
            values.append(None)
    contract = spec.contract
    if contract is not None:
        for i, price in ((1, values[0]), (3, values[2])):
            if values[i] is not None and price:
                values[i] = contract.to_base(values[i], price)  # type: ignore[arg-type]
    return (values[0], values[1], values[2], values[3]), INEXACT if inexact else 0
