"""The real Coinbase handler against the replay server, in both protocols: the default Advanced Trade
connection (one subscribe message per channel, heartbeats) reads the recorded Exchange frames and the
Advanced Trade restatement alike; a lost Advanced Trade message is found by sequence_num and every
book resyncs by resubscription; a dropped connection resubscribes, its books come back flagged, and
the trades it missed come back over REST."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.coinbase.connection import CoinbaseConnection
from ingest.venues.coinbase.replay import CoinbaseReplay
from normalize.flags import Flag
from normalize.records import BookDeltas, FeedStatus, Instrument, Trade
from normalize.venues.coinbase import Coinbase
from tests.coinbase_data import PRODUCT_IDS, RUN, advanced_trade, products_frame
from tests.live_replay import play


async def _run(frames: Sequence[Frame], faults: Faults,
               protocol: Literal["advanced-trade", "exchange"] = "advanced-trade",
               capture_root: Path | None = None) -> tuple[CollectingSink, Coinbase, ReplayServer, FeedHandler]:
    server = ReplayServer("coinbase", list(frames), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), Coinbase()
    connection = CoinbaseConnection(PRODUCT_IDS, ws_base=server.url, rest_base=server.rest_url, protocol=protocol,
                                    reconnect_interval_s=0.05, snapshots_per_second=50)
    capture = CaptureWriter(capture_root, "coinbase") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture, HandlerConfig(backoff_initial_s=0.05))
    await play(server, handler, timeout_s=120)
    if capture:
        capture.close()
    return sink, normalizer, server, handler


def _replay(server: ReplayServer) -> CoinbaseReplay:
    assert isinstance(server.protocol, CoinbaseReplay)
    return server.protocol


def _books_as_the_venue_has_them(normalizer: Coinbase, server: ReplayServer) -> None:
    for product, truth in _replay(server).books.items():
        sync = normalizer.books[product]
        assert sync.synced
        assert sync.book.bids == {float(p): float(q) for p, q in truth.bids.items()}
        assert sync.book.asks == {float(p): float(q) for p, q in truth.asks.items()}


async def test_the_advanced_trade_connection_reads_the_recorded_exchange_feed(tmp_path: Path) -> None:
    frames = [products_frame(), *read_frames(RUN)]
    sink, normalizer, server, _ = await _run(frames, Faults(), capture_root=tmp_path)
    offline, _ = normalize_frames("coinbase", frames)
    records = sink.emitted.records
    assert sorted(t.trade_id for t in records if isinstance(t, Trade)) == sorted(
        t.trade_id for t in offline.records if isinstance(t, Trade))
    assert sum(isinstance(t, Trade) for t in records) == 107
    assert normalizer.book_report() == normalize_frames("coinbase", frames)[1].book_report()
    _books_as_the_venue_has_them(normalizer, server)
    journal = [r for r in records if isinstance(r, FeedStatus)]
    assert Counter(r.event for r in journal) == {"connect": 1, "disconnect": 1}
    # Advanced Trade's products list (the documented-shape body: the 2021 run recorded the Exchange's)
    assert {r.symbol for r in records if isinstance(r, Instrument)} == {"BTC-USD", "BIT-24APR26-CDE",
                                                                        "BIP-20DEC30-CDE"}
    assert not sink.emitted.dead_letters
    captured = [f for path in list_captures(tmp_path, "coinbase") for f in read_capture_log(path)]
    sent = [f.payload for f in captured if f.kind == "ws"]
    # the venue's answers to our four subscribe messages (one channel each), then every recorded frame
    acks = [json.loads(p) for p in sent if p.startswith(b'{"channel":"subscriptions"')]
    assert len(acks) == 4 and set(acks[-1]["events"][0]["subscriptions"]) == {"level2", "market_trades", "ticker",
                                                                              "heartbeats"}
    assert server.rest_requests == ["/api/v3/brokerage/market/products"]


async def test_advanced_trade_products_come_from_the_recorded_exchange_body() -> None:
    """A server that recorded the Exchange's /products answers Advanced Trade's products path with it,
    in that API's shape: the same ids, increments and status."""
    sink, _, server, _ = await _run(list(read_frames(RUN)), Faults())
    instruments = {r.symbol: r for r in sink.emitted.records if isinstance(r, Instrument)}
    offline, _ = normalize_frames("coinbase", read_frames([RUN[0]]))
    recorded = {r.symbol: r for r in offline.records if isinstance(r, Instrument)}
    assert set(instruments) == set(PRODUCT_IDS)
    for symbol, record in instruments.items():
        mine, theirs = record, recorded[symbol]
        assert (mine.instrument, mine.kind, mine.tick_size, mine.lot_size, mine.min_size, mine.status) == (
            theirs.instrument, theirs.kind, theirs.tick_size, theirs.lot_size, theirs.min_size, theirs.status)
    assert server.rest_requests == ["/api/v3/brokerage/market/products"] and not sink.emitted.dead_letters


async def test_the_exchange_protocol_subscribes_level2_batch_and_reads_the_same() -> None:
    sink, normalizer, server, _ = await _run(list(read_frames(RUN)), Faults(), protocol="exchange")
    assert sum(isinstance(t, Trade) for t in sink.emitted.records) == 107
    _books_as_the_venue_has_them(normalizer, server)
    assert server.rest_requests == ["/products"]
    assert not sink.emitted.dead_letters


async def test_a_lost_advanced_trade_message_resyncs_every_book_by_resubscription() -> None:
    frames = advanced_trade(read_frames(RUN))
    ws = [f for f in frames if f.kind == "ws"]
    lost = next(i for i, f in enumerate(ws) if i > 4000 and b'"type":"update"' in f.payload
                and b'"channel":"l2_data"' in f.payload)
    sink, normalizer, server, handler = await _run(frames, Faults(skip={lost}))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    gaps = [r for r in journal if r.event == "gap"]
    assert {r.symbol for r in gaps} == set(PRODUCT_IDS)
    assert {r.symbol for r in journal if r.event == "resync_done"} == set(PRODUCT_IDS)
    assert handler.stats.snapshots == len(PRODUCT_IDS)
    resynced = [r for r in sink.emitted.records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT
                and r.flags & Flag.GAP_BEFORE]
    assert {r.symbol for r in resynced} == set(PRODUCT_IDS)
    _books_as_the_venue_has_them(normalizer, server)
    assert sum(isinstance(t, Trade) for t in sink.emitted.records) == 107
    assert not sink.emitted.dead_letters


async def test_a_dropped_connection_resubscribes_and_missed_trades_come_back_over_rest() -> None:
    """The reconnect's subscription brings a snapshot of every book (GAP_BEFORE: updates were lost
    between) and each product's last_match: where it jumps past the last trade seen, the missed
    trades are fetched from the Exchange's REST trades."""
    frames = list(read_frames(RUN))
    sink, normalizer, server, _ = await _run(frames, Faults(drop_after=3000))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert Counter(r.event for r in journal)["connect"] == 2
    snapshots = Counter((r.symbol, bool(r.flags & Flag.GAP_BEFORE)) for r in sink.emitted.records
                        if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT)
    assert {symbol for symbol, gap in snapshots if gap} == set(normalizer.books)
    _books_as_the_venue_has_them(normalizer, server)
    offline, _ = normalize_frames("coinbase", frames)
    expected = {t.trade_id: t for t in offline.records if isinstance(t, Trade)}
    trades = [t for t in sink.emitted.records if isinstance(t, Trade)]
    received = [t.trade_id for t in trades]
    assert len(received) == len(set(received)) and set(received) <= set(expected)
    backfilled = [t for t in trades if t.flags & Flag.FROM_REST]
    assert [(t.trade_id, t.price, t.size, t.side, t.ts_event) for t in backfilled] == [
        (t.trade_id, t.price, t.size, t.side, t.ts_event) for t in (expected[b.trade_id] for b in backfilled)]
    gaps = [(r.symbol, r.seq_from, r.seq_to) for r in journal if r.event == "trade_gap"]
    assert gaps == [(r.symbol, r.seq_from, r.seq_to) for r in journal if r.event == "backfill_done"]
    assert sum(to - first + 1 for _, first, to in gaps) == len(backfilled)
    # a trade lost with the connection is missing only where no later trade of its product showed it
    last_seen: dict[str, int] = {}
    for t in trades:
        last_seen[t.symbol] = max(last_seen.get(t.symbol, 0), int(t.trade_id))
    assert all(int(i) > last_seen.get(expected[i].symbol, 0) for i in set(expected) - set(received))
    assert not sink.emitted.dead_letters
