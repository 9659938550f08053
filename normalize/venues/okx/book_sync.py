"""OKX's per-instrument book state and its checksum (the seqId and checksum rules are applied in
normalizer.py)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from normalize.sorted_book import SortedBook
from normalize.venues.okx.instruments import Contract

CHECKSUM_DEPTH = 25


def checksum(book: SortedBook) -> int:
    """OKX's book checksum: CRC32 of the best 25 bids and asks interleaved, signed 32-bit."""
    bids, asks = book.top_text(CHECKSUM_DEPTH)
    both = min(len(bids), len(asks))
    parts = [""] * (2 * both)
    parts[0::2] = bids[:both]
    parts[1::2] = asks[:both]
    parts += bids[both:] or asks[both:]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 0x100000000 if crc & 0x80000000 else crc


@dataclass
class BookSync:
    """One instrument's book: waiting for a snapshot, or synced. A failure resets this one only."""

    symbol: str
    instrument: str
    contract: Contract | None
    book: SortedBook = field(default_factory=SortedBook)
    synced: bool = False
    gap_pending: bool = False
    """A failure happened: the next snapshot is a resync (GAP_BEFORE, resync_done)."""
    seq: int | None = None
    """seqId of the last message applied (None where the venue sends none)."""
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0
