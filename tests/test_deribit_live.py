"""The real Deribit handler against the replay server: every record arrives as offline normalization gives
it, the heartbeat is set and its test_request answered, a lost book change resyncs that instrument alone by
subscribing its book again, a dropped connection loses nothing it could have kept, missing trades are
fetched over REST, and raw channels (authenticated sessions only) are refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.deribit.connection import DeribitConnection
from ingest.venues.deribit.replay import DeribitReplay
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, MarkIndex, OptionSummary, Record, Trade
from normalize.venues.deribit import Deribit
from tests.deribit_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS, DATA
from tests.live_replay import play

SPREAD = "BTC-24SEP21-8000-P"
"""The option whose book changes most (30 changes in the session)."""


async def _run(faults: Faults, frames: list[Frame] | None = None, symbols: list[str] | None = None,
               capture_root: Path | None = None) -> tuple[CollectingSink, Deribit, ReplayServer]:
    server = ReplayServer("deribit", frames or list(read_frames(CRYPTOFEED_RUN)), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), Deribit()
    connection = DeribitConnection(symbols or CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                   reconnect_interval_s=0.05)
    capture = CaptureWriter(capture_root, "deribit") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture,
                          HandlerConfig(backoff_initial_s=0.05, resubscribe_retry_s=1.0))
    await play(server, handler)
    if capture:
        capture.close()
    return sink, normalizer, server


def _protocol(server: ReplayServer) -> DeribitReplay:
    assert isinstance(server.protocol, DeribitReplay)
    return server.protocol


def _market(records: list[Record]) -> list[tuple[object, ...]]:
    """What the venue sent, without what the receiver adds (receive time)."""
    return [(type(r).__name__, r.symbol, r.ts_event, r.exch_seq, r.flags, *(getattr(r, f) for f in r.__struct_fields__
                                                                               if f not in Record.__struct_fields__))
            for r in records if isinstance(r, BookDeltas | Bbo | MarkIndex | OptionSummary)]


def _snapshots(sink: CollectingSink) -> list[tuple[str, int]]:
    return [(r.symbol, r.flags & Flag.GAP_BEFORE) for r in sink.emitted.records
            if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]


def _truth(server: ReplayServer, symbol: str) -> tuple[dict[float, float], dict[float, float]]:
    book = _protocol(server).books[symbol]
    return book.bids, book.asks


async def test_every_record_arrives_and_the_heartbeat_is_answered(tmp_path: Path) -> None:
    sink, normalizer, server = await _run(Faults(), capture_root=tmp_path)
    offline, _ = normalize_frames("deribit", read_frames(CRYPTOFEED_RUN))
    assert _market(sink.emitted.records) == _market(offline.records)
    assert len([r for r in sink.emitted.records if isinstance(r, OptionSummary)]) == 89
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 1,
                                                                                         "disconnect": 1}
    assert not sink.emitted.dead_letters
    # set_heartbeat went out first; the server's test_request was answered with public/test
    protocol = _protocol(server)
    assert (protocol.heartbeats, protocol.tests) == (1, 1)
    assert _snapshots(sink) == [(symbol, 0) for symbol in (json.loads(f.payload)["params"]["data"]["instrument_name"]
                                                           for f in server.ws_frames
                                                           if b'"type":"snapshot"' in f.payload)]
    # the raw capture holds every book and ticker frame and the four instruments answers asked for
    captured = [f for path in list_captures(tmp_path, "deribit") for f in read_capture_log(path)]
    payloads = Counter(f.payload for f in captured if f.kind == "ws")
    recorded = [f.payload for f in server.ws_frames if b'"method":"subscription"' in f.payload]
    assert len(recorded) == 46 + 89 and all(payloads[p] for p in recorded)
    assert sorted(f.url.split("currency=")[1].split("&")[0] for f in captured if f.kind == "rest") == ["BTC", "ETH"]


async def test_a_lost_change_resyncs_only_that_instrument() -> None:
    frames = list(read_frames(CRYPTOFEED_RUN))
    ws = [f for f in frames if f.kind == "ws"]
    changes = [i for i, f in enumerate(ws) if f'"channel":"book.{SPREAD}'.encode() in f.payload
               and b'"type":"change"' in f.payload]
    sink, normalizer, server = await _run(Faults(skip={changes[9]}), frames)
    journal = [(r.symbol, r.event) for r in sink.emitted.records if isinstance(r, FeedStatus) and r.symbol]
    assert journal == [(SPREAD, "gap"), (SPREAD, "resync_start"), (SPREAD, "resync_done")]
    report = normalizer.book_report()
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != SPREAD)
    assert report[SPREAD][1:] == (1, True)
    assert _snapshots(sink)[-1] == (SPREAD, Flag.GAP_BEFORE) and len(_snapshots(sink)) == 11
    # the book it rebuilt is the venue's at the end
    book = normalizer.books[SPREAD].book
    assert (book.bids, book.asks) == _truth(server, SPREAD)
    assert not sink.emitted.dead_letters


async def test_a_dropped_connection_resubscribes_every_book() -> None:
    """The connection drops after 60 frames; a change of SPREAD just before (frame 57) never arrived, and
    SPREAD's next change comes after the drop: only the new subscription's snapshot can tell."""
    ws = [f for f in read_frames(CRYPTOFEED_RUN) if f.kind == "ws"]
    assert f'"channel":"book.{SPREAD}'.encode() in ws[57].payload
    assert not [f for f in ws[58:61] if f'"channel":"book.{SPREAD}'.encode() in f.payload]
    sink, normalizer, server = await _run(Faults(drop_after=60, skip={57}))
    journal = [r.event for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert journal == ["connect", "disconnect", "connect", "disconnect"]
    assert _protocol(server).heartbeats == 2
    # the new connection's subscriptions brought a snapshot of every book from the venue's truth: SPREAD's,
    # past the change it never saw, is GAP_BEFORE; the others continue their change_id (nothing was
    # missed); every change after continued its chain
    snapshots = _snapshots(sink)
    assert sorted(s for s, _ in snapshots[10:]) == sorted(CRYPTOFEED_SYMBOLS)
    assert [s for s, gap in snapshots[10:] if gap] == [SPREAD]
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    for symbol in CRYPTOFEED_SYMBOLS:
        book = normalizer.books[symbol].book
        assert (book.bids, book.asks) == _truth(server, symbol), symbol
    assert not sink.emitted.dead_letters


def _trade_frames() -> list[Frame]:
    """Twenty BTC-PERPETUAL trades in twenty frames, trade_seq 1..20, from the fixture's first trade."""
    template = json.loads(next(iter(read_frames([DATA / "trades.tardis-fixture.jsonl"]))).payload)
    trade = template["params"]["data"][0]
    start = 1_700_000_000 * 10**9
    return [Frame(start + seq * 10**8, "ws", json.dumps(template | {"params": template["params"] | {"data": [
        trade | {"trade_seq": seq, "trade_id": str(seq), "timestamp": 1_700_000_000_000 + seq}]}},
        separators=(",", ":")).encode()) for seq in range(1, 21)]


async def test_a_lost_trade_is_fetched_over_rest() -> None:
    sink, _, server = await _run(Faults(skip={7}), _trade_frames(), symbols=["BTC-PERPETUAL"])
    trades = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert sorted(int(t.trade_id) for t in trades) == list(range(1, 21))
    assert [(t.trade_id, bool(t.flags & Flag.FROM_REST)) for t in trades if t.flags & Flag.FROM_REST] == [("8", True)]
    assert next(t for t in trades if t.trade_id == "9").flags & Flag.GAP_BEFORE
    journal = [(r.event, r.seq_from, r.seq_to) for r in sink.emitted.records if isinstance(r, FeedStatus) and r.symbol]
    assert journal == [("trade_gap", 8, 8), ("backfill_done", 8, 8)]
    assert any("get_last_trades_by_instrument" in path for path in server.rest_requests)


def test_raw_channels_are_refused_whole_without_authentication() -> None:
    replay, streams = DeribitReplay([]), set()  # type: ignore[var-annotated]
    [reply] = replay.on_client_message(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "public/subscribe", "params": {
        "channels": ["ticker.BTC-PERPETUAL.100ms", "book.BTC-PERPETUAL.raw"]}}), streams, "ws")
    assert json.loads(reply)["error"] == {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"}
    assert not streams


def test_the_connection_subscribes_100ms_channels_after_the_heartbeat() -> None:
    connection = DeribitConnection(["BTC-PERPETUAL", "ETH-25MAR22-3000-C"], ws_base="ws://h", rest_base="http://h")
    [route] = connection.routes()
    assert (route.name, route.url, route.book_channel, route.quiet_channels) == ("ws", "ws://h/ws/api/v2", "book",
                                                                                 ("trades",))
    heartbeat, subscribe = (json.loads(m) for m in route.subscribe)
    assert heartbeat == {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat", "params": {"interval": 30}}
    assert subscribe["method"] == "public/subscribe" and subscribe["params"]["channels"] == [
        "book.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms", "ticker.BTC-PERPETUAL.100ms", "quote.BTC-PERPETUAL",
        "book.ETH-25MAR22-3000-C.100ms", "trades.ETH-25MAR22-3000-C.100ms", "ticker.ETH-25MAR22-3000-C.100ms",
        "quote.ETH-25MAR22-3000-C"]
    assert [json.loads(m)["method"] for m in connection.resubscribe_messages("BTC-PERPETUAL")] == [
        "public/unsubscribe", "public/subscribe"]
    assert connection.metadata_urls() == ["http://h/api/v2/public/get_instruments?currency=BTC&expired=false",
                                          "http://h/api/v2/public/get_instruments?currency=ETH&expired=false"]
    assert connection.channel_of(next(iter(read_frames(CRYPTOFEED_RUN[1:]))).payload) is None  # the answer
    assert connection.heartbeat() is None and connection.snapshot_url("BTC-PERPETUAL") is None
