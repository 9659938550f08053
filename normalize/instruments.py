"""Which instrument records of a metadata body to publish: the ones that say something new.

Handlers fetch each venue's metadata at start and again every hour (`HandlerConfig.
metadata_every_s`). Publishing every instrument each time would fill the instrument table with
copies; publishing only changes would leave a day's lake partition without the terms that held
on it. So an instrument is published when its terms (everything but the times, sequence and
flags) differ from the last published, or when that was on an earlier UTC day (by ts_recv):
each day holds every instrument's terms as of its first fetch that day, then each change.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from normalize.records import Instrument

DAY_NS = 86_400 * 10**9
_NOT_TERMS = {"ts_event", "ts_recv", "ts_exch", "exch_seq", "flags"}
_TERMS = tuple(name for name in Instrument.__struct_fields__ if name not in _NOT_TERMS)


def _terms(record: Instrument) -> bytes:
    """The terms as bytes, so a NaN tick size (absent from the body) equals itself."""
    return msgspec.msgpack.encode([getattr(record, name) for name in _TERMS])


class InstrumentLog:
    """The last published instrument record per venue symbol: the instrument master as of now."""

    def __init__(self) -> None:
        self.latest: dict[str, Instrument] = {}
        self._terms: dict[str, bytes] = {}

    def news(self, records: Iterable[Instrument]) -> list[Instrument]:
        """The records to publish (see the module docstring); they become the latest."""
        out = []
        for record in records:
            terms = _terms(record)
            last = self.latest.get(record.symbol)
            if (last is not None and self._terms[record.symbol] == terms
                    and last.ts_recv // DAY_NS == record.ts_recv // DAY_NS):
                continue
            self.latest[record.symbol] = record
            self._terms[record.symbol] = terms
            out.append(record)
        return out
