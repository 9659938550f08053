"""WebSocket client receive rates: websockets vs aiohttp, and the feed handler's own read loop.

A server in a separate process pushes the real depth and trade frames of the hftbacktest
BTCUSDT capture as fast as TCP allows; each client reads N frames, in one run, on the same
frames. `handler loop` is FeedHandler's reader (stale timeout, stop check, bounded queue) on
the websockets client, so its gap to the bare client is the handler's own cost per frame.
Run: `python -m benchmarks.bench_ws [--frames N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable

import aiohttp
import websockets
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.bench_normalize import DEPTH
from ingest.capture_formats import read_capture
from ingest.feed_handler import FeedHandler, HandlerConfig, _Link
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from normalize.venues.binance_usdm import BinanceUsdm


def _serve(port_out: multiprocessing.connection.Connection, frames: list[bytes], count: int) -> None:
    async def push(ws: ServerConnection) -> None:
        for i in range(count):
            await ws.send(frames[i % len(frames)])
        await ws.wait_closed()

    async def main() -> None:
        async with serve(push, "127.0.0.1", 0, compression=None, max_size=None) as server:
            port_out.send(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


async def websockets_client(url: str, count: int) -> None:
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        for _ in range(count):
            await ws.recv(decode=False)


async def aiohttp_client(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=0, max_msg_size=0) as ws:
        for _ in range(count):
            await ws.receive_bytes()


async def handler_loop(url: str, count: int) -> None:
    connection = BinanceUsdmConnection(["BTCUSDT"])
    handler = FeedHandler(connection, BinanceUsdm(), lambda out: None, config=HandlerConfig(queue_size=count + 1))
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        stop = asyncio.Event()
        link = _Link(connection.routes()[0], connection_id="bench", ws=ws)
        reader = asyncio.create_task(handler._read(link, stop))
        while handler.stats.frames < count:
            await asyncio.sleep(0.01)
        stop.set()
        await reader


def rate(client: Callable[[str, int], Awaitable[None]], frames: list[bytes], count: int) -> float:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_serve, args=(sender, frames, count), daemon=True)
    server.start()
    try:
        url = f"ws://127.0.0.1:{receiver.recv()}/"
        start = time.perf_counter()
        asyncio.run(client(url, count))
        return count / (time.perf_counter() - start)
    finally:
        server.kill()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frames = [f.payload for f in read_capture(DEPTH) if f.kind == "ws"]
    size = sum(map(len, frames)) / len(frames)
    clients = (("websockets", websockets_client), ("aiohttp", aiohttp_client), ("handler loop", handler_loop))
    rates = {name: max(rate(client, frames, args.frames) for _ in range(args.repeat)) for name, client in clients}
    base = rates["websockets"]
    print(f"{args.frames:,} frames of {size:,.0f} B on average (real Binance depth and trades)")
    print(f"{'client':<14}{'frames/s':>12}{'vs websockets':>15}{'MB/s':>8}")
    for name, value in rates.items():
        print(f"{name:<14}{value:>12,.0f}{value / base:>14.2f}x{value * size / 1e6:>8.1f}")


if __name__ == "__main__":
    main()
