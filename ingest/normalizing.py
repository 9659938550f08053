"""Feeding one frame to a normalizer, the one way the live handler, replays and offline runs do it.

Normalizers reject what they cannot read as dead letters with a reason (the fuzz in
tests/test_fuzz_normalizers.py holds them to it). Should an exception still escape one (a bug),
the frame is not lost and the feed does not stop: whatever the frame had produced is dropped, the
frame becomes a dead letter naming the exception and where it was raised, a `normalizer_error`
row goes to the journal, and every book the frame names is reset (its state may be half-updated)
and fetched again.
"""

from __future__ import annotations

import logging
import traceback

from ingest.frames import Frame
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus
from normalize.venues.interface import VenueNormalizer

log = logging.getLogger(__name__)


def normalize_frame(normalizer: VenueNormalizer, frame: Frame, out: Emitted) -> None:
    records, letters = len(out.records), len(out.dead_letters)
    try:
        if frame.kind == "ws":
            normalizer.on_ws(frame.payload, frame.ts_recv, out)
        else:
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    except Exception as exc:  # a normalizer bug: see the module docstring
        del out.records[records:]
        del out.dead_letters[letters:]
        last = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"normalizer error {type(exc).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}: {exc}"
        log.warning("%s: %s", normalizer.venue, reason)
        out.dead_letters.append(DeadLetter(normalizer.venue, frame.ts_recv, reason[:1000], frame.payload))
        out.records.append(FeedStatus(normalizer.venue, "", "", frame.ts_recv, frame.ts_recv, None, None,
                                      TS_EVENT_IMPUTED, "normalizer_error", normalizer.connection_id, reason[:500]))
        for symbol in normalizer.book_report():
            if symbol.encode() in frame.payload:
                normalizer.reset_book(symbol, frame.ts_recv, f"a frame of it failed: {reason}"[:500], out)
