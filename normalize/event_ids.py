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
