"""Ids for venue events that come without one, derived from the venue message alone.

Venues publish no liquidation id, and one message may carry two liquidations identical in every
published field (Bybit's allLiquidation and OKX's liquidation-orders batch them). Numbering the
identical ones of a message 0, 1, ... in `exch_seq` makes each a record of its own under the key
(normalize.records.Liquidation), and two handlers receiving the same message number them alike.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from normalize.records import Liquidation


def number_repeats(records: list[Liquidation]) -> list[Liquidation]:
    """The message's liquidations with exch_seq = how many identical ones came before in it."""
    seen: Counter[tuple[str, int, int, float, float]] = Counter()
    out = []
    for record in records:
        identity = (record.instrument, record.ts_event, record.side, record.price, record.size)
        out.append(msgspec.structs.replace(record, exch_seq=seen[identity]))
        seen[identity] += 1
    return out


class SameTimeRepeats:
    """Numbers for events of one stream that share a venue time, where the venue publishes no sequence and
    can publish two events in one millisecond (BitMEX quotes, Deribit quotes): 0 for the first event at a
    time, 1 for the next one at that same time, and so on; 0 again once the time moves on. Two handlers
    fed the same messages number them alike; a handler that joins between two events of one millisecond
    numbers the second 0 (its key then holds a copy the stores keep once per handler, never a collision
    that would drop an event)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, int]] = {}

    def number(self, stream: str, ts_event: int) -> int:
        last = self.last.get(stream)
        repeat = last[1] + 1 if last is not None and last[0] == ts_event else 0
        self.last[stream] = (ts_event, repeat)
        return repeat
