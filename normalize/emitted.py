"""What normalizing one frame produces: records, dead letters, and snapshot requests.

Normalizers are pure with respect to I/O: when a book needs a fresh REST snapshot they say so
here, and the caller (live handler or offline replay) decides how and when to fetch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from normalize.records import Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A frame that could not be normalized, with the reason and the exact bytes."""

    venue: str
    ts_recv: int
    reason: str
    raw: bytes


@dataclass(slots=True)
class Emitted:
    records: list[Record] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    snapshot_requests: set[str] = field(default_factory=set)
    """Venue symbols whose book needs a fresh REST snapshot."""
