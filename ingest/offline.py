"""Normalizing recorded frames offline, through the same normalizer the live handler uses."""

from __future__ import annotations

from collections.abc import Iterable

from ingest.frames import Frame
from normalize.emitted import Emitted
from normalize.venues.interface import VenueNormalizer
from normalize.venues.registry import NORMALIZERS


def normalize_frames(venue: str, frames: Iterable[Frame]) -> tuple[Emitted, VenueNormalizer]:
    """Feed frames in order; returns everything emitted and the normalizer (for its book state)."""
    normalizer = NORMALIZERS[venue]()
    out = Emitted()
    for frame in frames:
        if frame.kind == "ws":
            normalizer.on_ws(frame.payload, frame.ts_recv, out)
        else:
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    return out, normalizer
