"""Binance spot's per-symbol book state: the USD-M state machine (buffer diffs, wait for a REST
snapshot, apply in sequence, resync one symbol on a break) with spot's own rules. Spot depth has no
`pu`, and a snapshot with lastUpdateId L is followed by the first diff with U <= L + 1 <= u, then
each diff's U must be the previous u + 1.
https://developers.binance.com/legacy-docs/binance-spot-api-docs/web-socket-streams (How to manage a local
order book correctly; checked 2026-12-07)."""

from __future__ import annotations

from dataclasses import dataclass

from normalize.venues.binance_spot.wire import MS, DepthUpdate
from normalize.venues.binance_usdm import book_sync as usdm


@dataclass
class BookSync(usdm.BookSync):
    @staticmethod
    def in_snapshot(diff: DepthUpdate, snapshot_id: int) -> bool:  # type: ignore[override]
        return diff.u <= snapshot_id

    @staticmethod
    def straddles(diff: DepthUpdate, snapshot_id: int) -> bool:  # type: ignore[override]
        return diff.U <= snapshot_id + 1

    def follows(self, diff: DepthUpdate) -> bool:  # type: ignore[override]
        return self.last_u is not None and diff.U == self.last_u + 1

    @staticmethod
    def times(diff: DepthUpdate) -> tuple[int, int | None]:  # type: ignore[override]
        """The event time E is the only time: ts_event, and no distinct send time."""
        return diff.E * MS, None

    @staticmethod
    def ids(diff: DepthUpdate) -> str:  # type: ignore[override]
        return f"U={diff.U} u={diff.u}"
