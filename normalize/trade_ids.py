"""Trade id continuity, for channels whose trade ids count up by one per symbol (Binance's aggregate
trade ids): a frame lost on the way (a reconnect, a full queue) shows as a jump in the ids, is
journaled as a gap, and the missing trades are asked for again over REST where the venue serves
them by id. Pure state; the normalizer journals and emits, the handler fetches.
"""

from __future__ import annotations

from typing import NamedTuple

Ids = tuple[int, int]
"""(first, last) trade ids, inclusive."""


class Backfill(NamedTuple):
    """Trades a normalizer found missing and wants fetched again: ids first_id..last_id of one
    symbol on one venue channel (the venue's own name, e.g. aggTrade)."""

    symbol: str
    channel: str
    first_id: int
    last_id: int


def _without(ranges: list[Ids], first_id: int, last_id: int) -> list[Ids]:
    return [r for first, last in ranges
            for r in ((first, min(last, first_id - 1)), (max(first, last_id + 1), last)) if r[0] <= r[1]]


class TradeIds:
    """Per symbol on one channel: the last trade id seen, the gaps journaled and not yet settled,
    and the ids in them still missing."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.last: dict[str, int] = {}
        """Highest id seen per symbol: read and set by the normalizer's hot path directly."""
        self.gaps: dict[str, list[Ids]] = {}
        self.missing: dict[str, list[Ids]] = {}

    def resume(self, symbol: str, trade_id: int) -> None:
        """Carry on after `trade_id`, the last one a handler before this one published (ingest.resume):
        the first trade received after it is then either the next or a jump, journaled and backfilled."""
        self.last[symbol] = max(self.last.get(symbol, trade_id), trade_id)

    def jumped(self, symbol: str, trade_id: int) -> Backfill | None:
        """A trade whose id is not the one after the last: the gap it skipped, now missing, or None
        for an id at or below the last (sent again, or filling a hole: see `take`)."""
        last = self.last[symbol]
        if trade_id <= last:
            return None
        self.last[symbol] = trade_id
        gap = (last + 1, trade_id - 1)
        self.gaps.setdefault(symbol, []).append(gap)
        self.missing.setdefault(symbol, []).append(gap)
        return Backfill(symbol, self.channel, *gap)

    def take(self, symbol: str, trade_id: int) -> bool:
        """Mark a missing id received; False if it was not missing (a repeat)."""
        ranges = self.missing.get(symbol, [])
        if not any(first <= trade_id <= last for first, last in ranges):
            return False
        ranges[:] = _without(ranges, trade_id, trade_id)
        return True

    def gap_of(self, symbol: str, trade_id: int) -> Ids | None:
        """The unsettled gap holding this id."""
        return next((gap for gap in self.gaps.get(symbol, []) if gap[0] <= trade_id <= gap[1]), None)

    def still_missing(self, symbol: str, gap: Ids) -> list[Ids]:
        first_id, last_id = gap
        return [(max(first, first_id), min(last, last_id)) for first, last in self.missing.get(symbol, [])
                if first <= last_id and last >= first_id]

    def give_up(self, symbol: str, first_id: int, last_id: int) -> None:
        """Stop waiting for these ids (the venue has not got them)."""
        self.missing[symbol] = _without(self.missing.get(symbol, []), first_id, last_id)

    def settle(self, symbol: str, gap: Ids) -> None:
        """The gap is done with: every id in it received or given up."""
        self.gaps[symbol].remove(gap)
