"""The book bookkeeping every venue normalizer shares, apart from its venue's sync rules.

`SymbolBooks` answers VenueNormalizer's `book_report` and `book_tops` from the normalizer's
`books` (venue symbol -> its book state), the same way for every venue, and its `resume_trades` for
venues without trade id continuity. `ResubscribedBooks` adds,
for venues whose book messages carry a sequence and whose books are resynced by subscribing their
channel again (OKX, Kraken Futures), how a break is journaled and a book reset: the rules that say
*when* a book breaks stay in each venue's normalizer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar, Protocol

from normalize.book import BookView, SymbolBook, books_report, books_tops
from normalize.emitted import Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus, Trade


class SymbolBooks:
    """book_report and book_tops of a normalizer keeping one book state per venue symbol."""

    venue: str
    books: Mapping[str, SymbolBook]

    def book_report(self) -> dict[str, tuple[int, int, bool]]:
        return books_report(self.books)

    def book_tops(self, depth: int, ts_recv: int, out: Emitted) -> None:
        out.records.extend(books_tops(self.books, self.venue, depth, ts_recv))

    def resume_trades(self, trades: Sequence[Trade], channels: Collection[str]) -> None:
        """A venue whose trade ids do not count up by one cannot tell a restart's gap: nothing to do."""


class _ClearableBook(BookView, Protocol):
    def clear(self) -> None: ...


class SequencedSync(SymbolBook, Protocol):
    """The per-symbol book state a resync writes (each venue's BookSync dataclass)."""

    symbol: str
    instrument: str
    synced: bool
    gap_pending: bool
    """The next snapshot is a resync (GAP_BEFORE, resync_done)."""
    seq: int | None
    ts_event: int
    breaks: int

    @property
    def book(self) -> _ClearableBook: ...


class ResubscribedBooks(SymbolBooks):
    """A break journals a `gap` (or the event given) and a `resync_start`, forgets the book and asks
    the handler for a fresh one (it unsubscribes and subscribes the symbol's book channel)."""

    resync_detail: ClassVar[str]
    """The `resync_start` row's detail: how the venue is asked for a fresh book."""
    connection_id: str
    books: Mapping[str, SequencedSync]

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        sync = self.books.get(symbol)
        if sync is not None and sync.synced:
            self._break(sync, "gap", ts_recv, reason, sync.seq, None, sync.ts_event, out)

    def _break(self, sync: SequencedSync, event: str, ts_recv: int, detail: str, seq_from: int | None,
               seq_to: int | None, ts_event: int, out: Emitted) -> None:
        """This symbol's book is wrong or unknown: journal it, forget the book, ask for a snapshot."""
        sync.breaks += 1
        sync.synced = False
        sync.gap_pending = True
        sync.seq = None
        sync.book.clear()
        out.records.append(self._status(sync, event, ts_recv, detail, seq_from, seq_to, ts_event))
        out.records.append(self._status(sync, "resync_start", ts_recv, self.resync_detail))
        out.snapshot_requests.add(sync.symbol)

    def _status(self, sync: SequencedSync, event: str, ts_recv: int, detail: str, seq_from: int | None = None,
                seq_to: int | None = None, ts_event: int | None = None) -> FeedStatus:
        """A feed_status row of the symbol (ts_event imputed from ts_recv when not given)."""
        return FeedStatus(self.venue, sync.symbol, sync.instrument, ts_event or ts_recv, ts_recv, None, None,
                          0 if ts_event else TS_EVENT_IMPUTED, event, self.connection_id, detail, seq_from, seq_to)
