"""The per-symbol L2 order book every venue's normalizer keeps, and what is read from it.

`L2Book` is compiled (normalize/_l2book.c): price -> size per side in a hash table with a lazily
cleaned heap for the best price, and `apply_json` parses a message's raw JSON levels and applies
them in one call. In Python the same work cost about 20 us per Binance depth@0ms message (68
levels), a quarter of what the depth benchmark asks for; see the C file for the design.

`TextBook` (same file) is the book of a venue whose checksum covers its best levels in its own
text (OKX): each side sorted, each level's price and size strings kept, contract sizes converted
to base units and the checksum computed in C. Its Python predecessor (sorted lists and a dict of
text per side, still `normalize.sorted_book.SortedBook` for Kraken spot) held OKX to 1.7x
cryptofeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from normalize._l2book import L2Book, TextBook
from normalize.flags import DERIVED, LAST, MAYBE_BAD_BOOK
from normalize.records import BookTop

__all__ = ["L2Book", "SymbolBook", "TextBook", "books_report", "books_tops", "top_rows"]


class BookView(Protocol):
    """What top-N snapshots read from a book (L2Book, TextBook, or Kraken's SortedBook)."""

    def crossed(self) -> bool: ...

    def top(self, depth: int, /) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]: ...


class SymbolBook(Protocol):
    """What every venue's per-symbol book state offers, for reports and top-N snapshots (read-only
    members: each venue keeps them as it likes, a dataclass field or a property)."""

    @property
    def instrument(self) -> str: ...

    @property
    def applied(self) -> int:
        """Book messages applied."""

    @property
    def breaks(self) -> int:
        """Sequence breaks or checksum failures seen."""

    @property
    def ts_event(self) -> int:
        """Venue time of the last message applied."""

    @property
    def book(self) -> BookView:
        """The book (read-only here, so each venue's state may hold its own book type)."""

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


def top_rows(book: BookView, depth: int, venue: str, symbol: str, instrument: str, ts_event: int, ts_recv: int,
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
