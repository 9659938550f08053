"""Kraken spot's per-pair book state and its checksum (the rules are applied in normalizer.py).

Kraken's CRC32 covers the top 10 asks (low to high) then the top 10 bids (high to low), each level
as its price then its quantity in Kraken's own text with the `.` removed and leading zeros
stripped, concatenated, as an unsigned 32-bit value; the same in v1 (updates only, `c` in the
last dict) and v2 (snapshot and updates). The book is kept to the subscribed depth: after every
message the levels beyond it are dropped, as Kraken sends no delete for a level pushed out.
https://docs.kraken.com/exchange/guides/websockets/book-checksum-v1.md,
https://docs.kraken.com/exchange/guides/websockets/book-checksum-v2.md (checked 2026-12-07)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from normalize.records import Level
from normalize.sorted_book import SortedBook

CHECKSUM_DEPTH = 10


class KrakenBook(SortedBook):
    """A SortedBook (levels with the venue's text) that can be cut to a depth."""

    __slots__ = ()

    def truncate(self, depth: int) -> tuple[list[Level], list[Level]]:
        """Drop the levels beyond `depth` on each side; returns them as (price, 0) deletions."""
        bids: list[Level] = []
        asks: list[Level] = []
        extra = len(self.bid_prices) - depth
        if extra > 0:
            for price in self.bid_prices[:extra][::-1]:
                del self.bids[price], self.bid_text[price]
                bids.append((price, 0.0))
            del self.bid_prices[:extra]
        if len(self.ask_prices) > depth:
            for price in self.ask_prices[depth:]:
                del self.asks[price], self.ask_text[price]
                asks.append((price, 0.0))
            del self.ask_prices[depth:]
        return bids, asks


_DIGITS: dict[str, str] = {}
"""A level's checksum digits by its "price:size" text: the top 10 levels change little from one
message to the next, so most are found here (the cache is emptied when it grows past 100,000)."""


def _digits(level: str) -> str:
    digits = _DIGITS.get(level)
    if digits is None:
        if len(_DIGITS) > 100_000:
            _DIGITS.clear()
        price, _, qty = level.partition(":")
        digits = _DIGITS[level] = price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")
    return digits


def checksum(book: SortedBook) -> int:
    """Kraken's book checksum of the book as it is now (unsigned)."""
    bids, asks = book.top_text(CHECKSUM_DEPTH)
    return zlib.crc32("".join([_digits(level) for level in asks + bids]).encode())


@dataclass
class BookSync:
    """One pair's book: waiting for a snapshot, or synced. A failure resets this one only."""

    symbol: str
    instrument: str
    depth: int
    """The subscribed depth the book is kept to."""
    book: KrakenBook = field(default_factory=KrakenBook)
    synced: bool = False
    gap_pending: bool = False
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0
    checksums: int = 0
    """Checksums compared (and matched) since the first snapshot."""

    @property
    def seq(self) -> int | None:
        """Kraken's books carry no sequence number."""
        return None
