"""A per-symbol L2 order book: one dict per side, with the best price tracked incrementally.

A dict applies level updates several times faster than a sorted container (about 8-10M level
updates/s here against 2M for SortedDict); the best price is kept up to date on every update and
recomputed with one max/min over the side only when the best level itself is removed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Protocol

import msgspec

from normalize.flags import DERIVED, LAST, MAYBE_BAD_BOOK
from normalize.records import BookTop

BID = 1
ASK = -1


class L2Book:
    """Price -> size per side. Sizes are absolute; a size of 0 deletes the level."""

    __slots__ = ("asks", "best_ask", "best_bid", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.best_bid: float | None = None
        self.best_ask: float | None = None

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.best_bid = self.best_ask = None

    def apply_levels(self, bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]]) -> None:
        """Apply one message's levels. The hot path: locals only, one max/min at most per side."""
        side, best, lost = self.bids, self.best_bid, False
        for price, size in bids:
            if size:
                side[price] = size
                if best is None or price > best:
                    best = price
            elif side.pop(price, None) is not None and price == best:
                lost = True
        self.best_bid = (max(side) if side else None) if lost else best
        side, best, lost = self.asks, self.best_ask, False
        for price, size in asks:
            if size:
                side[price] = size
                if best is None or price < best:
                    best = price
            elif side.pop(price, None) is not None and price == best:
                lost = True
        self.best_ask = (min(side) if side else None) if lost else best

    def bbo(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(bid price, bid size, ask price, ask size); None for an empty side."""
        bid, ask = self.best_bid, self.best_ask
        return (
            bid, self.bids[bid] if bid is not None else None,
            ask, self.asks[ask] if ask is not None else None,
        )

    def crossed(self) -> bool:
        return self.best_bid is not None and self.best_ask is not None and self.best_bid >= self.best_ask

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best `depth` levels per side, best first (bids descending, asks ascending); a
        partial selection, not a sort of the whole side (books hold thousands of levels)."""
        bids, asks = self.bids, self.asks
        return ([(p, bids[p]) for p in heapq.nlargest(depth, bids)],
                [(p, asks[p]) for p in heapq.nsmallest(depth, asks)])


class SymbolBook(Protocol):
    """What every venue's per-symbol book state offers, for reports and top-N snapshots."""

    instrument: str
    book: L2Book
    applied: int
    """Book messages applied."""
    breaks: int
    """Sequence breaks or checksum failures seen."""
    ts_event: int
    """Venue time of the last message applied."""

    @property
    def synced(self) -> bool:
        """The book is known to be right (a snapshot and every message since applied)."""

    @property
    def seq(self) -> int | None:
        """The venue's id of the last message applied, where it has one."""


def books_report(books: Mapping[str, SymbolBook]) -> dict[str, tuple[int, int, bool]]:
    """Per venue symbol: (messages applied, breaks, in sync)."""
    return {symbol: (state.applied, state.breaks, state.synced) for symbol, state in books.items()}


def books_tops(books: Mapping[str, SymbolBook], venue: str, depth: int, ts_recv: int) -> list[BookTop]:
    """Top-`depth` snapshot rows of every book in sync."""
    return [row for symbol, state in books.items() if state.synced
            for row in top_rows(state.book, depth, venue, symbol, state.instrument, state.ts_event, ts_recv,
                                state.seq)]


def top_rows(book: L2Book, depth: int, venue: str, symbol: str, instrument: str, ts_event: int, ts_recv: int,
             exch_seq: int | None) -> list[BookTop]:
    """A top-N snapshot of the book as BookTop rows: bids then asks, best first, LAST on the last."""
    flags = DERIVED | (MAYBE_BAD_BOOK if book.crossed() else 0)
    bids, asks = book.top(depth)
    rows = [BookTop(venue, symbol, instrument, ts_event, ts_recv, None, exch_seq, flags, side, level, price, size)
            for side, levels in ((1, bids), (-1, asks))
            for level, (price, size) in enumerate(levels, start=1)]
    if rows:
        rows[-1] = msgspec.structs.replace(rows[-1], flags=flags | LAST)
    return rows
