"""Every bundled capture, grouped as a handler would have received it, for tests that sweep them all."""

from __future__ import annotations

from pathlib import Path

from ingest.capture_formats import CaptureFormatError, read_frames
from tests.pipelines_data import PARTS
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS
VENUE_DIRS = {"binance-usdm": "binance_usdm", "bybit": "bybit", "okx": "okx", "hyperliquid": "hyperliquid",
              "kraken": "kraken", "kraken-futures": "kraken_futures", "binance-spot": "binance_spot",
              "coinbase": "coinbase", "deribit": "deribit", "bitmex": "bitmex"}
RUNS: list[tuple[str, list[Path]]] = [
    ("deribit", [DATA / "deribit" / "rest_instruments+config.cryptofeed.DERIBIT.0.txt",
                 DATA / "deribit" / "ws_book_raw+ticker.cryptofeed.DERIBIT.ws.1.0.txt"]),
    ("bitmex", [DATA / "bitmex" / "rest_instrument_active+config.cryptofeed.BITMEX.0.txt",
                DATA / "bitmex" / "ws_orderBookL2+quote+trade.cryptofeed.BITMEX.ws.1.0.txt"]),
]
"""Recorded sessions outside the pipelines' lake, as a handler receives them: metadata then the WebSocket
(BitMEX's frames need the instruments' contract terms to become records at all)."""


def all_captures() -> list[tuple[str, list[Path]]]:
    """(venue, files) for every capture group of the pipelines' lake and every recorded session of RUNS
    (WebSocket frames with their REST metadata), and for every file of ticklake/recordings on its own."""
    groups = [(venue, list(paths)) for venue, paths in PARTS.values()] + RUNS
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
