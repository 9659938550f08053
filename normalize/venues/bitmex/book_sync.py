"""BitMEX's per-symbol book state: the book, and the level ids that updates and deletes name (the id rules
are applied in normalizer.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.venues.bitmex.instruments import Spec


@dataclass
class BookSync:
    """One symbol's book: waiting for a partial, or synced. BitMEX sends no sequence number: an update or
    delete naming an id the book does not hold, an insert of an id it holds, or a level that changes side
    or price under its id, shows the book missed something; that is a break, and the symbol resyncs."""

    symbol: str
    spec: Spec
    book: L2Book = field(default_factory=L2Book)
    levels: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Level id -> (side, price): updates and deletes before 2023 carried no price."""
    synced: bool = False
    gap_pending: bool = False
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0

    @property
    def instrument(self) -> str:
        return self.spec.instrument

    @property
    def seq(self) -> None:
        return None
