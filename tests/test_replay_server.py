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

            assert await status() == {"venue": "binance-usdm", "frames": len(frames), "played": 0, "clients": 0,
                                      "done": False}
            streams = "btcusdt@markPrice/btcusdt@markPrice@1s/btcbusd_210129@markPrice@1s/sushiusdt@aggTrade"
            async with websockets.connect(f"{server.url}/market/stream?streams={streams}") as ws:
                connected = time.monotonic()
                received, arrived = [], []
                while len(received) < len(fixtures) + len(sushi):
                    received.append((await asyncio.wait_for(ws.recv(), 20)).encode())
                    arrived.append(time.monotonic() - connected)
                while not (done := await status())["done"]:
                    await asyncio.sleep(0.05)
                assert done == {"venue": "binance-usdm", "frames": len(frames), "played": len(frames), "clients": 1,
                                "done": True}
    finally:
        await server.stop()
    assert received == fixtures + [f.payload for f in sushi]
    assert arrived[len(fixtures) - 1] < 1.0  # at once, not 51 years / 30 after 1970
    due = (sushi[-1].ts_recv - first_timed) / 1e9 / SPEED  # the capture's own pace from its first frame on
    assert due * 0.95 <= arrived[-1] < due + 10, (arrived[-1], due)
