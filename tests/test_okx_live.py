"""The real OKX handler against the replay server: every record arrives, a corrupted checksum is
caught and resynced for that instrument alone by resubscribing its book, and a dropped
connection loses nothing it could have kept."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.okx.connection import OkxConnection
from ingest.venues.okx.replay import OkxReplay
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, Trade
from normalize.venues.okx import Okx
from normalize.venues.okx.book_sync import CHECKSUM_DEPTH
from tests.okx_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS

OTHERS = ("BTC-USD-220527", "BTC-USDT")


async def _run(faults: Faults, capture_root: Path | None = None,
               heartbeat_s: float = 25.0) -> tuple[CollectingSink, Okx, ReplayServer]:
    server = ReplayServer("okx", list(read_frames(CRYPTOFEED_RUN)), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), Okx()
    connection = OkxConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                               heartbeat_s=heartbeat_s)
    capture = CaptureWriter(capture_root, "okx") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture, HandlerConfig(backoff_initial_s=0.05))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.3)
    while not handler.queue.empty():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    if capture:
        capture.close()
    return sink, normalizer, server


def _offline_trades() -> set[str]:
    out, _ = normalize_frames("okx", read_frames(CRYPTOFEED_RUN))
    return {r.trade_id for r in out.records if isinstance(r, Trade)}


def _protocol(server: ReplayServer) -> OkxReplay:
    assert isinstance(server.protocol, OkxReplay)
    return server.protocol


def _snapshots(sink: CollectingSink) -> list[tuple[str, int]]:
    return [(r.symbol, r.flags & Flag.GAP_BEFORE) for r in sink.emitted.records
            if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]


async def test_every_trade_arrives_and_books_stay_in_sync(tmp_path: Path) -> None:
    sink, normalizer, server = await _run(Faults(), capture_root=tmp_path, heartbeat_s=0.1)
    trades = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert sorted(t.trade_id for t in trades) == sorted(_offline_trades()) and len(trades) == 74
    assert normalizer.book_report() == {"BTC-USD-220527": (98, 0, True), "UNI-USD-SWAP": (92, 0, True),
                                        "BTC-USDT": (97, 0, True)}
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 1,
                                                                                         "disconnect": 1}
    assert not sink.emitted.dead_letters
    assert _snapshots(sink) == [(symbol, 0) for symbol in CRYPTOFEED_SYMBOLS]
    # the text ping went out and its pongs were read and ignored; the raw capture holds every
    # recorded book and trade frame and the instruments bodies of the three instrument types
    assert _protocol(server).pings >= 3
    captured = [f for path in list_captures(tmp_path, "okx") for f in read_capture_log(path)]
    payloads = Counter(f.payload for f in captured if f.kind == "ws")
    recorded = [f.payload for f in server.ws_frames if b'"channel":"books"' in f.payload[:30]
                or b'"channel":"trades"' in f.payload[:30]]
    assert len(recorded) == 290 + 74 and all(payloads[p] for p in recorded)
    assert payloads[b"pong"] >= 3
    assert sorted(f.url.rsplit("=", 1)[-1] for f in captured if f.kind == "rest") == ["FUTURES", "SPOT", "SWAP"]


async def test_corrupted_checksum_resyncs_only_that_instrument() -> None:
    frames = [f for f in read_frames(CRYPTOFEED_RUN) if f.kind == "ws"]
    swap = [i for i, f in enumerate(frames) if b'"instId":"UNI-USD-SWAP"},"action":"update"' in f.payload]
    sink, normalizer, server = await _run(Faults(corrupt_checksum={swap[40]}))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert [(r.symbol, r.event) for r in journal if r.symbol] == [
        ("UNI-USD-SWAP", "checksum_failure"), ("UNI-USD-SWAP", "resync_start"), ("UNI-USD-SWAP", "resync_done")]
    # the other books were never reset: one snapshot each, no break, every update applied
    assert _snapshots(sink) == [(symbol, 0) for symbol in CRYPTOFEED_SYMBOLS] + [("UNI-USD-SWAP", Flag.GAP_BEFORE)]
    report = normalizer.book_report()
    assert {symbol: report[symbol] for symbol in OTHERS} == {"BTC-USD-220527": (98, 0, True),
                                                             "BTC-USDT": (97, 0, True)}
    applied, breaks, synced = report["UNI-USD-SWAP"]
    assert breaks == 1 and synced and 40 < applied < 92
    # nothing of the swap's book between the failure and the resync
    failed, done = (r.ts_recv for r in journal if r.event in ("checksum_failure", "resync_done"))
    assert not [r for r in sink.emitted.records if r.symbol == "UNI-USD-SWAP" and isinstance(r, BookDeltas | Bbo)
                and failed <= r.ts_recv < done]
    # and the book it rebuilt is the venue's: its last checksum matches the server's truth book
    book = normalizer.books["UNI-USD-SWAP"].book
    last = next(json.loads(f.payload) for f in reversed(frames) if b'"instId":"UNI-USD-SWAP"},"action"' in f.payload)
    assert book.checksum(CHECKSUM_DEPTH) == last["data"][0]["checksum"]
    truth = _protocol(server).books["UNI-USD-SWAP"]
    assert (set(book.bids), set(book.asks)) == ({float(p) for p in truth.bids}, {float(p) for p in truth.asks})
    assert sorted(r.trade_id for r in sink.emitted.records if isinstance(r, Trade)) == sorted(_offline_trades())
    assert not sink.emitted.dead_letters


async def test_dropped_connection_resubscribes_and_accounts_for_every_trade() -> None:
    sink, normalizer, server = await _run(Faults(drop_after=150))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert [r.event for r in journal] == ["connect", "disconnect", "connect", "disconnect"]
    # trades in flight when the connection dropped are lost, as on a venue; none arrives twice
    lost = Emitted()
    lost_normalizer = Okx(master=normalizer.master)
    for payload in server.undelivered:
        lost_normalizer.on_ws(payload, 0, lost)
    lost_trades = {r.trade_id for r in lost.records if isinstance(r, Trade)}
    received = [r.trade_id for r in sink.emitted.records if isinstance(r, Trade)]
    assert len(received) == len(set(received))
    assert set(received) | lost_trades == _offline_trades() and not set(received) & lost_trades
    # the new connection's subscriptions brought a snapshot of every book from the venue's truth
    # (GAP_BEFORE: updates were lost between), after which every checksum matched again
    assert _snapshots(sink) == [(symbol, 0) for symbol in CRYPTOFEED_SYMBOLS] + [
        (symbol, Flag.GAP_BEFORE) for symbol in CRYPTOFEED_SYMBOLS]
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert not sink.emitted.dead_letters


def test_connection_subscribes_by_instrument_type_and_resyncs_one_book() -> None:
    connection = OkxConnection(["BTC-USDT-SWAP", "BTC-USD-220527", "BTC-USDT", "ETH-USDT-SWAP"],
                               ws_base="ws://127.0.0.1:1", rest_base="http://127.0.0.1:1")
    [route] = connection.routes()
    assert (route.name, route.url, route.book_channel) == ("public", "ws://127.0.0.1:1/ws/v5/public", "books")
    args = [json.loads(m)["args"] for m in route.subscribe]
    assert len(args) == 1 and [json.loads(m)["op"] for m in route.subscribe] == ["subscribe"]
    channels: dict[str, list[str]] = {}
    for arg in args[0]:
        channels.setdefault(arg.get("instId") or arg["instType"], []).append(arg["channel"])
    assert channels == {
        "BTC-USDT-SWAP": ["trades", "books", "bbo-tbt", "funding-rate", "mark-price", "open-interest"],
        "BTC-USDT": ["index-tickers", "trades", "books", "bbo-tbt"],  # the swap's index, then the pair
        "SWAP": ["liquidation-orders"],
        "BTC-USD-220527": ["trades", "books", "bbo-tbt", "mark-price", "open-interest"],
        "BTC-USD": ["index-tickers"],
        "FUTURES": ["liquidation-orders"],
        "ETH-USDT-SWAP": ["trades", "books", "bbo-tbt", "funding-rate", "mark-price", "open-interest"],
        "ETH-USDT": ["index-tickers"],
    }
    assert [json.loads(m) for m in connection.resubscribe_messages("BTC-USDT")] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}]
    assert connection.snapshot_url("BTC-USDT") is None and connection.heartbeat() == (25.0, "ping")
    assert connection.metadata_urls() == [f"http://127.0.0.1:1/api/v5/public/instruments?instType={kind}"
                                           for kind in ("SWAP", "FUTURES", "SPOT")]
    many = OkxConnection([f"C{i}-USDT-SWAP" for i in range(30)])
    assert [len(json.loads(m)["args"]) for m in many.routes()[0].subscribe] == [100, 100, 11]  # 30 x 7 + 1
