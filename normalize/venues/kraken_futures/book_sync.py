"""Kraken Futures' per-product book state: `book_snapshot` starts it, then every `book` delta carries
the product's `seq` + 1 (the rule is applied in normalizer.py). The book keeps base units; the
contracts of each published level travel as its native size."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.venues.kraken_futures.instruments import Spec


@dataclass
class BookSync:
    """One product's book: waiting for a snapshot, or synced. A break resets this one only."""

    symbol: str
    instrument: str
    spec: Spec
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    gap_pending: bool = False
    """A break happened: the next snapshot is a resync (GAP_BEFORE, resync_done)."""
    seq: int | None = None
    """seq of the last message applied."""
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0
