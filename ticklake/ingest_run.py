"""`ticklake ingest` and `ticklake replay-server`: composing handlers, capture and output.

Until the bus lands (the bus-and-sinks issue), `ingest` writes normalized records straight to
the lake layout: a file per record type, venue and day each time the buffer is flushed
(every `flush_s` seconds and at shutdown), named by the flush time so nothing is overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig, HandlerStats
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.binance_usdm import BinanceUsdmConnection
from normalize.emitted import Emitted
from normalize.venues.registry import NORMALIZERS
from storage.lake_write import write_records

CONNECTIONS = {"binance-usdm": BinanceUsdmConnection}


class LakeFlusher:
    """Buffers emitted records and writes them to the lake on flush()."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.buffer = CollectingSink()
        self.rows: dict[str, int] = {}
        self.dead_letters = 0

    def __call__(self, out: Emitted) -> None:
        self.buffer(out)

    def flush(self) -> None:
        records, self.buffer.emitted.records = self.buffer.emitted.records, []
        self.dead_letters += len(self.buffer.emitted.dead_letters)
        self.buffer.emitted.dead_letters = []
        if records:
            for record_type, rows in write_records(self.root, records, f"ingest-{time.time_ns()}").items():
                self.rows[record_type] = self.rows.get(record_type, 0) + rows


async def run_ingest(venue: str, symbols: Sequence[str], out: str, capture_root: Path | None,
                     ws_url: str | None, rest_url: str | None, duration_s: float | None,
                     flush_s: float = 5.0) -> tuple[LakeFlusher, HandlerStats]:
    overrides = {k: v for k, v in (("ws_base", ws_url), ("rest_base", rest_url)) if v}
    connection = CONNECTIONS[venue](symbols=list(symbols), **overrides)
    flusher = LakeFlusher(out)
    capture = CaptureWriter(capture_root, venue) if capture_root else None
    handler = FeedHandler(connection, NORMALIZERS[venue](), flusher, capture, HandlerConfig())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(handler.run(stop))
    started = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), flush_s)
            flusher.flush()
            if duration_s is not None and time.monotonic() - started >= duration_s:
                stop.set()
        await task
    finally:
        flusher.flush()
        if capture is not None:
            capture.close()
    return flusher, handler.stats


async def run_replay_server(venue: str, captures: Sequence[Path], port: int, speed: float, faults: Faults) -> None:
    server = ReplayServer(venue, list(read_frames(captures)), speed=speed, faults=faults, port=port)
    await server.start()
    print(f"replaying {len(server.ws_frames)} frames of {venue}: WebSocket {server.url}, REST {server.rest_url}",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
