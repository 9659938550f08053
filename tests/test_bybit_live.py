"""The real feed handler against the replay server speaking Bybit v5: subscriptions by message,
the application-level ping, every record of the capture, and a skipped delta resynced for that
symbol by resubscribing its book topic over the socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from decimal import Decimal

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.bybit.connection import BybitConnection
from normalize.flags import Flag
from normalize.records import BookDeltas, FeedStatus, Funding, Liquidation, MarkIndex, OpenInterest, Trade
from normalize.venues.bybit import Bybit
from normalize.venues.bybit.book_sync import BookSync
from tests.bybit_data import LINEAR_FIXTURES, OB500

SYMBOLS = ["XRPUSDT", "LTCUSDT", "BTCUSDT", "PIPPINUSDT"]
FIRST_U, LAST_U = 20254869, 20254918


async def _run(captures: list, faults: Faults, heartbeat_s: float = 20.0,
               linger_s: float = 0.0) -> tuple[CollectingSink, Bybit, ReplayServer, FeedHandler]:
    server = ReplayServer("bybit", list(read_frames(captures)), speed=0, faults=faults)
    await server.start()
    sink = CollectingSink()
    normalizer = Bybit()
    connection = BybitConnection(SYMBOLS, ws_base=server.url, rest_base=server.rest_url, book_depth=500,
                                 heartbeat_s=heartbeat_s)
    handler = FeedHandler(connection, normalizer, sink, None,
                          HandlerConfig(backoff_initial_s=0.05, poll_interval_s=3600, resubscribe_retry_s=0.5))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (handler.queue.empty() and _book(normalizer).last_u == LAST_U):
        await asyncio.sleep(0.02)
    await asyncio.sleep(linger_s)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    return sink, normalizer, server, handler


def _book(normalizer: Bybit) -> BookSync:
    return normalizer.books.get("XRPUSDT") or BookSync("XRPUSDT", normalizer.master.spec("XRPUSDT"))


def _assert_book_is_the_truth(normalizer: Bybit, server: ReplayServer) -> None:
    truth = server.protocol.books["XRPUSDT"]  # type: ignore[attr-defined]
    sync = _book(normalizer)
    assert sync.synced and sync.last_u == truth.u == LAST_U
    assert sync.book.bids == {float(Decimal(p)): float(Decimal(q)) for p, q in truth.bids.items()}
    assert sync.book.asks == {float(Decimal(p)): float(Decimal(q)) for p, q in truth.asks.items()}


async def test_every_record_arrives_and_the_heartbeat_is_sent() -> None:
    sink, normalizer, server, handler = await _run([OB500, *LINEAR_FIXTURES], Faults(), heartbeat_s=0.1,
                                                   linger_s=0.6)
    records = sink.emitted.records
    assert not sink.emitted.dead_letters  # pongs and subscription acks included
    assert server.protocol.pings >= 3  # type: ignore[attr-defined]
    # the book: the recorded snapshot and all 49 deltas, nothing else, in sync with the venue's
    books = [r for r in records if isinstance(r, BookDeltas)]
    assert [b.exch_seq for b in books] == list(range(FIRST_U, LAST_U + 1))
    assert normalizer.book_report() == {"XRPUSDT": (49, 0, True)}
    _assert_book_is_the_truth(normalizer, server)
    # the other channels of the subscribed symbols, and nothing of the others (BTCUSD, BTCUSDU23)
    trades = [(r.symbol, r.price, r.size, r.side) for r in records if isinstance(r, Trade)]
    assert trades == [("LTCUSDT", 94.53, 0.4, 1)]
    liquidations = [(r.symbol, r.side, r.order_side, r.size) for r in records if isinstance(r, Liquidation)]
    assert liquidations == [("PIPPINUSDT", -1, 1, 2846.0)]
    tickers = [(type(r).__name__, r.symbol) for r in records if isinstance(r, MarkIndex | Funding | OpenInterest)]
    assert tickers == [("MarkIndex", "BTCUSDT"), ("Funding", "BTCUSDT"), ("OpenInterest", "BTCUSDT")]
    events = Counter(r.event for r in records if isinstance(r, FeedStatus))
    assert events == {"connect": 1, "disconnect": 1}
    assert handler.stats.snapshots == 0


async def test_skipped_delta_resubscribes_that_book_and_resyncs_to_the_truth() -> None:
    # frame 20 (u=20254889) is never sent; playback pauses before frame 30 so the resync lands mid-stream
    sink, normalizer, server, handler = await _run([OB500], Faults(skip={20}, silence=(30, 1.5)))
    records = sink.emitted.records
    journal = [r for r in records if isinstance(r, FeedStatus) and r.symbol == "XRPUSDT"]
    assert [(r.event, r.seq_from, r.seq_to) for r in journal] == [
        ("gap", FIRST_U + 19, FIRST_U + 21), ("resync_start", None, None), ("resync_done", None, None)]
    assert handler.stats.snapshots == 1 and handler.stats.connects == 1  # resubscribed on the same socket
    books = [r for r in records if isinstance(r, BookDeltas)]
    seqs = [b.exch_seq for b in books]
    # before the gap: snapshot and deltas up to u=20254888; then nothing until the fresh snapshot
    assert seqs[:20] == list(range(FIRST_U, FIRST_U + 20))
    resync = books[20]
    assert resync.flags == Flag.SNAPSHOT | Flag.DEPTH_LIMITED | Flag.GAP_BEFORE
    gap_at, done_at = records.index(journal[0]), records.index(journal[2])
    assert [r for r in records[gap_at:done_at] if isinstance(r, BookDeltas)] == [resync]
    # the replay server's snapshot is the venue's book at that moment (skipped delta included), and
    # every delta after it applies in sequence up to the last one
    assert resync.exch_seq is not None and FIRST_U + 21 <= resync.exch_seq < LAST_U
    assert seqs[21:] == list(range(resync.exch_seq + 1, LAST_U + 1))
    assert [len(side) for side in resync.levels()] == [500, 500]
    assert normalizer.book_report()["XRPUSDT"][1:] == (1, True)
    _assert_book_is_the_truth(normalizer, server)
    assert not sink.emitted.dead_letters


def test_subscription_messages() -> None:
    connection = BybitConnection(["BTCUSDT", "ETHUSDT"])
    [route] = connection.routes()
    assert [json.loads(m) for m in route.subscribe] == [{"op": "subscribe", "args": [
        "publicTrade.BTCUSDT", "orderbook.200.BTCUSDT", "tickers.BTCUSDT", "allLiquidation.BTCUSDT",
        "publicTrade.ETHUSDT", "orderbook.200.ETHUSDT", "tickers.ETHUSDT", "allLiquidation.ETHUSDT"]}]
    assert [json.loads(m) for m in connection.resubscribe_messages("ETHUSDT")] == [
        {"op": "unsubscribe", "args": ["orderbook.200.ETHUSDT"]},
        {"op": "subscribe", "args": ["orderbook.200.ETHUSDT"]}]
    assert connection.snapshot_url("ETHUSDT") is None and connection.poll_urls() == []
    assert connection.heartbeat() == (20.0, '{"op":"ping"}')
    assert (route.name, route.url, route.symbols) == ("linear", "wss://stream.bybit.com/v5/public/linear",
                                                      ("BTCUSDT", "ETHUSDT"))
    many = BybitConnection([f"S{i}USDT" for i in range(60)]).routes()
    assert [len(json.loads(m)["args"]) for m in many[0].subscribe] == [100, 100, 40]
    # a connection's args may total 21,000 characters: 1,000 symbols need several connections,
    # each symbol's topics on one of them
    routes = BybitConnection([f"SYMBOL{i}USDT" for i in range(1000)]).routes()
    assert [r.name for r in routes] == ["linear"] + [f"linear-{i}" for i in range(2, len(routes) + 1)]
    assert len(routes) == 6  # 1,000 x (four topics of about 21 characters, quoted)
    for part in routes:
        args = [arg for m in part.subscribe for arg in json.loads(m)["args"]]
        assert len(json.dumps(args, separators=(",", ":"))) <= 21_000 and len(args) == 4 * len(part.symbols)
    assert sum(len(r.symbols) for r in routes) == 1000
