"""The real BitMEX handler against the replay server: every record arrives as offline normalization gives it
(the text ping answered), a lost insert resyncs that symbol alone by subscribing its book again, and a
dropped connection comes back with every book from the venue's partial."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.bitmex.connection import BitmexConnection
from ingest.venues.bitmex.replay import BitmexReplay
from ingest.venues.interface import UnknownChannel
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, Record, Trade
from normalize.venues.bitmex import Bitmex
from tests.bitmex_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.live_replay import play


async def _run(faults: Faults, capture_root: Path | None = None,
               heartbeat_s: float = 5.0) -> tuple[CollectingSink, Bitmex, ReplayServer]:
    server = ReplayServer("bitmex", list(read_frames(CRYPTOFEED_RUN)), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), Bitmex()
    connection = BitmexConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                  channels=("orderBookL2", "quote", "trade"), heartbeat_s=heartbeat_s,
                                  reconnect_interval_s=0.05)
    capture = CaptureWriter(capture_root, "bitmex") if capture_root else None
    handler = FeedHandler(connection, normalizer, sink, capture,
                          HandlerConfig(backoff_initial_s=0.05, resubscribe_retry_s=1.0))
    await play(server, handler, timeout_s=90)
    if capture:
        capture.close()
    return sink, normalizer, server


def _protocol(server: ReplayServer) -> BitmexReplay:
    assert isinstance(server.protocol, BitmexReplay)
    return server.protocol


def _market(records: list[Record]) -> list[tuple[object, ...]]:
    """What the venue sent, without what the receiver adds (receive time, and the time imputed from it)."""
    return [(type(r).__name__, r.symbol, None if r.flags & Flag.TS_EVENT_IMPUTED else r.ts_event, r.exch_seq, r.flags,
             *(getattr(r, f) for f in r.__struct_fields__ if f not in Record.__struct_fields__))
            for r in records if isinstance(r, BookDeltas | Bbo | Trade)]


def _truth(server: ReplayServer, normalizer: Bitmex, symbol: str) -> tuple[dict[float, float], dict[float, float]]:
    """The replay server's book of the symbol, in the book's base units."""
    spec = normalizer.master.specs[symbol]
    sides: tuple[dict[float, float], dict[float, float]] = ({}, {})
    for row in _protocol(server).books[symbol].rows.values():
        sides[0 if row["side"] == "Buy" else 1][row["price"]] = spec.to_base(row["size"], row["price"])
    return sides


def _partials(sink: CollectingSink) -> list[tuple[str, int]]:
    return [(r.symbol, r.flags & Flag.GAP_BEFORE) for r in sink.emitted.records
            if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]


async def test_every_record_arrives_and_the_books_stay_in_sync(tmp_path: Path) -> None:
    sink, normalizer, server = await _run(Faults(), capture_root=tmp_path, heartbeat_s=0.2)
    offline, _ = normalize_frames("bitmex", read_frames(CRYPTOFEED_RUN))
    assert _market(sink.emitted.records) == _market(offline.records)
    assert sum(isinstance(r, Trade) for r in sink.emitted.records) == 27
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 1,
                                                                                         "disconnect": 1}
    assert not sink.emitted.dead_letters
    assert _partials(sink) == [(json.loads(f.payload)["filter"]["symbol"], 0) for f in server.ws_frames
                               if f.payload.startswith(b'{"table":"orderBookL2","action":"partial"')]
    for symbol in CRYPTOFEED_SYMBOLS:
        book = normalizer.books[symbol].book
        assert (book.bids, book.asks) == _truth(server, symbol=symbol, normalizer=normalizer), symbol
    # the text ping went out and its pongs were read and ignored; the capture holds every table frame and the
    # instruments body
    assert _protocol(server).pings >= 3
    captured = [f for path in list_captures(tmp_path, "bitmex") for f in read_capture_log(path)]
    payloads = Counter(f.payload for f in captured if f.kind == "ws")
    recorded = [f.payload for f in server.ws_frames if f.payload.startswith(b'{"table"')]
    assert len(recorded) == 1979 + 93 + 17 and all(payloads[p] for p in recorded)
    assert payloads[b"pong"] >= 3
    assert [f.url.rsplit("/", 2)[-2:] for f in captured if f.kind == "rest"] == [["instrument", "active"]]


def _lost_insert(ws: list[Frame]) -> int:
    """The playback index of an XBTUSD insert (one row) whose id a later update or delete names."""
    inserted: dict[int, int] = {}
    for i, frame in enumerate(ws):
        if not frame.payload.startswith(b'{"table":"orderBookL2"') or b'"symbol":"XBTUSD"' not in frame.payload:
            continue
        message = json.loads(frame.payload)
        if message["action"] == "insert" and len(message["data"]) == 1:
            inserted[message["data"][0]["id"]] = i
        elif message["action"] in ("update", "delete") and message["data"][0]["id"] in inserted:
            return inserted[message["data"][0]["id"]]
    raise AssertionError("no such insert")


async def test_a_lost_insert_resyncs_only_that_symbol() -> None:
    ws = [f for f in read_frames(CRYPTOFEED_RUN) if f.kind == "ws"]
    sink, normalizer, server = await _run(Faults(skip={_lost_insert(ws)}))
    journal = [(r.symbol, r.event) for r in sink.emitted.records if isinstance(r, FeedStatus) and r.symbol]
    assert journal == [("XBTUSD", "gap"), ("XBTUSD", "resync_start"), ("XBTUSD", "resync_done")]
    report = normalizer.book_report()
    assert report["XBTUSD"][1:] == (1, True)
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != "XBTUSD")
    assert _partials(sink)[-1] == ("XBTUSD", Flag.GAP_BEFORE) and len(_partials(sink)) == 11
    for symbol in CRYPTOFEED_SYMBOLS:
        book = normalizer.books[symbol].book
        assert (book.bids, book.asks) == _truth(server, normalizer, symbol), symbol
    assert not sink.emitted.dead_letters


async def test_a_dropped_connection_comes_back_with_every_book() -> None:
    sink, normalizer, server = await _run(Faults(drop_after=400))
    journal = [r.event for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert journal == ["connect", "disconnect", "connect", "disconnect"]
    # BitMEX sends no sequence: a partial replacing a live book cannot say nothing was missed (GAP_BEFORE)
    assert sorted(s for s, gap in _partials(sink)[10:] if gap) == sorted(CRYPTOFEED_SYMBOLS)
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    for symbol in CRYPTOFEED_SYMBOLS:
        book = normalizer.books[symbol].book
        assert (book.bids, book.asks) == _truth(server, normalizer, symbol), symbol
    # trades lost in flight are lost, as on the venue; none arrives twice
    received = [r.trade_id for r in sink.emitted.records if isinstance(r, Trade)]
    assert len(received) == len(set(received))
    assert not sink.emitted.dead_letters


def test_the_connection_subscribes_in_messages_of_20_args() -> None:
    connection = BitmexConnection([f"S{i}USDT" for i in range(7)], ws_base="ws://h", rest_base="http://h")
    [route] = connection.routes()
    assert (route.name, route.url, route.book_channel, route.quiet_channels) == (
        "realtime", "ws://h/realtime", "orderBookL2", ("funding", "liquidation"))
    args = [json.loads(m)["args"] for m in route.subscribe]
    assert [len(a) for a in args] == [20, 20, 2]
    assert args[0][:6] == ["orderBookL2:S0USDT", "quote:S0USDT", "trade:S0USDT", "instrument:S0USDT",
                           "funding:S0USDT", "liquidation:S0USDT"]
    assert [json.loads(m) for m in connection.resubscribe_messages("XBTUSD")] == [
        {"op": "unsubscribe", "args": ["orderBookL2:XBTUSD"]}, {"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}]
    assert connection.heartbeat() == (5.0, "ping") and connection.snapshot_url("XBTUSD") is None
    assert connection.metadata_urls() == ["http://h/api/v1/instrument/active"]
    welcome = next(iter(read_frames(CRYPTOFEED_RUN[1:]))).payload
    assert connection.channel_of(welcome) is None and connection.channel_of(b"pong") is None
    with pytest.raises(UnknownChannel, match="one book table per symbol"):
        BitmexConnection(["XBTUSD"], channels=("orderBookL2", "orderBookL2_25"))
    replay = BitmexReplay([])
    [refused] = replay.on_client_message(json.dumps({"op": "subscribe", "args": args[0] + ["x:y"]}), set(),
                                         "realtime")
    assert json.loads(refused)["error"] == "Too many args sent. Max length is 20."
