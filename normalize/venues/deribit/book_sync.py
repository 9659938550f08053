"""Deribit's per-instrument book state (the change_id rules are applied in normalizer.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.records import Level
from normalize.venues.deribit.instruments import Spec
from normalize.venues.deribit.wire import Level as WireLevel


@dataclass
class BookSync:
    """One instrument's book: waiting for a snapshot, or synced (every change since applied, each
    naming the last one's change_id as its prev_change_id). A break resets this one only."""

    symbol: str
    spec: Spec
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    gap_pending: bool = False
    """A break happened: the next snapshot is a resync (GAP_BEFORE, resync_done)."""
    change_id: int | None = None
    """change_id of the last message applied."""
    ts_event: int = 0
    snapshots: int = 0
    applied: int = 0
    breaks: int = 0

    @property
    def instrument(self) -> str:
        return self.spec.instrument

    @property
    def seq(self) -> int | None:
        return self.change_id


_ACTIONS = frozenset(("new", "change"))


def levels(side: list[WireLevel], inverse: bool) -> tuple[list[Level], list[float] | None]:
    """A side's [action, price, amount] entries as (price, size) pairs in base units (amount / price for
    inverse books, whose USD amounts are returned as the native sizes); `delete` sets size 0."""
    pairs = []
    for action, price, amount in side:
        if action == "delete":
            amount = 0.0
        elif action not in _ACTIONS:
            raise ValueError(f"unknown book action {action!r}")
        pairs.append((price, amount))
    if not inverse:
        return pairs, None
    return [(price, amount / price if amount else 0.0) for price, amount in pairs], [amount for _, amount in pairs]
