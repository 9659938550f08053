"""The Binance USD-M normalizer: frames in receive order -> contract records (the channels are
described in the package docstring)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import parse_qs, urlsplit

import msgspec

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
from normalize.venues.binance_usdm.book_sync import MAX_BUFFERED_DIFFS, BookSync
from normalize.venues.binance_usdm.instruments import (
    DEFAULT_FUNDING_INTERVAL_S,
    InstrumentMaster,
    exchange_info_instruments,
)
from normalize.venues.binance_usdm.wire import (
    MS,
    VENUE,
    AggTrade,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Event,
    ForceOrder,
    FundingInfo,
    Kline,
    MarkPriceUpdate,
    OpenInterestBody,
    RawTrade,
    RestAggTrade,
    agg_trades_decoder,
    bare_event_decoder,
    combined_decoder,
    funding_info_decoder,
    open_interest_decoder,
    snapshot_decoder,
)
from normalize.venues.books import SymbolBooks

_SIDES = {"BUY": 1, "SELL": -1}
_PRINT_TYPES: dict[str, str | None] = {"MARKET": None, "INSURANCE_FUND": "insurance_fund", "ADL": "adl"}
"""A raw trade's `X` -> Trade.trade_type; any other value (NA) is `unknown`. aggTrades aggregate
market trades only."""


class BinanceUsdm(SymbolBooks):
    """The Binance USD-M normalizer: feed it frames in receive order; it keeps one book per symbol."""

    venue: str = VENUE
    book_sync: type[BookSync] = BookSync
    """The per-symbol book state and its sync rules (normalize/venues/binance_usdm/book_sync.py)."""

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.agg_trade_ids = TradeIds("aggTrade")
        self.trade_ids = TradeIds("trade")

    def resume_trades(self, trades: Sequence[Trade], channels: Collection[str]) -> None:
        """Aggregate trade ids, when they are this handler's only trades: a raw `trade` channel's ids count
        in another sequence, and its records on the bus cannot be told from aggTrade's."""
        if "aggTrade" in channels and "trade" not in channels:
            for trade in trades:
                self.agg_trade_ids.resume(trade.symbol, int(trade.trade_id))

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            event = combined_decoder.decode(payload).data
            if event is None:
                event = bare_event_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            if payload.lstrip().startswith(b'{"result"'):
                return  # subscription acknowledgement
            out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(event)
        if kind is AggTrade:
            self._on_trade(event, self.agg_trade_ids, payload, ts_recv, out)  # type: ignore[arg-type]
            return
        if kind is RawTrade:  # its X says what kind of print it is
            self._on_trade(event, self.trade_ids, payload, ts_recv, out,  # type: ignore[arg-type]
                           _PRINT_TYPES.get(event.X, "unknown"))  # type: ignore[union-attr]
            return
        if kind is DepthUpdate:  # its decimals are all levels: apply_json reports INEXACT ones
            self._on_diff(event, ts_recv, payload, out)  # type: ignore[arg-type]
        elif kind is not Kline:
            try:
                self._on_event(event, ts_recv, out, INEXACT if frame_has_inexact_decimal(payload) else 0)
            except ValueError as exc:  # a value the contract cannot hold (an unknown side, say)
                out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"bad {type(event).__name__} frame: {exc}",
                                                   payload))

    def _on_trade(self, t: AggTrade | RawTrade, ids: TradeIds, payload: bytes, ts_recv: int, out: Emitted,
                  trade_type: str | None = None) -> None:
        """The hottest path: the price and size text is parsed and checked for exactness in one
        compiled call, a fifth of the cost of float() on each and a sixth of scanning the frame.
        Trade ids count up by one per symbol: any other id is a gap (or a repeat) for `_id_jump`."""
        try:
            price, size, inexact = parse_decimals(t.p, t.q)
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"bad trade decimal: {exc}", payload))
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
        out.records.append(Trade(self.venue, symbol, instrument, t.T * MS, ts_recv, t.E * MS, None, flags, price, size,
                                 -1 if t.m else 1, str(trade_id), None, trade_type))

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
            records.append(Bbo(self.venue, t.s, self.master.instrument(t.s), t.T * MS, ts_recv, t.E * MS, t.u,
                               LAST | extra, t.b, t.B, t.a, t.A))
        elif kind is MarkPriceUpdate:
            m: MarkPriceUpdate = event  # type: ignore[assignment]
            instrument = self.master.instrument(m.s)
            ts = m.E * MS
            records.append(MarkIndex(self.venue, m.s, instrument, ts, ts_recv, None, None, extra | (0 if m.T else LAST),
                                     m.p, m.i, m.P))
            if m.T:
                interval = self.master.funding_interval_s.get(m.s, DEFAULT_FUNDING_INTERVAL_S)
                records.append(Funding(self.venue, m.s, instrument, ts, ts_recv, None, None, LAST | extra, m.r, None,
                                       interval, m.T * MS, m.p, m.i))
        elif kind is ForceOrder:
            order = event.o  # type: ignore[union-attr]
            order_side = _SIDES.get(order.S)
            if order_side is None:
                raise ValueError(f"liquidation order side {order.S!r} is neither BUY nor SELL")
            records.append(Liquidation(
                self.venue, order.s, self.master.instrument(order.s), order.T * MS, ts_recv,
                event.E * MS, 0, LAST | SAMPLED | extra,  # type: ignore[union-attr]
                order.ap or order.p, order.z or order.q, -order_side, order_side,
            ))

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, ts_recv, reason, out)

    # -- order books --------------------------------------------------------------------------
    def _book(self, symbol: str) -> BookSync:
        sync = self.books.get(symbol)
        if sync is None:
            sync = self.books[symbol] = self.book_sync(symbol, self.master.instrument(symbol))
        return sync

    def _status(self, symbol: str, event: str, ts_recv: int, detail: str,
                seq_from: int | None = None, seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        return FeedStatus(self.venue, symbol, self.master.instrument(symbol), ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)

    def _on_diff(self, diff: DepthUpdate, ts_recv: int, payload: bytes, out: Emitted) -> None:
        sync = self._book(diff.s)
        if not sync.synced:
            self._buffer(sync, (diff, ts_recv, payload), out)
            return
        if sync.last_u is None:  # first diff after a snapshot: it straddles lastUpdateId
            snapshot_id = sync.snapshot_id or 0
            if sync.in_snapshot(diff, snapshot_id):
                return  # already contained in the snapshot
            if sync.straddles(diff, snapshot_id):
                self._apply(sync, diff, ts_recv, payload, out)
                return
            expected = snapshot_id
        elif sync.follows(diff):
            self._apply(sync, diff, ts_recv, payload, out)
            return
        else:
            expected = sync.last_u
        self._break(sync, ts_recv, f"diff {sync.ids(diff)} does not follow u={expected}", out,
                    expected, diff.U, sync.times(diff)[0])
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
        ts_event, ts_exch = sync.times(diff)
        try:
            self._emit_levels(sync, diff.b, diff.a, ts_event, ts_exch, ts_recv, diff.u,
                              GAP_BEFORE if sync.gap_pending else 0, out)
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"bad depth levels: {exc}", payload))
            self._break(sync, ts_recv, f"diff U={diff.U} u={diff.u} dead-lettered: the book missed it", out,
                        sync.last_u, diff.U, ts_event)
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
        records.append(BookDeltas(self.venue, symbol, instrument, ts_event, ts_recv, ts_exch, seq, flags, bids, asks))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | TS_EVENT_IMPUTED))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        records.append(Bbo(self.venue, symbol, instrument, ts_event, ts_recv, ts_exch, seq, derived, *book.bbo()))

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        symbol = query.get("symbol", [""])[0]
        try:
            if parts.path.endswith("/depth"):
                self._on_snapshot(symbol, snapshot_decoder.decode(payload), ts_recv, out)
            elif parts.path.endswith("/openInterest"):
                self._on_open_interest(open_interest_decoder.decode(payload), ts_recv, out)
            elif parts.path.endswith("/exchangeInfo"):
                self._on_instruments(*exchange_info_instruments(payload, ts_recv, self.master.funding_interval_s),
                                     payload, ts_recv, out)
            elif parts.path.endswith("/fundingInfo"):
                self._on_funding_info(funding_info_decoder.decode(payload), ts_recv, out)
            elif parts.path.endswith("/aggTrades"):
                self._on_agg_trades(symbol, int(query["fromId"][0]), int(query.get("limit", ["500"])[0]),
                                    agg_trades_decoder.decode(payload), ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"unknown REST endpoint {parts.path}", payload))
        except (msgspec.DecodeError, KeyError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"undecodable REST body from {url}: {exc}",
                                               payload))

    def _on_instruments(self, instruments: list[Instrument], unreadable: list[str], payload: bytes, ts_recv: int,
                        out: Emitted) -> None:
        """An exchangeInfo body's instruments become the master's ids and are published where new;
        symbol entries that did not read are one dead letter, the others kept."""
        if unreadable:
            out.dead_letters.append(DeadLetter(self.venue, ts_recv, f"exchangeInfo: {len(unreadable)} symbols "
                                               f"unreadable, the others kept: {'; '.join(unreadable)[:900]}",
                                               payload))
        for instrument in instruments:
            self.master.ids[instrument.symbol] = instrument.instrument
        out.records.extend(self.instrument_log.news(instruments))

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
                out.records.append(Trade(self.venue, symbol, instrument, t.T * MS, ts_recv, None, None,
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
        out.records.append(OpenInterest(self.venue, body.symbol, self.master.instrument(body.symbol), ts_event, ts_recv,
                                        None, None, flags, body.openInterest))

    def _on_snapshot(self, symbol: str, snap: DepthSnapshot, ts_recv: int, out: Emitted) -> None:
        """Reset the book from a REST snapshot, then replay the buffered diffs that follow it."""
        if not symbol:
            raise ValueError("depth snapshot URL has no symbol parameter")
        sync = self._book(symbol)
        last_id = snap.lastUpdateId
        if sync.synced and sync.last_u is not None and last_id <= sync.last_u:
            return  # an unneeded snapshot older than the live book: nothing to learn from it
        while sync.buffered and sync.in_snapshot(sync.buffered[0][0], last_id):
            sync.buffered.popleft()
        if sync.buffered and not sync.straddles(sync.buffered[0][0], last_id):
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
