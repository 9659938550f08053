"""The real Binance handler against the replay server: every record arrives, injected faults
are detected and resynced for the affected symbol only, and reconnects lose nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ingest.capture_formats import read_frames
from ingest.capture_log import list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from normalize.flags import Flag
from normalize.records import BookDelta, FeedStatus, Instrument, Trade, expand
from normalize.venues.binance_usdm import BinanceUsdm
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS, funding_info_body
from tests.live_replay import play

CAPTURES = CRYPTOFEED_RUN
SYMBOLS = CRYPTOFEED_SYMBOLS


async def _run(faults: Faults, capture_root: Path | None = None, stale_after_s: float = 10,
               max_connection_age_s: float = 3600, metadata_every_s: float = 3600,
               rest_bodies: Sequence[Frame] = ()) -> tuple[CollectingSink, BinanceUsdm, ReplayServer]:
    from ingest.capture_log import CaptureWriter

    frames = [*rest_bodies, *read_frames(CAPTURES)]
    server = ReplayServer("binance-usdm", frames, speed=20, faults=faults)
    await server.start()
    sink = CollectingSink()
    normalizer = BinanceUsdm()
    connection = BinanceUsdmConnection(SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                       channels=("aggTrade", "depth@100ms", "bookTicker", "kline_1m"),
                                       max_connection_age_s=max_connection_age_s, reconnect_interval_s=0.05)
    capture = CaptureWriter(capture_root, "binance-usdm") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture,
                          HandlerConfig(backoff_initial_s=0.05, stale_after_s=stale_after_s, poll_interval_s=3600,
                                        metadata_every_s=metadata_every_s))
    await play(server, handler)
    if capture:
        capture.close()
    return sink, normalizer, server


def _offline_trades() -> dict[str, Trade]:
    out, _ = normalize_frames("binance-usdm", read_frames(CAPTURES))
    return {r.trade_id: r for r in out.records if isinstance(r, Trade)}


def _book_gaps(journal: list[FeedStatus]) -> set[str]:
    return {r.symbol for r in journal if r.event == "gap"}


def _assert_trades_once_and_lost_ones_backfilled(records: list) -> list[Trade]:  # type: ignore[type-arg]
    """Every trade arrives once, on the socket or, when its frame was lost on the way, over REST once
    the next trade's id showed the hole. Only trades after a symbol's last one on the socket can be
    missing: no later id revealed them. Returns the backfilled trades."""
    offline = _offline_trades()
    trades = [r for r in records if isinstance(r, Trade)]
    received = [t.trade_id for t in trades]
    assert len(received) == len(set(received)) and set(received) <= set(offline)
    last_live: dict[str, int] = {}
    for t in trades:
        if not t.flags & Flag.FROM_REST:
            last_live[t.symbol] = max(last_live.get(t.symbol, 0), int(t.trade_id))
    assert all(int(i) > last_live.get(offline[i].symbol, 0) for i in set(offline) - set(received))
    backfilled = [t for t in trades if t.flags & Flag.FROM_REST]
    # the same trade as on the socket, but for the receive time and the send time REST lacks
    sockets = [offline[t.trade_id] for t in backfilled]
    assert [(t.trade_id, t.symbol, t.ts_event, t.price, t.size, t.side, t.ts_exch) for t in backfilled] == [
        (t.trade_id, t.symbol, t.ts_event, t.price, t.size, t.side, None) for t in sockets]
    journal = [r for r in records if isinstance(r, FeedStatus)]
    trade_gaps = [(r.symbol, r.seq_from, r.seq_to) for r in journal if r.event == "trade_gap"]
    assert trade_gaps == [(r.symbol, r.seq_from, r.seq_to) for r in journal if r.event == "backfill_done"]
    assert sum(to - first + 1 for _, first, to in trade_gaps) == len(backfilled)
    return backfilled


async def test_every_trade_arrives_and_books_stay_in_sync(tmp_path: Path) -> None:
    sink, normalizer, server = await _run(Faults(), capture_root=tmp_path)
    trades = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert sorted(t.trade_id for t in trades) == sorted(_offline_trades())
    assert len(trades) == 91 and not any(t.flags & (Flag.FROM_REST | Flag.GAP_BEFORE) for t in trades)
    assert all(sync.synced and sync.breaks == 0 for sync in normalizer.books.values())
    assert set(normalizer.books) == set(SYMBOLS)
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert Counter(r.event for r in journal) == {"connect": 2, "disconnect": 2}
    # one connection per route: depth and bookTicker on /public, aggTrade and klines on /market
    routes = {r.detail.split()[0]: r.detail.split()[1] for r in journal if r.event == "connect"}
    assert set(routes) == {"public", "market"}
    assert routes["public"].startswith(f"{server.url}/public/stream?streams=sushiusdt@depth@100ms/")
    assert routes["market"].startswith(f"{server.url}/market/stream?streams=sushiusdt@aggTrade/")
    assert not sink.emitted.dead_letters
    # the raw capture holds every frame received, WebSocket and REST
    captured = [f for path in list_captures(tmp_path, "binance-usdm") for f in read_capture_log(path)]
    assert sum(f.kind == "ws" for f in captured) == len(server.ws_frames)
    assert {f.url.split("?")[0].rsplit("/", 1)[-1] for f in captured if f.kind == "rest"} == {"exchangeInfo", "depth"}
    # fundingInfo and openInterest were not recorded: their 404s are not asked again
    assert Counter(server.rest_requests) == {"/fapi/v1/fundingInfo": 1, "/fapi/v1/exchangeInfo": 1,
                                             "/fapi/v1/openInterest": len(SYMBOLS), "/fapi/v1/depth": len(SYMBOLS)}


async def test_skipped_frame_resyncs_only_that_symbol() -> None:
    frames = [f for f in read_frames(CAPTURES) if f.kind == "ws"]
    sushi = [i for i, f in enumerate(frames) if b"sushiusdt@depth" in f.payload]
    sink, normalizer, server = await _run(Faults(skip={sushi[120]}))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    gaps = [(r.symbol, r.event) for r in journal if r.event in ("gap", "resync_done")]
    assert gaps == [("SUSHIUSDT", "gap"), ("SUSHIUSDT", "resync_done")]
    # journaled under the connection that carries the books
    public = next(r.connection_id for r in journal if r.event == "connect" and r.detail.startswith("public "))
    assert {r.connection_id for r in journal if r.event in ("gap", "resync_start", "resync_done")} == {public}
    for symbol in ("AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        assert normalizer.books[symbol].breaks == 0
    sushi_sync = normalizer.books["SUSHIUSDT"]
    assert sushi_sync.synced and sushi_sync.breaks == 1
    # the resynced book equals the venue's book at the end of the stream (snapshots hold the top
    # 1,000 levels, so compare the top 500 of each side)
    truth = server.protocol.books["SUSHIUSDT"]  # type: ignore[attr-defined]
    assert sushi_sync.last_u == truth.last_u
    bids, asks = sushi_sync.book.top(500)
    assert bids == sorted(((float(p), float(q)) for p, q in truth.bids.items()), reverse=True)[:500]
    assert asks == sorted((float(p), float(q)) for p, q in truth.asks.items())[:500]
    after = [r for r in expand(sink.emitted.records) if isinstance(r, BookDelta) and r.symbol == "SUSHIUSDT"
             and r.flags & Flag.SNAPSHOT and r.flags & Flag.GAP_BEFORE]
    assert after, "the resync snapshot is flagged GAP_BEFORE"


async def test_a_skipped_trade_comes_back_over_rest_and_the_books_stay() -> None:
    frames = [f for f in read_frames(CAPTURES) if f.kind == "ws"]
    sushi_trades = [i for i, f in enumerate(frames) if b"sushiusdt@aggTrade" in f.payload]
    skipped = json.loads(frames[sushi_trades[10]].payload)["data"]
    sink, normalizer, server = await _run(Faults(skip={sushi_trades[10]}))
    backfilled = _assert_trades_once_and_lost_ones_backfilled(sink.emitted.records)
    assert [(t.trade_id, t.price, t.size) for t in backfilled] == [
        (str(skipped["a"]), float(skipped["p"]), float(skipped["q"]))]
    assert backfilled[0].flags == Flag.LAST | Flag.FROM_REST
    after = next(t for t in sink.emitted.records if isinstance(t, Trade) and t.trade_id == str(skipped["a"] + 1))
    assert after.flags == Flag.LAST | Flag.GAP_BEFORE
    journal = [(r.symbol, r.event, r.seq_from, r.seq_to) for r in sink.emitted.records if isinstance(r, FeedStatus)
               and r.event not in ("connect", "disconnect")]
    assert journal == [("SUSHIUSDT", "trade_gap", skipped["a"], skipped["a"]),
                       ("SUSHIUSDT", "backfill_done", skipped["a"], skipped["a"])]
    assert server.rest_requests.count("/fapi/v1/aggTrades") == 1
    assert all(sync.synced and sync.breaks == 0 for sync in normalizer.books.values())


async def test_dropped_connection_reconnects_and_accounts_for_every_trade() -> None:
    sink, normalizer, server = await _run(Faults(drop_after=60))
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    # the first connection (of either route) was dropped and replaced; the other stayed
    connects = [r.detail.split()[0] for r in journal if r.event == "connect"]
    assert sorted(connects) in (["market", "market", "public"], ["market", "public", "public"])
    assert Counter(r.event for r in journal)["disconnect"] == 3
    _assert_every_trade_accounted_for(sink, normalizer, server)


async def test_silent_feed_is_journalled_stale_and_replaced() -> None:
    sink, normalizer, server = await _run(Faults(silence=(700, 1.5)), stale_after_s=0.5)
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    stale = [r for r in journal if r.event == "stale"]
    assert stale and all(r.detail == "no frame for 0.5 s" for r in stale)
    ended_stale = [r.connection_id for r in journal if r.event == "disconnect" and r.detail == "stale"]
    assert ended_stale == [r.connection_id for r in stale]
    connects = [r.connection_id for r in journal if r.event == "connect"]
    assert len(connects) == len(set(connects)) == len(stale) + 2  # both routes went quiet
    _assert_every_trade_accounted_for(sink, normalizer, server)


async def test_connections_are_recycled_before_the_age_limit() -> None:
    sink, normalizer, _ = await _run(Faults(), max_connection_age_s=0.5)
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    planned = [r for r in journal if r.event == "disconnect" and r.detail.startswith("planned reconnect")]
    assert len(planned) >= 2
    # every connection ended planned, or at the stop
    disconnects = [r for r in journal if r.event == "disconnect"]
    assert {r.detail for r in disconnects} <= {planned[0].detail, "stopped"}
    assert len({r.connection_id for r in journal if r.event == "connect"}) == len(disconnects)
    # frames in flight when a connection is recycled can be lost, as on the venue: trades never
    # twice, lost ones backfilled; every book that lost a diff was flagged and resynced
    _assert_trades_once_and_lost_ones_backfilled(sink.emitted.records)
    assert sum(isinstance(r, Trade) for r in sink.emitted.records) >= 80
    gapped = _book_gaps(journal)
    assert {r.symbol for r in journal if r.event == "resync_done"} == gapped
    assert all(sync.synced for sync in normalizer.books.values())


def _assert_every_trade_accounted_for(sink: CollectingSink, normalizer: BinanceUsdm, server: ReplayServer) -> None:
    """Frames in flight when the connection dropped are lost, as on a venue: lost trades come back
    over REST, lost diffs are resynced. Returns nothing; asserts both."""
    lost = BinanceUsdm()
    from normalize.emitted import Emitted

    lost_out = Emitted()
    for payload in server.undelivered:
        lost.on_ws(payload, 0, lost_out)
    backfilled = _assert_trades_once_and_lost_ones_backfilled(sink.emitted.records)
    assert {t.trade_id for t in backfilled} <= {r.trade_id for r in lost_out.records if isinstance(r, Trade)}
    # a gap only where diffs were lost, each resynced. A symbol can lose diffs without a gap: those
    # its book had not yet been synced past, which the snapshot it then synced from already holds
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    lost_depth = {r.symbol for r in expand(lost_out.records) if isinstance(r, BookDelta)} | set(lost.books)
    gapped = _book_gaps(journal)
    assert gapped <= lost_depth
    assert {r.symbol for r in journal if r.event == "resync_done"} == gapped
    # whichever way, every book ends in sync and equal to the venue's (snapshots hold the top
    # 1,000 levels a side, so the top 500 are compared)
    for symbol, truth in server.protocol.books.items():  # type: ignore[attr-defined]
        sync = normalizer.books[symbol]
        assert sync.synced and sync.last_u == truth.last_u
        assert sync.book.top(500) == (
            sorted(((float(p), float(q)) for p, q in truth.bids.items()), reverse=True)[:500],
            sorted((float(p), float(q)) for p, q in truth.asks.items())[:500])


async def test_instrument_metadata_is_refreshed_with_funding_intervals(tmp_path: Path) -> None:
    """fundingInfo, then exchangeInfo, at start and every metadata_every_s: instruments are published
    once (their terms did not change), with the listed funding interval."""
    funding_info = Frame(0, "rest", funding_info_body(("SUSHIUSDT", 4)), "https://fapi.binance.com/fapi/v1/fundingInfo",
                         "")
    sink, _, _ = await _run(Faults(), capture_root=tmp_path, metadata_every_s=0.25, rest_bodies=[funding_info])
    fetched = [f.url.split("?")[0].rsplit("/", 1)[-1] for path in list_captures(tmp_path, "binance-usdm")
               for f in read_capture_log(path) if f.kind == "rest"]
    metadata = [name for name in fetched if name in ("fundingInfo", "exchangeInfo")]
    assert len(metadata) >= 6  # a stop can fall between the two requests of a round
    assert metadata == [("fundingInfo", "exchangeInfo")[i % 2] for i in range(len(metadata))]
    instruments = [r for r in sink.emitted.records if isinstance(r, Instrument)]
    assert len(instruments) == len({i.symbol for i in instruments}) > 100
    intervals = {i.symbol: i.funding_interval_s for i in instruments}
    assert (intervals["SUSHIUSDT"], intervals["AKROUSDT"]) == (14400, 28800)
