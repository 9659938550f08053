"""Normalizing recorded frames offline, through the same normalizer the live handler uses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.frames import Frame
from ingest.normalizing import normalize_frame
from ingest.venues.registry import NORMALIZERS
from normalize.emitted import Emitted
from normalize.venues.interface import VenueNormalizer


@dataclass(frozen=True)
class TopSchedule:
    """Top-N book snapshots every `every_ns` of receive time (on the grid, so runs agree)."""

    depth: int
    every_ns: int


def normalize_frames(venue: str, frames: Iterable[Frame],
                     tops: TopSchedule | None = None) -> tuple[Emitted, VenueNormalizer]:
    """Feed frames in order; returns everything emitted and the normalizer (for its book state).

    With `tops`, the books are snapshotted at each grid time as of the frames received before
    it, exactly as the live handler's timer would have seen them.
    """
    normalizer = NORMALIZERS[venue]()
    out = Emitted()
    due: int | None = None
    for frame in frames:
        if tops is not None and frame.ts_recv:
            if due is None:
                due = (frame.ts_recv // tops.every_ns + 1) * tops.every_ns
            while frame.ts_recv >= due:
                normalizer.book_tops(tops.depth, due, out)
                due += tops.every_ns
        normalize_frame(normalizer, frame, out)
    return out, normalizer
