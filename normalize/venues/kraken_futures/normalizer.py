"""The Kraken Futures normalizer: frames in receive order -> contract records (the feeds are described
in the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from normalize.decimals import frame_has_inexact_decimal, parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import DERIVED, GAP_BEFORE, INEXACT, LAST, MAYBE_BAD_BOOK, SNAPSHOT
from normalize.instruments import InstrumentLog
from normalize.records import Bbo, BookDeltas, Funding, MarkIndex, OpenInterest, Record, Trade
from normalize.venues.books import ResubscribedBooks
from normalize.venues.instruments_rest import on_instruments_rest
from normalize.venues.kraken_futures.book_sync import BookSync
from normalize.venues.kraken_futures.instruments import FUNDING_INTERVAL_S, InstrumentMaster, Spec
from normalize.venues.kraken_futures.wire import (
    MS,
    VENUE,
    BookDelta,
    BookSnapshot,
    Level,
    Ticker,
    TradeData,
    book_decoder,
    book_snapshot_decoder,
    envelope_decoder,
    ticker_decoder,
    trade_decoder,
    trade_snapshot_decoder,
)

_SIDES = {"buy": 1, "sell": -1}
TRADE_TYPES = {"fill": None, "liquidation": "liquidation", "block": "block", "assignment": "adl",
               "termination": "unknown"}
"""Kraken's trade `type` -> Trade.trade_type (None: a market trade). `assignment` is a position
handed to a counterparty when a liquidation finds no book (an auto-deleveraging print);
`termination` closes positions when a contract is terminated. Any other type is `unknown`."""
_PREFIX = b'{"feed":"'
_CONTROL = frozenset(("info", "subscribed", "unsubscribed"))
_IGNORED = frozenset((b"heartbeat", b"ticker_lite"))


def _text(raw: msgspec.Raw) -> str:
    return bytes(raw).decode()


class KrakenFutures(ResubscribedBooks):
    """The Kraken Futures normalizer: feed it frames in receive order; it keeps one book per product."""

    venue: Literal["kraken-futures"] = "kraken-futures"
    resync_detail = "resubscribing to the book feed"

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        self.connection_id = connection_id
        self.master = master or InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.funding_intervals: dict[str, int] = {}
        """Funding interval per product, learned when next_funding_rate_time moves on."""
        self._next_funding: dict[str, int] = {}
        self._handlers: dict[bytes, Callable[[bytes, int, Emitted], None]] = {
            b"book": self._on_book, b"book_snapshot": self._on_snapshot, b"trade": self._on_trade,
            b"trade_snapshot": self._on_trade_snapshot, b"ticker": self._on_ticker}

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if payload.startswith(_PREFIX):
            feed = payload[len(_PREFIX):payload.find(b'"', len(_PREFIX))]
        else:
            try:
                envelope = envelope_decoder.decode(payload)
            except msgspec.DecodeError as exc:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
                return
            if envelope.event:
                if envelope.event not in _CONTROL:
                    reason = f"venue event {envelope.event}: {envelope.message}".rstrip(": ")
                    out.dead_letters.append(DeadLetter(VENUE, ts_recv, reason, payload))
                return
            feed = envelope.feed.encode()
        handler = self._handlers.get(feed)
        if handler is None:
            if feed not in _IGNORED:
                name = feed.decode(errors="replace") or "(none)"
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported feed {name}", payload))
            return
        records = len(out.records)
        try:
            handler(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            del out.records[records:]
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable {feed.decode()} frame: {exc}",
                                               payload))
        except (ValueError, ArithmeticError) as exc:  # a number that is not one, an unknown product
            del out.records[records:]
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad {feed.decode()} frame: {exc}", payload))

    # -- trades --------------------------------------------------------------------------------
    def _trades(self, trades: list[TradeData], ts_recv: int, out: Emitted) -> None:
        """Trades of one frame, oldest first, all published or none; LAST on the last."""
        records: list[Record] = []
        for t in trades:
            spec = self.master.spec(t.product_id)
            price, native, inexact = parse_decimals(bytes(t.price).decode(), bytes(t.qty).decode())
            if not price > 0 or not native > 0:
                raise ValueError(f"trade {t.uid} with price {price} and size {native}")
            records.append(Trade(VENUE, t.product_id, spec.instrument, t.time * MS, ts_recv, None, t.seq,
                                 INEXACT if inexact else 0, price, spec.contract.to_base(native, price),
                                 _SIDES.get(t.side, 0), t.uid, native, TRADE_TYPES.get(t.type, "unknown")))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)

    def _on_trade(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        self._trades([trade_decoder.decode(payload)], ts_recv, out)

    def _on_trade_snapshot(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The recent trades sent on subscribing, newest first: published oldest first. A handler
        that subscribes again receives some it has already published, under the same keys."""
        self._trades(trade_snapshot_decoder.decode(payload).trades[::-1], ts_recv, out)

    # -- ticker --------------------------------------------------------------------------------
    def _on_ticker(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Best bid/ask with sizes, mark and index price, open interest, and for perpetuals funding.
        An absent numeric field is zero (Kraken omits zeros)."""
        t = ticker_decoder.decode(payload)
        symbol = t.product_id
        spec = self.master.spec(symbol)
        contract = spec.contract
        ts_event = t.time * MS
        bid, bid_size, ask, ask_size, mark, index, oi, inexact = parse_decimals(
            _text(t.bid), _text(t.bid_size), _text(t.ask), _text(t.ask_size), _text(t.markPrice), _text(t.index),
            _text(t.openInterest))
        flags = INEXACT if inexact else 0
        records: list[Record] = []
        if bid > 0 or ask > 0:
            records.append(Bbo(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None, flags,
                               bid if bid > 0 else None, contract.to_base(bid_size, bid) if bid > 0 else None,
                               ask if ask > 0 else None, contract.to_base(ask_size, ask) if ask > 0 else None))
        if mark > 0 or index > 0:
            records.append(MarkIndex(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None, flags,
                                     mark if mark > 0 else None, index if index > 0 else None))
        if mark > 0 or not contract.inverse:
            value = oi * float(contract.multiplier) if contract.inverse else None
            records.append(OpenInterest(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None, flags,
                                        contract.to_base(oi, mark) if oi else 0.0, oi, value))
        if spec.perpetual and t.tag in ("perpetual", ""):
            records.append(self._funding(t, symbol, spec, ts_event, ts_recv, flags, mark, index))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)

    def _funding(self, t: Ticker, symbol: str, spec: Spec, ts_event: int, ts_recv: int, flags: int,
                 mark: float, index: float) -> Funding:
        """funding_rate is `relative_funding_rate`, Kraken's fraction per interval (its `funding_rate`
        is absolute: quote currency per contract, e.g. USD per BTC for PF_XBTUSD, BTC per USD for
        PI_XBTUSD); it settles at `next_funding_rate_time`. The interval is the step between two
        settlement times seen, else Kraken's hourly funding."""
        rate, predicted, inexact = parse_decimals(_text(t.relative_funding_rate),
                                                  _text(t.relative_funding_rate_prediction))
        next_ms = t.next_funding_rate_time
        if next_ms:
            last = self._next_funding.get(symbol)
            if last is not None and next_ms > last:
                self.funding_intervals[symbol] = (next_ms - last) // 1000
            self._next_funding[symbol] = next_ms
        return Funding(VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None,
                       flags | (INEXACT if inexact else 0), rate, predicted,
                       self.funding_intervals.get(symbol, FUNDING_INTERVAL_S), next_ms * MS if next_ms else None,
                       mark if mark > 0 else None, index if index > 0 else None)

    # -- order books ---------------------------------------------------------------------------
    def _sync(self, symbol: str) -> BookSync:
        sync = self.books.get(symbol)
        if sync is None:
            spec = self.master.spec(symbol)
            sync = self.books[symbol] = BookSync(symbol, spec.instrument, spec)
        return sync

    def _on_snapshot(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        snapshot: BookSnapshot = book_snapshot_decoder.decode(payload)
        sync = self._sync(snapshot.product_id)
        resync = sync.gap_pending
        continues = sync.synced and snapshot.seq == sync.seq
        flags = SNAPSHOT | (GAP_BEFORE if resync or (sync.synced and not continues) else 0)
        if frame_has_inexact_decimal(payload):
            flags |= INEXACT
        to_base = sync.spec.contract.to_base
        bids, bids_native = _levels(snapshot.bids, to_base)
        asks, asks_native = _levels(snapshot.asks, to_base)
        book = sync.book
        book.clear()
        try:
            packed_bids, packed_asks = book.apply_levels(bids, asks)
        except ValueError:
            self._break(sync, "gap", ts_recv, "unreadable level in a snapshot", sync.seq, snapshot.seq,
                        snapshot.timestamp * MS, out)
            raise
        sync.synced, sync.gap_pending, sync.seq = True, False, snapshot.seq
        sync.snapshots += 1
        sync.ts_event = snapshot.timestamp * MS
        out.snapshot_requests.discard(sync.symbol)
        self._publish(sync, packed_bids, packed_asks, bids_native, asks_native, ts_recv, flags, out)
        if resync:
            out.records.append(self._status(sync, "resync_done", ts_recv, f"book reset from a snapshot at seq "
                                            f"{snapshot.seq}", None, snapshot.seq, sync.ts_event))

    def _on_book(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        delta: BookDelta = book_decoder.decode(payload)
        sync = self._sync(delta.product_id)
        if not sync.synced:
            out.snapshot_requests.add(sync.symbol)  # nothing to apply it to until a snapshot comes
            return
        assert sync.seq is not None
        if delta.seq <= sync.seq:
            return  # already applied (the same delta again)
        if delta.seq != sync.seq + 1:
            self._break(sync, "gap", ts_recv, f"book seq {delta.seq} does not follow {sync.seq}", sync.seq + 1,
                        delta.seq - 1, delta.timestamp * MS, out)
            return
        price, native = delta.price, delta.qty
        if not price > 0 or native < 0:
            raise ValueError(f"book level {price} x {native}")
        level = [(price, sync.spec.contract.to_base(native, price) if native else 0.0)]
        if delta.side == "buy":
            packed_bids, packed_asks = sync.book.apply_levels(level, ())
            bids_native, asks_native = [native], []
        elif delta.side == "sell":
            packed_bids, packed_asks = sync.book.apply_levels((), level)
            bids_native, asks_native = [], [native]
        else:
            raise ValueError(f"book side {delta.side!r}")
        sync.seq = delta.seq
        sync.ts_event = delta.timestamp * MS
        sync.applied += 1
        self._publish(sync, packed_bids, packed_asks, bids_native, asks_native, ts_recv,
                      INEXACT if frame_has_inexact_decimal(payload) else 0, out)

    def _publish(self, sync: BookSync, bids: bytes, asks: bytes, bids_native: list[float],
                 asks_native: list[float], ts_recv: int, flags: int, out: Emitted) -> None:
        book = sync.book
        out.records.append(BookDeltas(VENUE, sync.symbol, sync.instrument, sync.ts_event, ts_recv, None, sync.seq,
                                      flags, bids, asks, bids_native, asks_native))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        out.records.append(Bbo(VENUE, sync.symbol, sync.instrument, sync.ts_event, ts_recv, None, sync.seq, derived,
                               *book.bbo()))

    # -- REST ----------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        on_instruments_rest(VENUE, "/instruments", self.master.load, self.instrument_log, url, payload, ts_recv, out)


def _levels(levels: list[Level], to_base: Callable[[float, float], float]) -> tuple[list[tuple[float, float]],
                                                                                list[float]]:
    """A snapshot side as (price, base size) pairs and the contracts of each."""
    pairs, native = [], []
    for level in levels:
        price, qty = level.price, level.qty
        if not price > 0 or qty < 0:
            raise ValueError(f"book level {price} x {qty}")
        pairs.append((price, to_base(qty, price) if qty else 0.0))
        native.append(qty)
    return pairs, native
