"""The one interface every venue's normalizer implements.

A normalizer is fed raw frames in receive order and appends what they mean to an Emitted:
records, dead letters, and the symbols whose book needs a REST snapshot. It does no I/O, so
the same object runs live (behind a WebSocket handler), offline (`ticklake normalize`) and in
tests. Book state lives in it, per symbol, and is never shared between symbols.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from normalize.emitted import Emitted
from normalize.records import Trade


class VenueNormalizer(Protocol):
    @property
    def venue(self) -> str: ...

    connection_id: str
    """The connection the frames being fed came from ("offline" for captures without one): the
    journal rows the normalizer writes name it. The live handler sets it per frame."""

    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """One WebSocket frame (exact bytes) received at ts_recv (ns)."""

    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """One REST response body; `url` says which endpoint and symbol it answers."""

    def book_report(self) -> dict[str, tuple[int, int, bool]]:
        """Per venue symbol: (diffs applied, sequence breaks, in sync)."""

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        """The symbol's book may be wrong (handling a frame of it failed): journal a `gap` with the
        reason and a `resync_start`, stop publishing the book and ask for a fresh one. A book not
        in sync already, or unknown, is left as it is."""

    def book_tops(self, depth: int, ts_recv: int, out: Emitted) -> None:
        """Append a top-`depth` BookTop snapshot of every book in sync, taken at ts_recv."""

    def resume_trades(self, trades: Sequence[Trade], channels: Collection[str]) -> None:
        """Before the first frame: `trades` are the last ones published by a handler before this one
        (ingest.resume), `channels` the venue channels this one subscribes. A normalizer tracking trade
        id continuity carries on after them, so what was lost across the restart is one trade_gap,
        fetched again where the venue serves trades by id."""
