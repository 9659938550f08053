"""Coinbase's per-product book state. A book is in sync from the snapshot the venue sends when
`level2` is subscribed until something breaks it: an update that does not read, or (Advanced Trade)
a `sequence_num` gap on its connection. Then it waits for the snapshot of a resubscription.

Neither protocol numbers book messages per product: the Exchange's level2 carries no sequence, and
Advanced Trade's `sequence_num` counts a connection's messages (two receivers see different ones).
So `exch_seq` of a book message numbers the product's messages sharing one venue time 0, 1, ...
(the Exchange sends one level per l2update, often several with the same microsecond): with
ts_event it tells every message apart, and every receiver of the stream numbers them alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.venues.coinbase.instruments import Contract


@dataclass
class SameTime:
    """Numbers consecutive messages of one product that share a venue time: 0, 1, ..."""

    ts: int = -1
    n: int = 0

    def next(self, ts: int) -> int:
        if ts == self.ts:
            self.n += 1
        else:
            self.ts, self.n = ts, 0
        return self.n


@dataclass
class BookSync:
    symbol: str
    instrument: str
    contract: Contract | None
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    gap_pending: bool = False
    """A break happened: the next snapshot is a resync (GAP_BEFORE, resync_done)."""
    same_time: SameTime = field(default_factory=SameTime)
    seq: int | None = None
    """exch_seq of the last message applied (see the module docstring)."""
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0
