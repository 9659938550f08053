"""The REST side of the venues whose only REST answers are their instrument lists (OKX, Kraken spot and
Kraken Futures): one body in, the instrument records it makes new or changes out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import msgspec

from normalize.emitted import DeadLetter, Emitted
from normalize.instruments import InstrumentLog
from normalize.records import Instrument


def on_instruments_rest(venue: str, endpoint: str, load: Callable[[bytes, int], Iterable[Instrument]],
                        log: InstrumentLog, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
    """`load` reads a body of the URL path ending in `endpoint` (the venue's instrument master, which
    keeps what the books need); the log passes on the records that are news. A body of another endpoint,
    or one `load` cannot read, becomes a dead letter."""
    path = urlsplit(url).path
    if not path.endswith(endpoint):
        out.dead_letters.append(DeadLetter(venue, ts_recv, f"unknown REST endpoint {path}", payload))
        return
    try:
        out.records.extend(log.news(load(payload, ts_recv)))
    except (msgspec.DecodeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: OverflowError too
        out.dead_letters.append(DeadLetter(venue, ts_recv, f"undecodable REST body from {url}: {exc}", payload))
