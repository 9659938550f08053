"""Binance USD-M's per-symbol book state for the U/u/pu sync rules (the rules are applied in
normalizer.py)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from normalize.book import L2Book
from normalize.venues.binance_usdm.wire import MS, DepthUpdate

MAX_BUFFERED_DIFFS = 10_000


@dataclass
class BookSync:
    """Per-symbol book state machine for the U/u/pu rules.

    States: waiting for a snapshot (diffs buffered), or synced (diffs applied). A break anywhere
    sends this symbol alone back to waiting; other symbols are untouched.
    """

    symbol: str
    instrument: str
    book: L2Book = field(default_factory=L2Book)
    synced: bool = False
    last_u: int | None = None
    buffered: deque[tuple[DepthUpdate, int, bytes]] = field(default_factory=deque)
    """(diff, ts_recv, frame) received while waiting for a snapshot."""
    gap_pending: bool = False
    snapshot_id: int | None = None
    breaks: int = 0
    applied: int = 0
    ts_event: int = 0
    """Venue time of the last message applied to the book."""
    seq: int | None = None
    """Update id of the last message applied."""

    # The venue's sync rules, one small method each: Binance spot's differ in each (no `pu`, the
    # snapshot counts from lastUpdateId + 1), so its BookSync overrides them and nothing else.
    @staticmethod
    def in_snapshot(diff: DepthUpdate, snapshot_id: int) -> bool:
        """The diff is already contained in a snapshot taken at lastUpdateId `snapshot_id`."""
        return diff.u < snapshot_id

    @staticmethod
    def straddles(diff: DepthUpdate, snapshot_id: int) -> bool:
        """A diff not in the snapshot may be the first applied after it: U <= lastUpdateId <= u, the
        venue's rule, or pu == lastUpdateId, the snapshot taken right after the diff before this one.
        The rule alone needs that diff buffered; a capture (or a synthetic market) that starts
        with the snapshot has none, and its book would never sync."""
        return diff.U <= snapshot_id or diff.pu == snapshot_id

    def follows(self, diff: DepthUpdate) -> bool:
        """The diff continues the last one applied: its `pu` is that one's `u`."""
        return diff.pu == self.last_u

    @staticmethod
    def times(diff: DepthUpdate) -> tuple[int, int | None]:
        """(ts_event, ts_exch) of a diff: transaction time T, send time E."""
        return diff.T * MS, diff.E * MS

    @staticmethod
    def ids(diff: DepthUpdate) -> str:
        """The diff's ids, for the journal."""
        return f"U={diff.U} pu={diff.pu}"
