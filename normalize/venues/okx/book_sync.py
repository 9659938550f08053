"""OKX's per-instrument book state (the seqId and checksum rules are applied in normalizer.py).

The book is a compiled `TextBook` (normalize/_l2book.c): OKX's checksum is a CRC32 of the best 25
bids and asks interleaved in the venue's own price and size strings, so every level's text is
kept and each side kept sorted; the book parses a message's raw levels, converts contracts to
base units (as `Contract.to_base` does, bit for bit) and computes the checksum, all in C.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import TextBook
from normalize.venues.okx.instruments import Contract

CHECKSUM_DEPTH = 25
"""OKX's checksum covers the best 25 levels of each side."""


@dataclass
class BookSync:
    """One instrument's book: waiting for a snapshot, or synced. A failure resets this one only."""

    symbol: str
    instrument: str
    contract: Contract | None
    book: TextBook = field(init=False)
    """Sizes in base units (the contract's, converted by the book); the text is the venue's."""
    synced: bool = False
    gap_pending: bool = False
    """A failure happened: the next snapshot is a resync (GAP_BEFORE, resync_done)."""
    seq: int | None = None
    """seqId of the last message applied (None where the venue sends none)."""
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0

    def __post_init__(self) -> None:
        self.book = TextBook(self.contract)
