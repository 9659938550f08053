"""The OKX normalizer: frames in receive order -> contract records (the channels are described in
the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from normalize.decimals import frame_has_inexact_decimal, parse_decimals
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
    Trade,
)
from normalize.venues.books import ResubscribedBooks
from normalize.venues.instruments_rest import on_instruments_rest
from normalize.venues.okx.book_sync import CHECKSUM_DEPTH, BookSync
from normalize.venues.okx.instruments import Contract, InstrumentMaster, Spec, index_id, instrument_id
from normalize.venues.okx.wire import (
    MS,
    PREFIX,
    VENUE,
    Book,
    bbo_decoder,
    books_decoder,
    envelope_decoder,
    funding_decoder,
    index_decoder,
    liquidations_decoder,
    mark_decoder,
    open_interest_decoder,
    trades_decoder,
)

_SIDES = {"buy": 1, "sell": -1}
_POSITIONS = {"long": 1, "short": -1}

SERVICE_UPGRADE = "64008"
"""`{"event":"notice","code":"64008"}`: OKX will close the connection for a service upgrade in 30 s."""
_ACKS = frozenset(("subscribe", "unsubscribe", "channel-conn-count"))
_IGNORED = frozenset((b"tickers", b"price-limit"))
_BOOK_CHANNELS = (b"books", b"books-l2-tbt", b"books50-l2-tbt")


class Okx(ResubscribedBooks):
    """The OKX normalizer: feed it frames in receive order; it keeps one book per instrument."""

    venue: Literal["okx"] = "okx"
    resync_detail = "resubscribing to the book channel"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.funding_intervals: dict[str, int] = {}
        """Last funding interval seen per instrument, for frames that carry one settlement time."""
        self._handlers: dict[bytes, Callable[[bytes, int, Emitted], None]] = {
            b"trades": self._on_trades, b"trades-all": self._on_trades, b"bbo-tbt": self._on_bbo,
            b"funding-rate": self._on_funding, b"mark-price": self._on_mark, b"index-tickers": self._on_index,
            b"open-interest": self._on_open_interest, b"liquidation-orders": self._on_liquidations,
            **{channel: self._on_books for channel in _BOOK_CHANNELS},
        }

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if payload.startswith(PREFIX):
            channel = payload[len(PREFIX):payload.find(b'"', len(PREFIX))]
        elif payload == b"pong":
            return  # the answer to our text ping
        else:
            try:
                envelope = envelope_decoder.decode(payload)
            except msgspec.DecodeError as exc:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
                return
            if envelope.event == "notice" and envelope.code == SERVICE_UPGRADE:
                out.records.append(FeedStatus(VENUE, "", "", ts_recv, ts_recv, None, None, TS_EVENT_IMPUTED,
                                              "venue_notice", self.connection_id,
                                              f"{envelope.code} {envelope.msg}".strip(), None, None))
                out.reconnect = f"venue notice {envelope.code} (service upgrade)"
                return
            if envelope.event or envelope.arg is None:
                if envelope.event not in _ACKS:
                    reason = f"venue event {envelope.event or '(none)'}: {envelope.code} {envelope.msg}".rstrip()
                    out.dead_letters.append(DeadLetter(VENUE, ts_recv, reason, payload))
                return
            channel = envelope.arg.channel.encode()
        handler = self._handlers.get(channel)
        if handler is None:
            if channel not in _IGNORED:
                name = channel.decode(errors="replace")
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported channel {name}", payload))
            return
        try:
            handler(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable {channel.decode()} frame: {exc}",
                                               payload))
        except (ValueError, ArithmeticError, IndexError) as exc:  # a number that is not one, a short level
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {channel.decode()} frame: {exc}", payload))

    def _spec(self, inst_id: str) -> Spec:
        """The symbol's Spec; a contract without metadata raises (the frame becomes a dead letter)."""
        spec = self.master.specs.get(inst_id) or self.master.spec(inst_id)
        if spec is None:
            raise ValueError(f"no contract size for {inst_id}: its instruments body is not loaded")
        return spec

    def _on_trades(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hottest path. Price and size stay text until two short strings are checked for
        exactness by length (text of at most 15 characters cannot hold 16 significant digits): a
        third of the cost of scanning the frame. A frame's trades are all published or none."""
        frame = trades_decoder.decode(payload)
        symbol = frame.arg.instId
        spec = self.master.specs.get(symbol) or self._spec(symbol)
        instrument, contract = spec.instrument, spec.contract
        data = frame.data
        last = data[-1] if data else None
        # one trade a frame is the rule: appended directly; several are collected first
        trades = out.records if len(data) == 1 else []
        for t in data:
            price, size, inexact = parse_decimals(t.px, t.sz)
            flags = (LAST if t is last else 0) | (INEXACT if inexact else 0)
            if contract is None:
                trades.append(Trade(VENUE, symbol, instrument, t.ts * MS, ts_recv, None, None, flags, price, size,
                                    _SIDES.get(t.side, 0), t.tradeId))
            else:
                trades.append(Trade(VENUE, symbol, instrument, t.ts * MS, ts_recv, None, None, flags, price,
                                    contract.to_base(size, price, t.sz), _SIDES.get(t.side, 0), t.tradeId, size))
        if trades is not out.records:
            out.records.extend(trades)

    def _on_bbo(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = bbo_decoder.decode(payload)
        symbol = frame.arg.instId
        spec = self._spec(symbol)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        last = len(frame.data) - 1
        for i, d in enumerate(frame.data):
            bid_price, bid_size = _best(d.bids, spec.contract)
            ask_price, ask_size = _best(d.asks, spec.contract)
            out.records.append(Bbo(VENUE, symbol, spec.instrument, d.ts * MS, ts_recv, None, d.seqId,
                                   extra | LAST if i == last else extra, bid_price, bid_size, ask_price, ask_size))

    def _on_funding(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = funding_decoder.decode(payload)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        last = len(frame.data) - 1
        for i, d in enumerate(frame.data):
            if not d.fundingRate or not d.fundingTime:
                raise ValueError(f"funding-rate for {d.instId} without fundingRate or fundingTime")
            funding_ms = int(d.fundingTime)
            interval = None
            if d.nextFundingTime:
                interval = (int(d.nextFundingTime) - funding_ms) // 1000
            elif d.prevFundingTime:
                interval = (funding_ms - int(d.prevFundingTime)) // 1000
            if interval:
                self.funding_intervals[d.instId] = interval
            else:
                interval = self.funding_intervals.get(d.instId)
            flags = extra | LAST if i == last else extra
            ts_event = int(d.ts) * MS if d.ts else ts_recv
            if not d.ts:
                flags |= TS_EVENT_IMPUTED
            out.records.append(Funding(
                VENUE, d.instId, instrument_id(d.instId), ts_event, ts_recv, None, None, flags, float(d.fundingRate),
                float(d.nextFundingRate) if d.nextFundingRate else None, interval, funding_ms * MS, None, None))

    def _on_mark(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = mark_decoder.decode(payload)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        last = len(frame.data) - 1
        for i, d in enumerate(frame.data):
            out.records.append(MarkIndex(VENUE, d.instId, instrument_id(d.instId), d.ts * MS, ts_recv, None, None,
                                         extra | LAST if i == last else extra, d.markPx, None, None))

    def _on_index(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = index_decoder.decode(payload)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        last = len(frame.data) - 1
        for i, d in enumerate(frame.data):
            out.records.append(MarkIndex(VENUE, d.instId, index_id(d.instId), d.ts * MS, ts_recv, None, None,
                                         extra | LAST if i == last else extra, None, d.idxPx, None))

    def _on_open_interest(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = open_interest_decoder.decode(payload)
        extra = INEXACT if frame_has_inexact_decimal(payload) else 0
        last = len(frame.data) - 1
        for i, d in enumerate(frame.data):
            out.records.append(OpenInterest(VENUE, d.instId, instrument_id(d.instId), d.ts * MS, ts_recv, None, None,
                                            extra | LAST if i == last else extra, d.oiCcy, d.oi,
                                            float(d.oiUsd) if d.oiUsd else None))

    def _on_liquidations(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """All instruments of one type share the channel: every one must be known, or the frame
        is a dead letter whole (so re-normalizing dead letters never duplicates records)."""
        frame = liquidations_decoder.decode(payload)
        specs = [self._spec(d.instId) for d in frame.data]
        extra = SAMPLED | (INEXACT if frame_has_inexact_decimal(payload) else 0)
        records: list[Liquidation] = []
        for d, spec in zip(frame.data, specs, strict=True):
            contract = spec.contract
            for x in d.details:
                order_side = _SIDES.get(x.side, 0)
                size = x.sz if contract is None else contract.to_base(x.sz, x.bkPx)
                records.append(Liquidation(VENUE, d.instId, spec.instrument, x.ts * MS, ts_recv, None, None, extra,
                                           x.bkPx, size, _POSITIONS.get(x.posSide, -order_side), order_side,
                                           None if contract is None else x.sz))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=extra | LAST)
        out.records.extend(number_repeats(records))

    # -- order books --------------------------------------------------------------------------
    def _on_books(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Levels stay raw JSON until the book parses them (and reports INEXACT ones), so a
        message's Python work is one decode, one apply, one checksum and two records."""
        frame = books_decoder.decode(payload)
        symbol = frame.arg.instId
        sync = self.books.get(symbol)
        if sync is None:
            spec = self._spec(symbol)
            sync = self.books[symbol] = BookSync(symbol, spec.instrument, spec.contract)
        snapshot = frame.action == "snapshot"
        for data in frame.data:
            if snapshot:
                self._snapshot(sync, data, ts_recv, out)
            elif sync.synced:
                self._update(sync, data, ts_recv, out)
            else:
                out.snapshot_requests.add(symbol)  # nothing to apply it to until a snapshot comes

    def _snapshot(self, sync: BookSync, data: Book, ts_recv: int, out: Emitted) -> None:
        resync = sync.gap_pending
        # a snapshot replacing a live book (resubscribe, reconnect) may follow lost updates,
        # unless its seqId shows nothing was missed
        continues = sync.synced and data.seqId is not None and data.seqId == sync.seq
        flags = DEPTH_LIMITED | SNAPSHOT | (GAP_BEFORE if resync or (sync.synced and not continues) else 0)
        sync.book.clear()
        if not self._apply(sync, data, ts_recv, out, flags, "snapshot"):
            return
        sync.synced, sync.gap_pending = True, False
        sync.snapshots += 1
        out.snapshot_requests.discard(sync.symbol)
        if resync:
            out.records.append(self._status(sync, "resync_done", ts_recv, f"book reset from a snapshot at ts "
                                            f"{data.ts}", None, data.seqId, data.ts * MS))

    def _update(self, sync: BookSync, data: Book, ts_recv: int, out: Emitted) -> None:
        if data.prevSeqId is not None and sync.seq is not None and data.prevSeqId != sync.seq:
            self._break(sync, "gap", ts_recv, f"update prevSeqId={data.prevSeqId} does not follow seqId={sync.seq}",
                        sync.seq, data.prevSeqId, data.ts * MS, out)
            return
        if self._apply(sync, data, ts_recv, out, DEPTH_LIMITED, "update"):
            sync.applied += 1

    def _apply(self, sync: BookSync, data: Book, ts_recv: int, out: Emitted, flags: int, what: str) -> bool:
        """Apply one message, check its checksum, then publish it with the derived BBO; on any
        failure publish nothing of it and resync the instrument (an unreadable level also raises:
        the frame is a dead letter)."""
        book = sync.book
        try:
            bids, asks, bids_native, asks_native, inexact = book.apply_json(data.bids, data.asks)
        except (ValueError, ArithmeticError) as exc:  # malformed levels; a contract size with no base value
            self._break(sync, "gap", ts_recv, f"unreadable level in {what}: {exc}", sync.seq, data.seqId,
                        data.ts * MS, out)
            raise ValueError(f"unreadable level in {what}: {exc}") from exc
        if data.checksum:
            mine = book.checksum(CHECKSUM_DEPTH)
            if mine != data.checksum:
                self._break(sync, "checksum_failure", ts_recv, f"{what} checksum {data.checksum}, book gives {mine}",
                            sync.seq, data.seqId, data.ts * MS, out)
                return False
        ts_event = data.ts * MS
        sync.ts_event = ts_event
        seq = data.seqId
        if seq is not None:
            sync.seq = seq
        if bids or asks or flags & SNAPSHOT:
            if inexact:
                flags |= INEXACT
            symbol, instrument = sync.symbol, sync.instrument
            records = out.records
            records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, None, seq, flags, bids, asks,
                                      bids_native, asks_native))
            derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT))
            if book.crossed():
                derived |= MAYBE_BAD_BOOK
            records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, None, seq, derived, *book.bbo()))
        return True

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        on_instruments_rest(VENUE, "/public/instruments", self.master.load, self.instrument_log,
                            url, payload, ts_recv, out)


def _best(levels: list[tuple[str, ...]], contract: Contract | None) -> tuple[float | None, float | None]:
    """(price, base size) of a bbo-tbt side's one level; (None, None) for an empty side."""
    if not levels:
        return None, None
    price, native = float(levels[0][0]), float(levels[0][1])
    return price, native if contract is None else contract.to_base(native, price, levels[0][1])
