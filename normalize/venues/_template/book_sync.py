"""The per-symbol book state the venue's sync rules run on: the book (normalize.book.L2Book), whether
it is in sync, the last sequence applied, breaks counted (normalize.book.books_report reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book


@dataclass
class BookSync:
    symbol: str
    instrument: str
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    seq: int | None = None
    breaks: int = 0
    applied: int = 0
    ts_event: int = 0
