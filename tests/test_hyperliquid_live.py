"""The real feed handler against the replay server speaking Hyperliquid: every trade arrives
exactly once, across a dropped connection whose resubscription replays recent trades again; the
book ends as the venue's; REST metadata and funding come over POST /info; pings are answered."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import websockets

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.hyperliquid.connection import HyperliquidConnection
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import BookDelta, BookDeltas, FeedStatus, Funding, Instrument, Trade, expand
from normalize.venues.hyperliquid import Hyperliquid
from tests.hyperliquid_data import CAPTURE, META_FUNDING_CASSETTE

CAPTURES = [CAPTURE, META_FUNDING_CASSETTE]


async def _run(faults: Faults, capture_root: Path,
               captures: list[Path] = CAPTURES) -> tuple[CollectingSink, Hyperliquid, list[bytes]]:
    """Replay captures through the handler; returns what it emitted, its normalizer and every
    WebSocket frame it received (from its raw capture)."""
    server = ReplayServer("hyperliquid", list(read_frames(captures)), speed=20, faults=faults)
    await server.start()
    sink = CollectingSink()
    normalizer = Hyperliquid()
    connection = HyperliquidConnection(["BTC"], ws_base=server.url, rest_base=server.rest_url, ping_interval_s=0.2)
    capture = CaptureWriter(capture_root, "hyperliquid")
    handler = FeedHandler(connection, normalizer, sink, capture,
                          HandlerConfig(backoff_initial_s=0.05, stale_after_s=10, poll_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.3)
    while not handler.queue.empty():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    capture.close()
    received = [f.payload for path in list_captures(capture_root, "hyperliquid") for f in read_capture_log(path)
                if f.kind == "ws"]
    return sink, normalizer, received


def _capture_trades() -> list[str]:
    out, _ = normalize_frames("hyperliquid", read_frames([CAPTURE]))
    return [r.trade_id for r in out.records if isinstance(r, Trade)]


def _last_venue_book() -> tuple[dict[float, float], dict[float, float]]:
    last = [f for f in read_frames([CAPTURE]) if b'"channel":"l2Book"' in f.payload][-1]
    bids, asks = json.loads(last.payload)["data"]["levels"]
    return ({float(x["px"]): float(x["sz"]) for x in bids}, {float(x["px"]): float(x["sz"]) for x in asks})


def _received_tids(frames: list[bytes]) -> Counter[int]:
    return Counter(t["tid"] for f in frames if f.startswith(b'{"channel":"trades"') for t in json.loads(f)["data"])


async def test_every_trade_once_with_metadata_funding_and_pings(tmp_path: Path) -> None:
    sink, normalizer, received = await _run(Faults(), tmp_path)
    records = sink.emitted.records
    trades = [r.trade_id for r in records if isinstance(r, Trade)]
    assert sorted(trades) == sorted(_capture_trades()) and len(trades) == 64
    assert Counter(type(r).__name__ for r in records if isinstance(r, Instrument | Funding)) == {
        "Instrument": 28, "Funding": 1038}
    assert not sink.emitted.dead_letters
    state = normalizer.books["BTC"]
    assert (state.book.bids, state.book.asks) == _last_venue_book()
    journal = Counter(r.event for r in records if isinstance(r, FeedStatus))
    assert journal == {"connect": 1, "disconnect": 1}
    # the app-level pings were answered, and acknowledgements and pongs are no dead letters
    assert received.count(b'{"channel":"pong"}') >= 3
    assert sum(f.startswith(b'{"channel":"subscriptionResponse"') for f in received) == 4
    snapshots = [r for r in records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]
    assert len(snapshots) == 1 and not snapshots[0].flags & Flag.GAP_BEFORE


async def test_a_dropped_connection_replays_recent_trades_counted_once(tmp_path: Path) -> None:
    sink, normalizer, received = await _run(Faults(drop_after=20), tmp_path)
    records = sink.emitted.records
    journal = [r.event for r in records if isinstance(r, FeedStatus)]
    assert journal == ["connect", "disconnect", "connect", "disconnect"]
    # the second subscription's replay re-sent trades already received ...
    tids = _received_tids(received)
    assert max(tids.values()) == 2 and sum(n == 2 for n in tids.values()) >= 10
    # ... and each is normalized exactly once, none lost and no gap claimed (the replay overlapped)
    trades = [r for r in records if isinstance(r, Trade)]
    assert sorted(t.trade_id for t in trades) == sorted(_capture_trades())
    assert not any(t.flags & Flag.GAP_BEFORE for t in trades)
    # the resubscribed book restarts from a snapshot flagged GAP_BEFORE, and ends as the venue's
    snapshots = [r for r in records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]
    assert [bool(r.flags & Flag.GAP_BEFORE) for r in snapshots] == [False, True]
    assert all(r.flags & Flag.DEPTH_LIMITED for r in expand(records) if isinstance(r, BookDelta))
    state = normalizer.books["BTC"]
    assert (state.book.bids, state.book.asks) == _last_venue_book()
    assert not sink.emitted.dead_letters


async def test_a_ticklake_capture_replays_as_recorded_without_its_control_frames(tmp_path: Path) -> None:
    """The handler's own raw capture (acknowledgements, pongs and REST bodies included) normalizes
    offline to what the handler emitted live, and serves as a venue again: the recorded control
    frames answered the recorder and are not played to the next client."""
    live, _, _ = await _run(Faults(), tmp_path / "first")
    recorded = list_captures(tmp_path / "first", "hyperliquid")
    offline, _ = normalize_frames("hyperliquid", read_frames(recorded))
    assert not offline.dead_letters

    def content(records: list) -> list:
        return [(type(r).__name__, r.instrument, r.ts_event, r.ts_recv, r.flags) for r in records
                if not isinstance(r, FeedStatus)]

    assert content(offline.records) == content(live.emitted.records)
    again, normalizer, received = await _run(Faults(), tmp_path / "second", captures=recorded)
    assert sum(f.startswith(b'{"channel":"subscriptionResponse"') for f in received) == 4
    assert sorted(r.trade_id for r in again.emitted.records if isinstance(r, Trade)) == sorted(_capture_trades())
    assert len([r for r in again.emitted.records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]) == 1
    assert (normalizer.books["BTC"].book.bids, normalizer.books["BTC"].book.asks) == _last_venue_book()
    assert not again.emitted.dead_letters


async def test_resubscribing_a_book_resends_its_snapshot() -> None:
    """The resync path (snapshot_url None): the connection's resubscribe messages make the venue
    send the book again, which becomes a SNAPSHOT with GAP_BEFORE; the venue's refusals are dead
    letters."""
    frames = [f for f in read_frames([CAPTURE])]
    server = ReplayServer("hyperliquid", frames, speed=0)
    await server.start()
    connection = HyperliquidConnection(["BTC"], ws_base=server.url, channels=("l2Book",))
    normalizer, out = Hyperliquid(), Emitted()
    try:
        [route] = connection.routes()
        async with websockets.connect(route.url) as ws:
            for message in route.subscribe:
                await ws.send(message)
            await server.drained(timeout_s=20)
            await asyncio.sleep(0.1)
            for message in [*connection.resubscribe_messages("BTC"), *route.subscribe]:
                await ws.send(message)
            while True:
                try:
                    normalizer.on_ws(await asyncio.wait_for(ws.recv(decode=False), 0.5), 0, out)
                except TimeoutError:
                    break
    finally:
        await server.stop()
    snapshots = [r for r in out.records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]
    assert [bool(r.flags & Flag.GAP_BEFORE) for r in snapshots] == [False, True]
    assert (normalizer.books["BTC"].book.bids, normalizer.books["BTC"].book.asks) == _last_venue_book()
    assert [d.reason for d in out.dead_letters] == [
        'venue error: Already subscribed: {"type":"l2Book","coin":"BTC"}']
