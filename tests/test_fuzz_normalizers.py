"""No exception escapes a normalizer: mutated real frames of every venue and channel become dead
letters with a reason (or records, where they still mean something); and should a bug still raise,
the frame is a dead letter, the journal says so, the book resyncs, and live and offline runs go on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.fuzz import fuzz
from ingest.normalizing import normalize_frame
from ingest.offline import normalize_frames
from ingest.replay_server import ReplayServer
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from ingest.venues.registry import NORMALIZERS
from normalize.emitted import Emitted
from normalize.records import FeedStatus, Trade
from normalize.venues.binance_usdm import BinanceUsdm
from normalize.venues.binance_usdm.wire import DepthUpdate
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.captures import all_captures

FRAMES_PER_GROUP = 250
"""About 15,000 frames over every capture group in CI; `python -m benchmarks.fuzz_normalizers`
runs 100,000 and more."""


@pytest.mark.parametrize(("venue", "paths"), all_captures(),
                         ids=lambda v: v if isinstance(v, str) else "+".join(p.name[:30] for p in v))
def test_mutated_frames_never_raise(venue: str, paths: list[Path]) -> None:
    frames = list(read_frames(paths))
    escapes, out = fuzz(venue, NORMALIZERS[venue], frames, FRAMES_PER_GROUP, seed=hash(tuple(paths)) % 2**32)
    assert not escapes, [(e.where, e.exception, e.mutation) for e in escapes[:5]]
    assert all(letter.reason and letter.raw is not None and letter.venue == venue for letter in out.dead_letters)


class _BrokenOnSushi(BinanceUsdm):
    """Binance's normalizer with a bug: one SUSHIUSDT depth diff in a hundred raises mid-apply."""

    def _on_diff(self, diff: DepthUpdate, ts_recv: int, payload: bytes, out: Emitted) -> None:
        super()._on_diff(diff, ts_recv, payload, out)
        if diff.s == "SUSHIUSDT" and diff.u % 100 == 7:
            raise RuntimeError("a bug")


def test_an_escaping_exception_becomes_a_dead_letter_and_a_resync() -> None:
    frames = list(read_frames(CRYPTOFEED_RUN))
    normalizer, out = _BrokenOnSushi(), Emitted()
    for frame in frames:
        normalize_frame(normalizer, frame, out)
    failed = [d for d in out.dead_letters if d.reason.startswith("normalizer error RuntimeError at ")]
    assert failed and all("test_fuzz_normalizers.py" in d.reason and b"sushiusdt" in d.raw for d in failed)
    journal = [r for r in out.records if isinstance(r, FeedStatus)]
    assert sum(r.event == "normalizer_error" for r in journal) == len(failed)
    # the book whose diff failed half-way was reset and synced again from a snapshot; no other was
    assert {r.symbol for r in journal if r.event == "resync_start"} == {"SUSHIUSDT"}
    assert "SUSHIUSDT" in out.snapshot_requests
    # what the failing frames had produced is not published: each failed diff left no rows
    failed_u = {int(d.raw.split(b'"u":')[1].split(b",")[0]) for d in failed}
    assert not [r for r in out.records if r.symbol == "SUSHIUSDT" and r.exch_seq in failed_u]
    # trades are untouched
    assert sum(isinstance(r, Trade) for r in out.records) == 91


def test_offline_normalize_goes_on_past_a_failing_frame() -> None:
    """`ticklake normalize` used to abort on the first exception; now it finishes and reports."""
    out, _ = normalize_frames("binance-usdm", read_frames(CRYPTOFEED_RUN))
    assert not out.dead_letters
    NORMALIZERS["test-broken"] = _BrokenOnSushi  # type: ignore[assignment]
    try:
        broken, _ = normalize_frames("test-broken", read_frames(CRYPTOFEED_RUN))
    finally:
        del NORMALIZERS["test-broken"]
    assert broken.dead_letters and sum(isinstance(r, Trade) for r in broken.records) == 91


async def test_live_handler_journals_and_resyncs_and_carries_on() -> None:
    server = ReplayServer("binance-usdm", list(read_frames(CRYPTOFEED_RUN)), speed=20)
    await server.start()
    sink = CollectingSink()
    connection = BinanceUsdmConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                       channels=("aggTrade", "depth@100ms", "bookTicker"))
    handler = FeedHandler(connection, _BrokenOnSushi(), sink, None, HandlerConfig(poll_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.3)
    while not handler.idle():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    errors = [r for r in journal if r.event == "normalizer_error"]
    assert errors and len(errors) == sum(d.reason.startswith("normalizer error") for d in sink.emitted.dead_letters)
    assert {r.symbol for r in journal if r.event == "resync_done"} == {"SUSHIUSDT"}
    assert sum(isinstance(r, Trade) for r in sink.emitted.records) == 91
    assert handler.stats.snapshots > len(CRYPTOFEED_SYMBOLS)  # SUSHIUSDT's book was fetched again
