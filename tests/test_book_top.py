"""Top-N book snapshots: equal to the book rebuilt independently from the emitted deltas, on a
fixed receive-time grid offline and on a timer live."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msgspec

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.offline import TopSchedule, normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from normalize.book import L2Book, top_rows
from normalize.flags import Flag
from normalize.records import BookDelta, BookTop, Record, expand
from normalize.venues.binance_usdm import BinanceUsdm
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS, DATA

HFT = DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"


def test_rows_are_best_first_and_flag_a_crossed_book() -> None:
    book = L2Book()
    book.apply_levels([(100.0, 1.0), (99.5, 2.0), (101.0, 0.5)], [(102.0, 3.0), (103.0, 1.0)])
    rows = top_rows(book, 2, "v", "S", "S-PERP", 5, 6, 42)
    assert [(r.side, r.level, r.price, r.size) for r in rows] == [
        (1, 1, 101.0, 0.5), (1, 2, 100.0, 1.0), (-1, 1, 102.0, 3.0), (-1, 2, 103.0, 1.0)]
    assert [r.flags for r in rows] == [Flag.DERIVED] * 3 + [Flag.DERIVED | Flag.LAST]
    assert {(r.ts_event, r.ts_recv, r.exch_seq) for r in rows} == {(5, 6, 42)}
    book.apply_levels([(102.5, 1.0)], [])
    assert all(r.flags & Flag.MAYBE_BAD_BOOK for r in top_rows(book, 1, "v", "S", "S-PERP", 5, 6, 43))


def _rebuild_tops(records: list[Record], depth: int) -> dict[tuple[str, int], list[tuple[int, int, float, float]]]:
    """At each snapshot time, the top of a book rebuilt from the delta rows received before it."""
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = defaultdict(lambda: ({}, {}))
    snapshot_of: dict[str, tuple[int | None, int] | None] = {}
    expected = {}
    for record in expand(records):
        if isinstance(record, BookDelta):
            bids, asks = books[record.symbol]
            message = (record.exch_seq, record.ts_recv)
            if record.flags & Flag.SNAPSHOT and snapshot_of.get(record.symbol) != message:
                bids.clear()  # the first row of a snapshot message replaces the book
                asks.clear()
            snapshot_of[record.symbol] = message if record.flags & Flag.SNAPSHOT else None
            side = bids if record.side == 1 else asks
            if record.size:
                side[record.price] = record.size
            else:
                side.pop(record.price, None)
        elif isinstance(record, BookTop) and (record.symbol, record.ts_recv) not in expected:
            bids, asks = books[record.symbol]
            expected[(record.symbol, record.ts_recv)] = (
                [(1, i, p, bids[p]) for i, p in enumerate(sorted(bids, reverse=True)[:depth], start=1)]
                + [(-1, i, p, asks[p]) for i, p in enumerate(sorted(asks)[:depth], start=1)])
    return expected


def _tops(records: list[Record]) -> dict[tuple[str, int], list[tuple[int, int, float, float]]]:
    tops: dict[tuple[str, int], list[tuple[int, int, float, float]]] = defaultdict(list)
    for r in records:
        if isinstance(r, BookTop):
            tops[(r.symbol, r.ts_recv)].append((r.side, r.level, r.price, r.size))
    return dict(tops)


def test_offline_grid_snapshots_equal_an_independent_rebuild() -> None:
    out, _ = normalize_frames("binance-usdm", read_frames([HFT]), TopSchedule(depth=10, every_ns=1_000_000_000))
    tops = _tops(out.records)
    assert len(tops) >= 20
    assert all(ts % 1_000_000_000 == 0 for _, ts in tops)
    assert tops == _rebuild_tops(out.records, 10)
    assert all(len(levels) == 20 for levels in tops.values())


async def test_live_handler_takes_snapshots_on_a_timer_and_on_demand() -> None:
    server = ReplayServer("binance-usdm", list(read_frames(CRYPTOFEED_RUN)), speed=10, faults=Faults())
    await server.start()
    sink = CollectingSink()
    connection = BinanceUsdmConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                       channels=("aggTrade", "depth@100ms", "bookTicker"))
    handler = FeedHandler(connection, BinanceUsdm(), sink,
                          config=HandlerConfig(poll_interval_s=3600, top_depth=5, top_every_s=0.25))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.3)
    on_demand = handler.book_tops(3)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    tops = _tops(sink.emitted.records)
    assert len({ts for _, ts in tops}) >= 8
    assert {symbol for symbol, _ in tops} == set(CRYPTOFEED_SYMBOLS)
    demanded = _tops(on_demand.records)
    assert set(demanded) == {(symbol, ts) for symbol, ts in tops if ts == next(iter(demanded))[1]}
    assert {len(levels) for levels in demanded.values()} == {6}
    five, three = _rebuild_tops(sink.emitted.records, 5), _rebuild_tops(sink.emitted.records, 3)
    for key, levels in tops.items():
        assert levels == (three if key in demanded else five)[key]


def test_samples_of_an_unchanged_book_are_all_kept_by_the_bus() -> None:
    """Two samples of a book nothing changed in between differ only in when they were taken
    (ts_recv, their key): their envelopes get different message ids, so JetStream's duplicate
    window keeps both, while a re-publish of one sample keeps its id."""
    from normalize.bus_keys import message_id
    from normalize.records import BookTop

    first = [BookTop("binance-usdm", "BTCUSDT", "BTC-USDT-PERP", 1, 1_000, None, 5, 64, 1, 1, 100.0, 1.0)]
    second = [msgspec.structs.replace(r, ts_recv=2_000) for r in first]
    assert message_id(first) != message_id(second)
    assert message_id(first) == message_id(list(first))
