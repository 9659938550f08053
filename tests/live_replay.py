"""Playing a capture to a venue's real FeedHandler through the in-process ReplayServer: one helper for
every venue's live test."""

from __future__ import annotations

import asyncio

from ingest.feed_handler import FeedHandler
from ingest.replay_server import ReplayServer


async def play(server: ReplayServer, handler: FeedHandler, timeout_s: float = 60, settle_s: float = 0.3) -> None:
    """Run the handler until the (started) server has sent every frame and, `settle_s` later, the handler
    is idle (no resync, backfill or publish pending); then stop both. `timeout_s` bounds the playing."""
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=timeout_s)
    await asyncio.sleep(settle_s)
    while not handler.idle():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
