"""The Kraken spot normalizer: v1 and v2 frames in receive order -> contract records (the channels are
described in the package docstring)."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Sequence
from typing import Literal

import msgspec

from normalize.decimals import parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import (
    DEPTH_LIMITED,
    DERIVED,
    GAP_BEFORE,
    INEXACT,
    LAST,
    MAYBE_BAD_BOOK,
    SNAPSHOT,
    TS_EVENT_IMPUTED,
)
from normalize.instruments import InstrumentLog
from normalize.records import Bbo, BookDeltas, FeedStatus, Level, Record, Trade, pack_levels
from normalize.venues.books import SymbolBooks
from normalize.venues.instruments_rest import on_instruments_rest
from normalize.venues.kraken.book_sync import BookSync, checksum
from normalize.venues.kraken.instruments import InstrumentMaster, instrument_id, v2_symbol
from normalize.venues.kraken.wire import (
    VENUE,
    control_decoder,
    str_decoder,
    subscribe_result_decoder,
    v1_book_decoder,
    v1_parts_decoder,
    v1_spread_decoder,
    v1_ticker_decoder,
    v1_trade_frame_decoder,
    v2_book_decoder,
    v2_frame_decoder,
    v2_instruments_decoder,
    v2_ticker_decoder,
    v2_trades_decoder,
)

DEFAULT_DEPTH = 1000
"""The depth a v2 book is kept to when no subscription answer said otherwise (what the connection
subscribes); v1 frames name theirs (`book-1000`)."""
_V1_SIDES = {"b": 1, "s": -1}
_V2_SIDES = {"buy": 1, "sell": -1}
_V2_PREFIX = b'{"channel":"'
_V2_IGNORED = frozenset((b"heartbeat", b"status", b"ohlc"))
_V1_CONTROL = frozenset(("heartbeat", "systemStatus", "subscriptionStatus", "pong"))
_SECONDS = re.compile(r"(\d{1,11})(?:\.(\d{1,9}))?").fullmatch
Text = Sequence[Sequence[str]]
"""Levels as the venue's text: [price, quantity, ...]."""


def _seconds_ns(text: str) -> int:
    """v1 time `1618678142.557535` (seconds, µs) -> ns, exactly."""
    found = _SECONDS(text)
    if found is None:
        raise ValueError(f"time {text!r}")
    return int(found[1] + (found[2] or "").ljust(9, "0"))


def _rfc3339_ns(text: str) -> int:
    """v2 time `2023-09-25T07:49:37.708706Z` -> ns, exactly."""
    stamp, dot, fraction = text.rstrip("Z").partition(".")
    if not text.endswith("Z") or (dot and (not fraction.isdigit() or len(fraction) > 9)):
        raise ValueError(f"time {text!r}")
    seconds = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def _checked(levels: Text) -> bool:
    """Every level's price and quantity are decimals (ValueError if not); True if one is inexact."""
    inexact = False
    for level in levels:
        price, qty, odd = parse_decimals(level[0], level[1])
        if not price > 0 or qty < 0:
            raise ValueError(f"level {level[0]} x {level[1]}")
        inexact |= odd
    return inexact


class Kraken(SymbolBooks):
    """The Kraken spot normalizer: feed it v1 or v2 frames in receive order; one book per pair."""

    venue: Literal["kraken"] = "kraken"

    def __init__(self, connection_id: str = "offline") -> None:
        self.connection_id = connection_id
        self.master = InstrumentMaster()
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookSync] = {}
        self.depths: dict[str, int] = {}
        """v2 book depth per symbol, from the subscription answers."""
        self._v2_names: dict[str, str] = {}
        """v1 pair -> v2 symbol, as met."""

    # -- dispatch ------------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        records = len(out.records)
        try:
            if payload[:1] == b"[":
                self._on_v1(payload, ts_recv, out)
            elif payload.startswith(_V2_PREFIX):
                if payload[len(_V2_PREFIX):payload.find(b'"', len(_V2_PREFIX))] not in _V2_IGNORED:
                    self._on_v2(payload, ts_recv, out)
            else:
                self._on_control(payload, ts_recv, out)
        except msgspec.DecodeError as exc:
            del out.records[records:]
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
        except (ValueError, ArithmeticError, IndexError) as exc:
            del out.records[records:]
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad frame: {exc}", payload))

    def _on_control(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        control = control_decoder.decode(payload)
        if control.event:  # v1
            if control.event not in _V1_CONTROL or control.status == "error":
                reason = f"venue event {control.event}: {control.status} {control.errorMessage}".strip()
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, reason, payload))
        elif control.method:  # v2 answers
            if not control.success:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue refused {control.method}: {control.error}",
                                                   payload))
            elif control.method == "subscribe" and bytes(control.result) != b"null":
                result = subscribe_result_decoder.decode(control.result)
                if result.channel == "book" and result.depth > 0:
                    self.depths[result.symbol] = result.depth
        elif control.channel.encode() not in _V2_IGNORED:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported frame {control.channel or '(none)'}",
                                               payload))

    # -- v1 ------------------------------------------------------------------------------------
    def _symbol(self, pair: str) -> str:
        symbol = self._v2_names.get(pair)
        if symbol is None:
            symbol = self._v2_names[pair] = v2_symbol(pair)
        return symbol

    def _on_v1(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if b',"trade","' in payload[-40:]:  # the commonest frame, decoded in one go
            _, trades, _, pair = v1_trade_frame_decoder.decode(payload)
            self._v1_trades(trades, self._symbol(pair), ts_recv, out)
            return
        parts = v1_parts_decoder.decode(payload)
        if len(parts) < 4:
            raise ValueError(f"a v1 frame of {len(parts)} elements")
        name, pair = str_decoder.decode(parts[-2]), str_decoder.decode(parts[-1])
        symbol = self._symbol(pair)
        if name == "trade":
            self._v1_trades(v1_trade_frame_decoder.decode(payload)[1], symbol, ts_recv, out)
        elif name.startswith("book-"):
            books = [v1_book_decoder.decode(part) for part in parts[1:-2]]
            snapshot = any(b.as_ is not None or b.bs is not None for b in books)
            asks = [level for b in books for level in (b.as_ or b.a or ())]
            bids = [level for b in books for level in (b.bs or b.b or ())]
            sent = books[-1].c
            times = [_seconds_ns(level[2]) for level in asks + bids if len(level) > 2]
            sync = self._sync(symbol, int(name[5:]))
            self._on_book(sync, snapshot, asks, bids, int(sent) if sent else None, max(times, default=0), ts_recv,
                          out)
        elif name == "ticker":
            ticker = v1_ticker_decoder.decode(parts[1])
            self._bbo(symbol, str(ticker.b[0]), str(ticker.b[2]), str(ticker.a[0]), str(ticker.a[2]), 0, ts_recv,
                      out)
        elif name == "spread":
            bid, ask, stamp, bid_size, ask_size = v1_spread_decoder.decode(parts[1])[:5]
            self._bbo(symbol, bid, bid_size, ask, ask_size, _seconds_ns(stamp), ts_recv, out)
        elif not name.startswith("ohlc"):
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported channel {name}", payload))

    def _v1_trades(self, trades: list[list[str]], symbol: str, ts_recv: int, out: Emitted) -> None:
        """v1 trades have no id: `<time>/<price>/<volume>`, `#n` for the n-th identical one of a frame."""
        instrument, last = instrument_id(symbol), len(trades) - 1
        records = out.records if last == 0 else []  # one trade a frame is the rule: appended directly
        ids: dict[str, int] = {}
        for i, t in enumerate(trades):
            price, size, inexact = parse_decimals(t[0], t[1])
            if not price > 0 or not size > 0:
                raise ValueError(f"trade {t[0]} x {t[1]}")
            trade_id = t[6] if len(t) > 6 and t[6] else f"{t[2]}/{t[0]}/{t[1]}"
            repeat = ids[trade_id] = ids.get(trade_id, -1) + 1 if last else 0
            records.append(Trade(VENUE, symbol, instrument, _seconds_ns(t[2]), ts_recv, None, None,
                                 (INEXACT if inexact else 0) | (LAST if i == last else 0), price, size,
                                 _V1_SIDES.get(t[3], 0), f"{trade_id}#{repeat}" if repeat else trade_id))
        if records is not out.records:
            out.records.extend(records)

    # -- v2 ------------------------------------------------------------------------------------
    def _on_v2(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        frame = v2_frame_decoder.decode(payload)
        if frame.channel == "book":
            for book in v2_book_decoder.decode(frame.data):
                sync = self._sync(book.symbol, self.depths.get(book.symbol, DEFAULT_DEPTH))
                asks = [(bytes(level.price).decode(), bytes(level.qty).decode()) for level in book.asks]
                bids = [(bytes(level.price).decode(), bytes(level.qty).decode()) for level in book.bids]
                self._on_book(sync, frame.type == "snapshot", asks, bids, book.checksum,
                              _rfc3339_ns(book.timestamp) if book.timestamp else 0, ts_recv, out)
        elif frame.channel == "trade":
            records: list[Record] = []
            for t in v2_trades_decoder.decode(frame.data):
                price, size, inexact = parse_decimals(bytes(t.price).decode(), bytes(t.qty).decode())
                if not price > 0 or not size > 0:
                    raise ValueError(f"trade {t.trade_id} with price {price} and size {size}")
                records.append(Trade(VENUE, t.symbol, instrument_id(t.symbol), _rfc3339_ns(t.timestamp), ts_recv,
                                     None, t.trade_id, INEXACT if inexact else 0, price, size,
                                     _V2_SIDES.get(t.side, 0), str(t.trade_id)))
            self._emit(records, out)
        elif frame.channel == "ticker":
            for ticker in v2_ticker_decoder.decode(frame.data):
                self._bbo(ticker.symbol, bytes(ticker.bid).decode(), bytes(ticker.bid_qty).decode(),
                          bytes(ticker.ask).decode(), bytes(ticker.ask_qty).decode(),
                          _rfc3339_ns(ticker.timestamp) if ticker.timestamp else 0, ts_recv, out)
        elif frame.channel == "instrument":
            pairs = v2_instruments_decoder.decode(frame.data).pairs
            out.records.extend(self.instrument_log.news(self.master.load_pairs(pairs, ts_recv)))
        elif frame.channel.encode() not in _V2_IGNORED:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unsupported channel {frame.channel}", payload))

    # -- trades and bbo ------------------------------------------------------------------------
    @staticmethod
    def _emit(records: list[Record], out: Emitted) -> None:
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)

    @staticmethod
    def _bbo(symbol: str, bid: str, bid_size: str, ask: str, ask_size: str, ts_event: int, ts_recv: int,
             out: Emitted) -> None:
        """A venue-native BBO (ticker, spread); without a venue time, ts_event is the receive time."""
        bid_price, bid_qty, ask_price, ask_qty, inexact = parse_decimals(bid, bid_size, ask, ask_size)
        flags = LAST | (INEXACT if inexact else 0) | (0 if ts_event else TS_EVENT_IMPUTED)
        out.records.append(Bbo(VENUE, symbol, instrument_id(symbol), ts_event or ts_recv, ts_recv, None, None, flags,
                               bid_price if bid_price > 0 else None, bid_qty if bid_price > 0 else None,
                               ask_price if ask_price > 0 else None, ask_qty if ask_price > 0 else None))

    # -- order books ---------------------------------------------------------------------------
    def _sync(self, symbol: str, depth: int) -> BookSync:
        sync = self.books.get(symbol)
        if sync is None:
            if depth < 10:
                raise ValueError(f"book depth {depth}")
            sync = self.books[symbol] = BookSync(symbol, instrument_id(symbol), depth)
        sync.depth = depth
        return sync

    def _on_book(self, sync: BookSync, snapshot: bool, asks: Text, bids: Text, sent: int | None, ts_event: int,
                 ts_recv: int, out: Emitted) -> None:
        """Apply one message (asks, then bids, in the venue's order), cut the book to its depth,
        check the checksum where sent, then publish; on a mismatch publish nothing and resync."""
        if not snapshot and not sync.synced:
            out.snapshot_requests.add(sync.symbol)  # nothing to apply it to until a snapshot comes
            return
        inexact = _checked(asks) | _checked(bids)
        book = sync.book
        resync = sync.gap_pending
        flags = DEPTH_LIMITED | (INEXACT if inexact else 0) | (0 if ts_event else TS_EVENT_IMPUTED)
        if snapshot:
            flags |= SNAPSHOT | (GAP_BEFORE if resync or sync.synced else 0)
            book.clear()
        ask_levels = book.apply_text(asks, False)
        bid_levels = book.apply_text(bids, True)
        cut_bids, cut_asks = book.truncate(sync.depth)
        ts_event = ts_event or ts_recv
        if sent is not None:
            mine = checksum(book)
            if mine != sent:
                what = "snapshot" if snapshot else "update"
                self._break(sync, "checksum_failure", ts_recv, f"{what} checksum {sent}, book gives {mine}",
                            ts_event, out)
                return
            sync.checksums += 1
        sync.ts_event = ts_event
        if snapshot:
            sync.synced, sync.gap_pending = True, False
            sync.snapshots += 1
            out.snapshot_requests.discard(sync.symbol)
        else:
            sync.applied += 1
        self._publish(sync, bid_levels + cut_bids, ask_levels + cut_asks, ts_event, ts_recv, flags, out)
        if snapshot and resync:
            out.records.append(self._status(sync, "resync_done", ts_recv, "book reset from a snapshot", ts_event))

    def _publish(self, sync: BookSync, bids: list[Level], asks: list[Level], ts_event: int, ts_recv: int,
                 flags: int, out: Emitted) -> None:
        book = sync.book
        out.records.append(BookDeltas(VENUE, sync.symbol, sync.instrument, ts_event, ts_recv, None, None, flags,
                                      pack_levels(bids), pack_levels(asks)))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | TS_EVENT_IMPUTED))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        out.records.append(Bbo(VENUE, sync.symbol, sync.instrument, ts_event, ts_recv, None, None, derived,
                               *book.bbo()))

    def _break(self, sync: BookSync, event: str, ts_recv: int, detail: str, ts_event: int, out: Emitted) -> None:
        """This pair's book is wrong: journal it, forget the book, ask for a snapshot (the handler
        unsubscribes and subscribes its book channel)."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        sync.book.clear()
        out.records.append(self._status(sync, event, ts_recv, detail, ts_event))
        out.records.append(self._status(sync, "resync_start", ts_recv, "resubscribing to the book channel"))
        out.snapshot_requests.add(sync.symbol)

    def _status(self, sync: BookSync, event: str, ts_recv: int, detail: str, ts_event: int | None = None) -> FeedStatus:
        return FeedStatus(VENUE, sync.symbol, sync.instrument, ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, None, None)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, "gap", ts_recv, reason, sync.ts_event, out)

    # -- REST ----------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        on_instruments_rest(VENUE, "/AssetPairs", self.master.load_asset_pairs, self.instrument_log,
                            url, payload, ts_recv, out)
