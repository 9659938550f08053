"""The real Binance spot handler against the replay server: every record arrives on the one
unrouted URL, a skipped diff resyncs that symbol alone from the venue's book at that moment, a lost
aggregate trade comes back over REST, and a dropped connection loses nothing it could keep."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.binance_spot.connection import BinanceSpotConnection
from normalize.flags import Flag
from normalize.records import Bbo, BookDelta, FeedStatus, Instrument, Trade, expand
from normalize.venues.binance_spot import BinanceSpot
from tests.binance_spot_data import BTCUSDT_SESSION, CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS, exchange_info_frame
from tests.live_replay import play

CHANNELS = ("aggTrade", "depth@100ms", "bookTicker", "kline_1m")


async def _run(frames: Sequence[Frame], symbols: Sequence[str], faults: Faults, channels: Sequence[str] = CHANNELS,
               capture_root: Path | None = None, speed: float = 20) -> tuple[CollectingSink, BinanceSpot,
                                                                                ReplayServer]:
    server = ReplayServer("binance-spot", list(frames), speed=speed, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), BinanceSpot()
    connection = BinanceSpotConnection(symbols, ws_base=server.url, rest_base=server.rest_url, channels=channels,
                                       reconnect_interval_s=0.05)
    capture = CaptureWriter(capture_root, "binance-spot") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture, HandlerConfig(backoff_initial_s=0.05))
    await play(server, handler, timeout_s=120)
    if capture:
        capture.close()
    return sink, normalizer, server


def _top(book, truth, depth: int = 500):  # type: ignore[no-untyped-def]
    return book.top(depth) == (sorted(((float(p), float(q)) for p, q in truth.bids.items()), reverse=True)[:depth],
                               sorted((float(p), float(q)) for p, q in truth.asks.items())[:depth])


async def test_every_record_arrives_on_the_one_url(tmp_path: Path) -> None:
    frames = [exchange_info_frame(), *read_frames(CRYPTOFEED_RUN)]
    sink, normalizer, server = await _run(frames, CRYPTOFEED_SYMBOLS, Faults(), capture_root=tmp_path)
    offline, offline_normalizer = normalize_frames("binance-spot", frames)
    records = sink.emitted.records
    assert sorted(t.trade_id for t in records if isinstance(t, Trade)) == sorted(
        t.trade_id for t in offline.records if isinstance(t, Trade)) == ["15683430", "9213679"]
    native = [r for r in records if isinstance(r, Bbo) and not r.flags & Flag.DERIVED]
    assert len(native) == 84 and all(r.flags & Flag.TS_EVENT_IMPUTED for r in native)
    assert all(sync.synced and sync.breaks == 0 for sync in normalizer.books.values())
    for symbol, sync in normalizer.books.items():
        truth = offline_normalizer.books[symbol]  # type: ignore[attr-defined]
        # the live snapshot came from the venue's book at the moment it was asked for, so its book
        # ends at the same update id as the recorded run's, level for level
        assert (sync.seq, sync.book.top(500)) == (truth.seq, truth.book.top(500))
    assert {r.instrument for r in records if isinstance(r, Instrument)} == {
        "BTC-USDT", "NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"}
    journal = [r for r in records if isinstance(r, FeedStatus)]
    assert Counter(r.event for r in journal) == {"connect": 1, "disconnect": 1}
    [connect] = [r for r in journal if r.event == "connect"]
    assert connect.detail.startswith(f"stream {server.url}/stream?streams=nknusdt@aggTrade/nknusdt@depth@100ms/")
    assert not sink.emitted.dead_letters
    assert Counter(server.rest_requests) == {"/api/v3/exchangeInfo": 1, "/api/v3/depth": 4}
    captured = [f for path in list_captures(tmp_path, "binance-spot") for f in read_capture_log(path)]
    assert sum(f.kind == "ws" for f in captured) == len(server.ws_frames)


async def test_a_skipped_diff_resyncs_that_symbol_from_the_venue_book() -> None:
    frames = list(read_frames([BTCUSDT_SESSION]))
    ws = [f for f in frames if f.kind == "ws"]
    diffs = [i for i, f in enumerate(ws) if b"@depth" in f.payload[:40]]
    sink, normalizer, server = await _run(frames, ["BTCUSDT"], Faults(skip={diffs[1500]}),
                                          channels=("trade", "depth@100ms", "bookTicker"), speed=0)
    journal = [(r.symbol, r.event) for r in sink.emitted.records if isinstance(r, FeedStatus)
               and r.event not in ("connect", "disconnect")]
    assert journal == [("BTCUSDT", "gap"), ("BTCUSDT", "resync_start"), ("BTCUSDT", "resync_done")]
    sync = normalizer.books["BTCUSDT"]
    truth = server.protocol.books["BTCUSDT"]  # type: ignore[attr-defined]
    assert sync.synced and sync.breaks == 1 and sync.seq == truth.last_u and _top(sync.book, truth)
    resync = [r for r in expand(sink.emitted.records) if isinstance(r, BookDelta)
              and r.flags & Flag.SNAPSHOT and r.flags & Flag.GAP_BEFORE]
    assert resync and all(r.flags & Flag.TS_EVENT_IMPUTED for r in resync)  # spot snapshots have no time
    trades = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert len(trades) == 9757 and not sink.emitted.dead_letters


async def test_a_lost_aggregate_trade_comes_back_over_rest() -> None:
    """The session's raw trades restated as aggregate trades (a = t, one each), so a trade stream with
    REST history by id is exercised at length; one is never sent."""
    frames = list(read_frames([BTCUSDT_SESSION]))
    restated = []
    for f in frames:
        if b'"e":"trade"' in f.payload:
            t = json.loads(f.payload)["data"]
            agg = {"e": "aggTrade", "E": t["E"], "s": t["s"], "a": t["t"], "p": t["p"], "q": t["q"], "f": t["t"],
                   "l": t["t"], "T": t["T"], "m": t["m"], "M": True}
            f = Frame(f.ts_recv, "ws", json.dumps({"stream": "btcusdt@aggTrade", "data": agg},
                                                  separators=(",", ":")).encode())
        restated.append(f)
    ws = [f for f in restated if f.kind == "ws"]
    trades = [i for i, f in enumerate(ws) if b"@aggTrade" in f.payload[:40]]
    skipped = json.loads(ws[trades[2000]].payload)["data"]
    sink, normalizer, server = await _run(restated, ["BTCUSDT"], Faults(skip={trades[2000]}),
                                          channels=("aggTrade", "depth@100ms"), speed=0)
    received = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert len(received) == len({r.trade_id for r in received}) == 9757
    [filled] = [r for r in received if r.flags & Flag.FROM_REST]
    assert (filled.trade_id, filled.price, filled.size, filled.ts_exch) == (
        str(skipped["a"]), float(skipped["p"]), float(skipped["q"]), None)
    journal = [(r.event, r.seq_from, r.seq_to) for r in sink.emitted.records if isinstance(r, FeedStatus)
               and r.event not in ("connect", "disconnect")]
    assert journal == [("trade_gap", skipped["a"], skipped["a"]), ("backfill_done", skipped["a"], skipped["a"])]
    assert server.rest_requests.count("/api/v3/aggTrades") == 1
    assert normalizer.books["BTCUSDT"].breaks == 0


async def test_a_dropped_connection_reconnects_and_every_book_ends_as_the_venue_has_it() -> None:
    sink, normalizer, server = await _run(list(read_frames(CRYPTOFEED_RUN)), CRYPTOFEED_SYMBOLS,
                                          Faults(drop_after=80))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert Counter(r.event for r in journal)["connect"] == 2
    gapped = {r.symbol for r in journal if r.event == "gap"}
    assert {r.symbol for r in journal if r.event == "resync_done"} == gapped
    for symbol, truth in server.protocol.books.items():  # type: ignore[attr-defined]
        sync = normalizer.books[symbol]
        assert sync.synced and sync.seq == truth.last_u and _top(sync.book, truth)
    assert not sink.emitted.dead_letters
