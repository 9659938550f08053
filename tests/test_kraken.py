"""Kraken spot: the real v1 book-1000 capture rebuilt with every one of its 4,269 checksums matching and
the final books equal to an independent Decimal rebuild; the same run in v2 form; trades exact to the
text; the book cut to its depth; checksum failures resync one pair; and the real (v2) handler against
the replay server, with a corrupted checksum and a dropped connection."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.kraken.connection import KrakenConnection
from ingest.venues.kraken.replay import KrakenReplay
from ingest.venues.names import venue_symbols
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, Instrument, Trade
from normalize.venues.kraken import Kraken
from normalize.venues.kraken.book_sync import checksum
from normalize.venues.kraken.instruments import v2_symbol, venue_symbol
from tests.kraken_data import (
    BOOK_V1,
    SYMBOLS,
    TRADE_V1,
    V1_RUN,
    V2_GENERATED,
    V2_RUN,
    DecimalBook,
    v2_capture_text,
)
from tests.live_replay import play

UPDATES = 4269


def _rebuild() -> dict[str, DecimalBook]:
    """The v1 books rebuilt with Decimal, every recorded checksum checked on the way."""
    books: dict[str, DecimalBook] = {}
    for frame in read_frames([BOOK_V1]):
        message = json.loads(frame.payload)
        if not isinstance(message, list):
            continue
        symbol, parts = v2_symbol(message[-1]), message[1:-2]
        book = books.setdefault(symbol, DecimalBook(int(message[-2][5:])))
        for part in parts:
            for key, side in (("as", "a"), ("bs", "b"), ("a", "a"), ("b", "b")):
                book.apply(side, part.get(key, []))
        book.truncate()
        if "c" in parts[-1]:
            assert book.checksum() == int(parts[-1]["c"])
    return books


@pytest.mark.parametrize("run", [V1_RUN, V2_RUN], ids=["v1", "v2"])
def test_every_checksum_matches_and_books_equal_a_decimal_rebuild(run: list) -> None:  # type: ignore[type-arg]
    out, normalizer = normalize_frames("kraken", read_frames(run))
    assert not out.dead_letters
    report = normalizer.book_report()
    assert set(report) == set(SYMBOLS)
    assert all(breaks == 0 and synced for _, breaks, synced in report.values())
    assert sum(applied for applied, _, _ in report.values()) == UPDATES
    checked = sum(sync.checksums for sync in normalizer.books.values())  # type: ignore[attr-defined]
    assert checked == UPDATES + (10 if run is V2_RUN else 0)  # v2 snapshots carry one too
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    for symbol, truth in _rebuild().items():
        book = normalizer.books[symbol].book  # type: ignore[attr-defined]
        bids, asks = book.top(2000)
        assert bids == [(float(p), float(q)) for p, q in truth.top("b", 2000)]
        assert asks == [(float(p), float(q)) for p, q in truth.top("a", 2000)]
        assert checksum(book) == truth.checksum()
    assert all(len(normalizer.books[s].book.bids) <= 1000 for s in SYMBOLS)  # type: ignore[attr-defined]


def test_v1_book_messages() -> None:
    out, _ = normalize_frames("kraken", read_frames(V1_RUN))
    messages = [r for r in out.records if isinstance(r, BookDeltas)]
    assert len(messages) == UPDATES + 10
    snapshot = messages[0]
    assert snapshot.flags & Flag.SNAPSHOT and snapshot.flags & Flag.DEPTH_LIMITED and snapshot.symbol == "ADA/BTC"
    assert snapshot.instrument == "ADA-BTC" and snapshot.exch_seq is None
    bids, asks = snapshot.levels()
    first = json.loads(next(f.payload for f in read_frames([BOOK_V1]) if f.payload.startswith(b"[1360,{\"as\"")))
    assert asks[0] == (0.0000229, 13355.87450757)
    assert (len(bids), len(asks)) == (len(first[1]["bs"]), len(first[1]["as"])) == (707, 841)
    # a snapshot's time is its newest level's
    newest = max(Decimal(level[2]) for level in first[1]["as"] + first[1]["bs"])
    assert snapshot.ts_event == int(newest * 10**9)
    assert all(m.flags & Flag.LAST == 0 for m in messages)  # LAST rides on the derived bbo after each
    bbo = [r for r in out.records if isinstance(r, Bbo) and r.flags & Flag.DERIVED]
    assert len(bbo) == len(messages) and all(r.flags & Flag.LAST for r in bbo)


def test_v1_trades_are_exact_to_the_text() -> None:
    out, _ = normalize_frames("kraken", read_frames(V1_RUN))
    trades = [r for r in out.records if isinstance(r, Trade)]
    expected = [(json.loads(f.payload)[-1], t) for f in read_frames([TRADE_V1]) if f.payload.startswith(b"[")
                for t in json.loads(f.payload)[1]]
    assert len(trades) == len(expected) == 10
    for record, (pair, (price, volume, stamp, side, _, _)) in zip(trades, expected, strict=True):
        assert (record.symbol, record.price, record.size, record.side, record.ts_event, record.trade_id) == (
            v2_symbol(pair), float(price), float(volume), 1 if side == "b" else -1, int(Decimal(stamp) * 10**9),
            f"{stamp}/{price}/{volume}")
        assert record.trade_type is None and record.size_native is None


def test_v2_trades_and_tickers() -> None:
    out, _ = normalize_frames("kraken", read_frames(V2_RUN))
    trades = [r for r in out.records if isinstance(r, Trade)]
    v1, _ = normalize_frames("kraken", read_frames(V1_RUN))
    assert [(t.price, t.size, t.side, t.ts_event) for t in trades] == [
        (t.price, t.size, t.side, t.ts_event) for t in v1.records if isinstance(t, Trade)]
    assert [t.trade_id for t in trades if t.symbol == "SC/EUR"] == ["1", "2", "3", "4", "5", "6"]
    tickers = [r for r in out.records if isinstance(r, Bbo) and not r.flags & Flag.DERIVED]
    assert len(tickers) == 18
    first = tickers[0]
    # [1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],...},"ticker","WAVES/EUR"]
    assert (first.symbol, first.bid_price, first.bid_size, first.ask_price, first.ask_size) == (
        "WAVES/EUR", 13.2329, 185.18432037, 13.2539, 35.72892241)
    assert first.flags & Flag.TS_EVENT_IMPUTED and first.ts_event == first.ts_recv


def test_the_v2_file_is_what_the_generator_makes() -> None:
    assert V2_GENERATED.read_text() == v2_capture_text()


def test_a_wrong_checksum_resyncs_that_pair_alone() -> None:
    frames = list(read_frames(V1_RUN))
    xmr = [i for i, f in enumerate(frames) if f.payload.endswith(b'"XMR/USD"]') and b'"c":"' in f.payload]
    frames[xmr[100]] = type(frames[0])(frames[xmr[100]].ts_recv, "ws",
                                       KrakenReplay([]).corrupt(frames[xmr[100]].payload))
    normalizer, out = Kraken(), Emitted()
    for frame in frames:
        if frame.kind == "ws":
            normalizer.on_ws(frame.payload, frame.ts_recv, out)
    journal = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("XMR/USD", "checksum_failure"), ("XMR/USD", "resync_start")]
    assert out.snapshot_requests == {"XMR/USD"}
    failed = next(r.ts_recv for r in out.records if isinstance(r, FeedStatus))
    assert not [r for r in out.records if r.symbol == "XMR/USD" and r.ts_recv >= failed
                and (isinstance(r, BookDeltas) or (isinstance(r, Bbo) and r.flags & Flag.DERIVED))]
    report = normalizer.book_report()
    assert report["XMR/USD"][1:] == (1, False)
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != "XMR/USD")


def test_republished_levels_and_truncation() -> None:
    normalizer, out = Kraken(), Emitted()
    asks = [[f"1.{i:02d}", "1.0", "1.5"] for i in range(10, 22)]
    bids = [[f"0.{i:02d}", "2.0", "1.5"] for i in range(80, 92)]
    normalizer.on_ws(json.dumps([1, {"as": asks, "bs": bids}, "book-10", "XBT/USD"]).encode(), 1, out)
    book = normalizer.books["BTC/USD"].book
    assert len(book.asks) == len(book.bids) == 10  # cut to the depth named by the channel
    # a new best bid pushes the 10th bid out; a republished ask ("r") is applied as an update
    truth = DecimalBook(10)
    truth.apply("a", asks)
    truth.apply("b", bids)
    truth.truncate()
    truth.apply("b", [["0.95", "3.0", "2.5"]])
    truth.apply("a", [["1.19", "4.0", "2.5", "r"]])
    truth.truncate()
    update = [1, {"a": [["1.19", "4.0", "2.5", "r"]]}, {"b": [["0.95", "3.0", "2.5"]], "c": str(truth.checksum())},
              "book-10", "XBT/USD"]
    normalizer.on_ws(json.dumps(update).encode(), 2, out)
    assert not out.dead_letters and normalizer.book_report()["BTC/USD"] == (1, 0, True)
    message = [r for r in out.records if isinstance(r, BookDeltas)][-1]
    assert message.levels() == ([(0.95, 3.0), (0.82, 0.0)], [(1.19, 4.0)])  # the cut level published deleted
    assert message.ts_event == 2_500_000_000


def test_control_frames_and_answers() -> None:
    normalizer, out = Kraken(), Emitted()
    for frame in (b'{"event":"heartbeat"}', b'{"connectionID":1,"event":"systemStatus","status":"online"}',
                  b'{"channelID":1,"channelName":"book-10","event":"subscriptionStatus","status":"subscribed"}',
                  b'{"channel":"heartbeat"}', b'{"channel":"status","type":"update","data":[{"system":"online"}]}',
                  b'{"method":"pong","req_id":1}',
                  b'{"method":"subscribe","result":{"channel":"book","depth":25,"symbol":"BTC/USD"},"success":true}'):
        normalizer.on_ws(frame, 1, out)
    assert not out.records and not out.dead_letters and normalizer.depths == {"BTC/USD": 25}
    normalizer.on_ws(b'{"method":"subscribe","error":"Currency pair not supported","success":false}', 2, out)
    normalizer.on_ws(b'{"channelName":"book-10","event":"subscriptionStatus","status":"error",'
                     b'"errorMessage":"Subscription depth not supported"}', 3, out)
    normalizer.on_ws(b'[1,[["nan","1","1.0","b","m",""]],"trade","XBT/USD"]', 4, out)
    assert [d.reason for d in out.dead_letters] == [
        "venue refused subscribe: Currency pair not supported",
        "venue event subscriptionStatus: error Subscription depth not supported",
        "bad frame: not a decimal: 'nan'"]


def test_instruments_and_ids() -> None:
    out, _ = normalize_frames("kraken", read_frames(V1_RUN))
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    chf = instruments["BTC/CHF"]
    assert (chf.instrument, chf.kind, chf.base, chf.quote, chf.tick_size, chf.lot_size, chf.min_size) == (
        "BTC-CHF", "spot", "BTC", "CHF", 0.1, 1e-8, 0.0002)
    assert all(symbol in instruments for symbol in SYMBOLS)
    assert venue_symbol("BTC-USD") == "BTC/USD" and v2_symbol("XDG/USD") == "DOGE/USD"
    assert venue_symbols(KrakenConnection, ["BTC-USD", "ETH/CHF"]) == ["BTC/USD", "ETH/CHF"]
    with pytest.raises(ValueError, match="kraken lists spot pairs"):
        venue_symbol("BTC-USD-PERP")
    # the v2 instrument channel
    normalizer, emitted = Kraken(), Emitted()
    normalizer.on_ws(b'{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/USD",'
                     b'"base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,'
                     b'"price_precision":1,"price_increment":0.1,"qty_min":0.0001}]}}', 5, emitted)
    [pair] = emitted.records
    assert isinstance(pair, Instrument) and (pair.instrument, pair.tick_size, pair.lot_size, pair.status) == (
        "BTC-USD", 0.1, 1e-8, "online")


def test_connection_subscribes_v2_and_resyncs_one_book() -> None:
    connection = KrakenConnection(["XBT/USD", "ETH/CHF"], ws_base="ws://127.0.0.1:1")
    [route] = connection.routes()
    assert (route.name, route.url, route.book_channel, route.symbols) == (
        "v2", "ws://127.0.0.1:1/v2", "book", ("BTC/USD", "ETH/CHF"))
    assert [json.loads(m)["params"] for m in route.subscribe] == [
        {"channel": "book", "symbol": ["BTC/USD", "ETH/CHF"], "depth": 1000},
        {"channel": "trade", "symbol": ["BTC/USD", "ETH/CHF"]}, {"channel": "ticker", "symbol": ["BTC/USD", "ETH/CHF"]}]
    assert [json.loads(m)["method"] for m in connection.resubscribe_messages("BTC/USD")] == ["unsubscribe", "subscribe"]
    assert connection.heartbeat() == (30.0, '{"method": "ping"}') and connection.snapshot_url("BTC/USD") is None
    assert connection.channel_of(b'{"channel":"book","type":"update","data":[]}') == "book"
    assert connection.channel_of(b'{"channel":"heartbeat"}') is None


# -- the real handler against the replay server ------------------------------------------------------
async def _run(faults: Faults) -> tuple[CollectingSink, Kraken, ReplayServer]:
    server = ReplayServer("kraken", list(read_frames(V2_RUN)), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), Kraken()
    connection = KrakenConnection(SYMBOLS, ws_base=server.url, rest_base=server.rest_url, reconnect_interval_s=0.05,
                                  heartbeat_s=0.5)
    handler = FeedHandler(connection, normalizer, sink, None,
                          HandlerConfig(backoff_initial_s=0.05, resubscribe_retry_s=5.0))
    await play(server, handler, timeout_s=90, settle_s=0.5)
    return sink, normalizer, server


async def test_live_every_record_arrives_and_every_checksum_matches() -> None:
    sink, normalizer, server = await _run(Faults())
    offline, _ = normalize_frames("kraken", read_frames(V2_RUN))
    def trades(records: list) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
        return [(t.symbol, t.trade_id, t.price, t.size) for t in records if isinstance(t, Trade)]
    assert trades(sink.emitted.records) == trades(offline.records) and len(trades(offline.records)) == 10
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert sum(sync.checksums for sync in normalizer.books.values()) == UPDATES + 10
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 1,
                                                                                         "disconnect": 1}
    assert len([r for r in sink.emitted.records if isinstance(r, Instrument)]) == 293
    protocol = server.protocol
    assert isinstance(protocol, KrakenReplay) and protocol.pings >= 1
    assert not sink.emitted.dead_letters


async def test_live_a_corrupted_checksum_resyncs_that_pair_from_the_venues_book() -> None:
    frames = [f for f in read_frames(V2_RUN) if f.kind == "ws"]
    omg = [i for i, f in enumerate(frames) if f.payload.startswith(b'{"channel":"book","type":"update","data":'
                                                                     b'[{"symbol":"OMG/USD"')]
    sink, normalizer, server = await _run(Faults(corrupt_checksum={omg[200]}))
    journal = [(r.symbol, r.event) for r in sink.emitted.records if isinstance(r, FeedStatus) and r.symbol]
    assert journal == [("OMG/USD", "checksum_failure"), ("OMG/USD", "resync_start"), ("OMG/USD", "resync_done")]
    report = normalizer.book_report()
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != "OMG/USD")
    assert report["OMG/USD"][1:] == (1, True)
    resynced = [r for r in sink.emitted.records if isinstance(r, BookDeltas) and r.flags & Flag.GAP_BEFORE]
    assert [r.symbol for r in resynced] == ["OMG/USD"] and resynced[0].flags & Flag.SNAPSHOT
    # the book it rebuilt is the venue's at the end, and its checksum Kraken's last
    protocol = server.protocol
    assert isinstance(protocol, KrakenReplay)
    truth = protocol.books["OMG/USD"]
    bids, asks = normalizer.books["OMG/USD"].book.top(2000)
    assert bids == [(float(p), float(q)) for p, q in truth.sorted(truth.bids, True)]
    assert asks == [(float(p), float(q)) for p, q in truth.sorted(truth.asks, False)]
    last = json.loads(next(f.payload for f in reversed(frames) if b'"symbol":"OMG/USD"' in f.payload
                           and f.payload.startswith(b'{"channel":"book"')))
    assert checksum(normalizer.books["OMG/USD"].book) == last["data"][0]["checksum"]
    assert not sink.emitted.dead_letters


async def test_live_a_dropped_connection_resubscribes_every_book() -> None:
    sink, normalizer, _ = await _run(Faults(drop_after=1500))
    journal = [r.event for r in sink.emitted.records if isinstance(r, FeedStatus) and not r.symbol]
    assert journal == ["connect", "disconnect", "connect", "disconnect"]
    snapshots = Counter(r.symbol for r in sink.emitted.records if isinstance(r, BookDeltas)
                        and r.flags & Flag.SNAPSHOT)
    assert snapshots == {s: 2 for s in SYMBOLS}  # the second from the venue's book, GAP_BEFORE
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert not sink.emitted.dead_letters
