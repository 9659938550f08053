"""Hyperliquid's per-coin book and trade-tape state (every l2Book message is the whole book; the
diff against the held book is taken in normalizer.py)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.records import Level
from normalize.venues.hyperliquid.wire import WsLevel


def level_changes(previous: dict[float, float], levels: list[WsLevel]) -> list[Level]:
    """The changes from `previous` to the side as `levels` has it: new or changed levels in the
    venue's order, then the removed ones with size 0."""
    side = {level.px: level.sz for level in levels if level.sz}
    get = previous.get
    changes: list[Level] = [(price, size) for price, size in side.items() if get(price) != size]
    if changes or len(side) != len(previous):  # else every level is unchanged and none left
        changes += [(price, 0.0) for price in previous if price not in side]
    return changes


@dataclass
class BookState:
    """One coin's book: the last snapshot, held as an L2Book (for tops and the derived BBO)."""

    symbol: str
    instrument: str
    book: L2Book = field(default_factory=L2Book)
    fresh: bool = True
    """The next snapshot is a subscription's first: it replaces the book."""
    applied: int = 0
    """Snapshots processed."""
    ts_event: int = 0
    breaks: int = 0
    """Resets after a frame of the coin could not be handled (snapshots carry no sequence or
    checksum to break)."""
    seq: None = None
    resyncing: bool = False
    """A reset was journaled: the next snapshot ends it with resync_done."""

    @property
    def synced(self) -> bool:
        return self.applied > 0


@dataclass
class Tape:
    """One coin's recent trade ids, to drop what a subscription's replay repeats."""

    symbol: str
    instrument: str
    seen: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)
    replay_pending: bool = False
    """A trades subscription was acknowledged: its next trades message is the replay."""
