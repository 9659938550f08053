"""Every bundled capture, grouped as a handler would have received it, for tests that sweep them all."""

from __future__ import annotations

from pathlib import Path

from ingest.capture_formats import CaptureFormatError, read_frames
from tests.pipelines_data import PARTS
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS
VENUE_DIRS = {"binance-usdm": "binance_usdm", "bybit": "bybit", "okx": "okx", "hyperliquid": "hyperliquid",
              "kraken": "kraken", "kraken-futures": "kraken_futures", "binance-spot": "binance_spot",
              "coinbase": "coinbase"}


def all_captures() -> list[tuple[str, list[Path]]]:
    """(venue, files) for every capture group of the pipelines' lake (WebSocket frames with their
    REST metadata), and for every file of ticklake/recordings on its own."""
    groups = [(venue, list(paths)) for venue, paths in PARTS.values()]
    for venue, folder in VENUE_DIRS.items():
        groups += [(venue, [path]) for path in sorted((DATA / folder).iterdir()) if _is_capture(path)]
    return groups


def _is_capture(path: Path) -> bool:
    """Bodies kept for REST answers (rest_info_*.json) are not captures on their own."""
    try:
        next(iter(read_frames([path])), None)
    except CaptureFormatError:
        return False
    return True
