"""Bybit's per-symbol book state (the u/seq rules are applied in normalizer.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.records import Level
from normalize.venues.bybit.instruments import Spec


# -- books ----------------------------------------------------------------------------------------
@dataclass
class BookSync:
    """Per-symbol book state: in sync (deltas applied while u continues) or waiting for a snapshot
    (deltas dropped: the snapshot Bybit sends on resubscription supersedes them)."""

    symbol: str
    spec: Spec
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    last_u: int = 0
    fresh: bool = False
    """No delta applied since the last snapshot: deltas already inside it (u <= its u) are dropped."""
    gap_pending: bool = False
    breaks: int = 0
    applied: int = 0
    ts_event: int = 0
    """Venue time of the last message applied to the book."""

    @property
    def instrument(self) -> str:
        return self.spec.instrument

    @property
    def seq(self) -> int:
        return self.last_u


def to_base(levels: list[Level], contract_size: float) -> tuple[list[Level], list[float]]:
    """Inverse levels: (price, contracts) -> (price, base units), and the contracts."""
    return [(price, size * contract_size / price) for price, size in levels], [size for _, size in levels]
