"""The replay server with JSONL fixture frames (no receive time) merged into a timed capture: the
fixtures play at once, first, and the capture keeps its own pace; `GET /_replay` reports the progress
that `ticklake demo` follows."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import websockets

from ingest.capture_formats import read_frames
from ingest.replay_server import ReplayServer
from tests.binance_data import CRYPTOFEED_WS, DATA

FIXTURE = DATA / "markPriceUpdate.tardis-fixture.jsonl"
SPEED = 30.0


async def test_fixtures_play_first_and_the_capture_keeps_its_pace() -> None:
    frames = list(read_frames([FIXTURE, CRYPTOFEED_WS]))
    fixtures = [f.payload for f in frames if f.ts_recv == 0]
    sushi = [f for f in frames if f.payload.startswith(b'{"stream":"sushiusdt@aggTrade"')]
    first_timed = next(f.ts_recv for f in frames if f.ts_recv)
    assert len(fixtures) == 3 and len(sushi) == 40
    server = ReplayServer("binance-usdm", frames, speed=SPEED)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async def status() -> dict[str, object]:
                async with http.get(f"{server.rest_url}/_replay") as response:
                    return dict(await response.json())

            assert await status() == {"venue": "binance-usdm", "frames": len(frames), "played": 0, "max_late_s": 0.0,
                                      "clients": 0, "done": False}
            streams = "btcusdt@markPrice/btcusdt@markPrice@1s/btcbusd_210129@markPrice@1s/sushiusdt@aggTrade"
            async with websockets.connect(f"{server.url}/market/stream?streams={streams}") as ws:
                connected = time.monotonic()
                received, arrived = [], []
                while len(received) < len(fixtures) + len(sushi):
                    received.append((await asyncio.wait_for(ws.recv(), 20)).encode())
                    arrived.append(time.monotonic() - connected)
                while not (done := await status())["done"]:
                    await asyncio.sleep(0.05)
                assert float(done.pop("max_late_s")) >= 0  # type: ignore[arg-type]  # how late: load-dependent
                assert done == {"venue": "binance-usdm", "frames": len(frames), "played": len(frames), "clients": 1,
                                "done": True}
    finally:
        await server.stop()
    assert received == fixtures + [f.payload for f in sushi]
    assert arrived[len(fixtures) - 1] < 1.0  # at once, not 51 years / 30 after 1970
    due = (sushi[-1].ts_recv - first_timed) / 1e9 / SPEED  # the capture's own pace from its first frame on
    assert due * 0.95 <= arrived[-1] < due + 10, (arrived[-1], due)


async def test_recorded_clock_keeps_the_captures_receive_times() -> None:
    """`--clock recorded`: each frame reaches the handler with the receive time the capture recorded
    (the replay server sends it in front of the frame; only a handler that asked gets it), so
    replayed records carry the capture's own ts_recv, and REST answers the playback position's."""
    from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
    from ingest.offline import normalize_frames
    from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
    from normalize.records import BookDeltas, Trade
    from normalize.venues.binance_usdm import BinanceUsdm
    from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS

    frames = list(read_frames(CRYPTOFEED_RUN))
    server = ReplayServer("binance-usdm", frames, speed=SPEED)
    await server.start()
    sink = CollectingSink()
    connection = BinanceUsdmConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                       channels=("aggTrade", "depth@100ms", "bookTicker"))
    handler = FeedHandler(connection, BinanceUsdm(), sink, None, HandlerConfig(clock="recorded", poll_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.3)
    while not handler.idle():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    offline, _ = normalize_frames("binance-usdm", frames)
    recorded = {t.trade_id: t.ts_recv for t in offline.records if isinstance(t, Trade)}
    live = {t.trade_id: t.ts_recv for t in sink.emitted.records if isinstance(t, Trade)}
    assert live == recorded and len(live) == 91
    first, last = min(f.ts_recv for f in frames if f.ts_recv), max(f.ts_recv for f in frames)
    snapshots = [r for r in sink.emitted.records if isinstance(r, BookDeltas) and r.flags & 32]
    assert snapshots and all(first <= r.ts_recv <= last for r in snapshots)
