"""Coinbase from the real 2021 Exchange-feed capture, and the same events in Advanced Trade's shapes:
every level2 message applied (the Exchange's level2 has no sequence, so no gap can be seen in it),
the final books equal an independent Decimal rebuild, trades exact to the decimal string with the
aggressor from the maker's side, trade ids continuous, Advanced Trade's sequence_num checked on
every message, and futures sizes in base units with contracts kept."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.venues.coinbase.connection import CoinbaseConnection
from ingest.venues.coinbase.replay import CoinbaseReplay
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, Instrument, Trade
from normalize.venues.coinbase import Coinbase
from normalize.venues.coinbase.wire import iso_ns
from tests.coinbase_data import CAPTURE, PRODUCT_IDS, RUN, advanced_trade, advanced_trade_run, products_frame

APPLIED = {"BAND-GBP": 471, "SKL-GBP": 289, "NU-GBP": 76, "YFI-BTC": 487, "SKL-BTC": 1539, "CRV-EUR": 670,
           "BAND-BTC": 1005, "DASH-BTC": 1925, "NMR-EUR": 665, "SKL-USD": 2592}
"""The capture's 9,719 l2updates, per product."""


def _rebuild(frames: list[Frame]) -> dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]]:
    """The books as the Exchange documents them, in Decimal, written here: a snapshot sets the book,
    each l2update change sets a level's size, "0" removing it."""
    books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
    for frame in frames:
        m = json.loads(frame.payload)
        if frame.kind != "ws":
            continue
        if m["type"] == "snapshot":
            books[m["product_id"]] = ({Decimal(p): Decimal(q) for p, q in m["bids"] if Decimal(q)},
                                      {Decimal(p): Decimal(q) for p, q in m["asks"] if Decimal(q)})
        elif m["type"] == "l2update":
            for side, p, q in m["changes"]:
                levels = books[m["product_id"]][0 if side == "buy" else 1]
                if Decimal(q) == 0:
                    levels.pop(Decimal(p), None)
                else:
                    levels[Decimal(p)] = Decimal(q)
    return books


@pytest.mark.parametrize("protocol", ["exchange", "advanced-trade"])
def test_every_book_message_applies_and_the_books_equal_a_decimal_rebuild(protocol: str) -> None:
    frames = list(read_frames(RUN))
    fed = frames if protocol == "exchange" else advanced_trade(frames)
    out, normalizer = normalize_frames("coinbase", fed)
    assert normalizer.book_report() == {product: (n, 0, True) for product, n in APPLIED.items()}
    assert sum(APPLIED.values()) == 9719
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert not out.dead_letters and not out.snapshot_requests
    truth = _rebuild(frames)
    for product, sync in normalizer.books.items():  # type: ignore[attr-defined]
        bids, asks = truth[product]
        assert sync.book.bids == {float(p): float(q) for p, q in bids.items()}
        assert sync.book.asks == {float(p): float(q) for p, q in asks.items()}
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert len(books) == 9719 + 10
    assert Counter(r.flags & Flag.SNAPSHOT for r in books) == {0: 9719, Flag.SNAPSHOT: 10}


def test_same_time_updates_are_numbered_so_every_book_event_has_its_own_key() -> None:
    """The Exchange sends one level per l2update, several often sharing a microsecond: exch_seq counts
    them 0, 1, ... per product and time, and every (instrument, ts_event, exch_seq) is one message."""
    out, _ = normalize_frames("coinbase", read_frames(RUN))
    books = [r for r in out.records if isinstance(r, BookDeltas) and not r.flags & Flag.SNAPSHOT]
    keys = Counter((r.instrument, r.ts_event, r.exch_seq) for r in books)
    assert max(keys.values()) == 1
    assert Counter(r.exch_seq for r in books)[1] == 744  # the capture's second updates of a microsecond
    first = books[0]
    assert (first.symbol, first.ts_event, first.exch_seq, first.ts_exch) == (
        "SKL-BTC", iso_ns("2021-04-17T16:43:37.075687Z"), 0, None)
    assert first.levels() == ([], [(0.00001306, 660.5)])
    derived = [r for r in out.records if isinstance(r, Bbo) and r.flags & Flag.DERIVED]
    assert len({(r.instrument, r.ts_event, r.exch_seq) for r in derived}) == len(derived) == 9729


@pytest.mark.parametrize("protocol", ["exchange", "advanced-trade"])
def test_trades_are_exact_with_the_aggressor_and_continuous_ids(protocol: str) -> None:
    frames = list(read_frames(RUN))
    out, _ = normalize_frames("coinbase", frames if protocol == "exchange" else advanced_trade(frames))
    trades = {(t.symbol, t.trade_id): t for t in out.records if isinstance(t, Trade)}
    wire = [json.loads(f.payload) for f in frames if f.kind == "ws" and b'match"' in f.payload[:25]]
    assert Counter(m["type"] for m in wire) == {"match": 97, "last_match": 10}
    assert len(trades) == 107
    for m in wire:
        t = trades[(m["product_id"], str(m["trade_id"]))]
        assert Decimal(repr(t.price)) == Decimal(m["price"]) and Decimal(repr(t.size)) == Decimal(m["size"])
        assert t.side == (-1 if m["side"] == "buy" else 1)  # the maker's side is the other one
        assert (t.ts_event, t.instrument, t.size_native, t.trade_type) == (iso_ns(m["time"]), m["product_id"],
                                                                            None, None)
        if protocol == "exchange":
            assert (t.exch_seq, t.ts_exch) == (m["sequence"], None)
        else:  # sequence_num counts a connection's messages: not a venue event id
            assert t.exch_seq is None and t.ts_exch == iso_ns(m["time"])
    assert not [r for r in out.records if isinstance(r, FeedStatus)]  # last_match then matches: no gap


def test_tickers_are_the_venue_bbo_keyed_by_sequence() -> None:
    out, _ = normalize_frames("coinbase", read_frames(RUN))
    native = [r for r in out.records if isinstance(r, Bbo) and not r.flags & Flag.DERIVED]
    assert len(native) == 107
    first = native[0]
    assert (first.symbol, first.exch_seq, first.ts_event, first.bid_price, first.ask_price, first.bid_size) == (
        "BAND-GBP", 333938798, iso_ns("2021-04-17T16:43:30.244075Z"), 14.755, 14.806, None)
    assert len({(r.instrument, r.ts_event, r.exch_seq) for r in native}) == 107
    at, _ = normalize_frames("coinbase", advanced_trade_run())
    at_native = [r for r in at.records if isinstance(r, Bbo) and not r.flags & Flag.DERIVED]
    assert all(r.flags & Flag.TS_EVENT_IMPUTED for r in at_native)
    assert len({(r.instrument, r.ts_event, r.exch_seq) for r in at_native}) == 107
    assert [(r.bid_price, r.ask_price) for r in at_native] == [(r.bid_price, r.ask_price) for r in native]


def test_a_lost_advanced_trade_message_breaks_every_book_of_the_connection() -> None:
    frames = advanced_trade_run()
    lost = next(i for i, f in enumerate(frames) if b'"product_id":"SKL-USD"' in f.payload
                and b'"type":"update"' in f.payload and i > 3000)
    out, normalizer = normalize_frames("coinbase", frames[:lost] + frames[lost + 1:])
    gaps = [r for r in out.records if isinstance(r, FeedStatus) and r.event == "gap"]
    assert {r.symbol for r in gaps} == set(PRODUCT_IDS)
    assert all((r.seq_from, r.seq_to) == (lost, lost) and "1 lost" in r.detail for r in gaps)
    assert out.snapshot_requests == set(PRODUCT_IDS)
    assert all(not synced and breaks == 1 for _, breaks, synced in normalizer.book_report().values())
    # the venue's snapshot of a resubscription (here the replay server's, from its book at that
    # point) brings each back, flagged GAP_BEFORE and journaled resync_done
    replay = CoinbaseReplay(frames)
    for frame in frames:
        replay.observe(frame.payload)
    resync = Emitted()
    for product in PRODUCT_IDS:
        [_, snapshot] = replay.on_client_message(json.dumps({"type": "subscribe", "product_ids": [product],
                                                             "channel": "level2"}), set(), "ws")
        normalizer.on_ws(snapshot.encode(), 1, resync)  # type: ignore[attr-defined]
    assert all(synced for _, _, synced in normalizer.book_report().values())
    assert [r.event for r in resync.records if isinstance(r, FeedStatus)] == ["resync_done"] * 10
    assert all(r.flags & Flag.GAP_BEFORE for r in resync.records if isinstance(r, BookDeltas))
    _, truth = normalize_frames("coinbase", frames)
    for product in PRODUCT_IDS:
        assert normalizer.books[product].book.bids == truth.books[product].book.bids  # type: ignore[attr-defined]


def test_sequence_numbers_restart_on_a_new_connection_and_may_repeat() -> None:
    normalizer, out = Coinbase(), Emitted()
    frames = advanced_trade_run()[:50]
    for frame in frames:
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
    normalizer.connection_id = "second"
    for frame in frames:  # a new connection numbers from 0 again
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
    normalizer.connection_id = "offline"
    normalizer.on_ws(frames[0].payload, 1, out)  # 0 on the first again: a restart, not a gap
    normalizer.on_ws(frames[1].payload, 1, out)
    normalizer.on_ws(frames[1].payload, 1, out)  # at or below the last: let through
    assert not [r for r in out.records if isinstance(r, FeedStatus)] and not out.dead_letters


def test_products_bodies_are_the_instrument_master_with_contract_sizes() -> None:
    out, _ = normalize_frames("coinbase", read_frames([RUN[0]]))
    spot = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    assert len(spot) == 162
    btc = spot["BTC-GBP"]
    assert (btc.instrument, btc.kind, btc.base, btc.quote, btc.settle, btc.contract_size, btc.tick_size,
            btc.lot_size, btc.min_size, btc.status) == ("BTC-GBP", "spot", "BTC", "GBP", "GBP", 1.0, 0.01, 1e-8,
                                                       0.0001, "online")
    assert btc.flags == Flag.FROM_REST | Flag.TS_EVENT_IMPUTED
    for record in spot.values():
        assert CoinbaseConnection.symbol_of(record.instrument) == record.symbol
    normalizer, out = Coinbase(), Emitted()
    normalizer.on_rest(products_frame().url, products_frame().payload, 7, out)
    listed = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    future, perp = listed["BIT-24APR26-CDE"], listed["BIP-20DEC30-CDE"]
    assert (future.instrument, future.kind, future.base, future.quote, future.contract_size, future.lot_size,
            future.tick_size, future.expiry_ts, future.funding_interval_s) == (
        "BTC-USD-20260424", "future", "BTC", "USD", 0.01, 1.0, 5.0, iso_ns("2026-04-24T15:00:00Z"), None)
    assert (perp.instrument, perp.kind, perp.funding_interval_s) == ("BTC-USD-PERP", "perpetual", 3600)
    assert listed["BTC-USD"].kind == "spot"
    with pytest.raises(ValueError, match="give futures by product id"):
        CoinbaseConnection.symbol_of("BTC-USD-20260424")
    # a future's sizes are contracts: base units = contracts x 0.01 BTC, contracts kept native
    book = {"channel": "l2_data", "client_id": "", "timestamp": "2026-04-07T14:30:01.456789123Z", "sequence_num": 1,
            "events": [{"type": "snapshot", "product_id": "BIT-24APR26-CDE", "updates": [
                {"side": "bid", "event_time": "1970-01-01T00:00:00Z", "price_level": "68900", "new_quantity": "35"},
                {"side": "offer", "event_time": "1970-01-01T00:00:00Z", "price_level": "68905", "new_quantity": "7"}]}]}
    trades = {"channel": "market_trades", "client_id": "", "timestamp": "2026-04-07T14:30:02Z", "sequence_num": 2,
              "events": [{"type": "update", "trades": [{"trade_id": "995098700", "product_id": "BIT-24APR26-CDE",
                                                         "price": "68905", "size": "3", "side": "BUY",
                                                         "time": "2026-04-07T14:30:02.789012Z"}]}]}
    normalizer.on_ws(json.dumps(book).encode(), 8, out := Emitted())
    normalizer.on_ws(json.dumps(trades).encode(), 9, out)
    [snapshot] = [r for r in out.records if isinstance(r, BookDeltas)]
    assert snapshot.levels() == ([(68900.0, 0.35)], [(68905.0, 0.07)])
    assert (snapshot.bids_native, snapshot.asks_native) == ([35.0], [7.0])
    assert snapshot.ts_event == snapshot.ts_exch == iso_ns("2026-04-07T14:30:01.456789123Z")  # epoch event_time
    [trade] = [r for r in out.records if isinstance(r, Trade)]
    assert (trade.instrument, trade.size, trade.size_native, trade.side) == ("BTC-USD-20260424", 0.03, 3.0, 1)
    # a future whose body is not loaded is a dead letter, never a wrong unit
    Coinbase().on_ws(json.dumps(trades).encode(), 9, out := Emitted())
    assert out.dead_letters[0].reason == ("bad market_trades frame: no contract size for BIT-24APR26-CDE: its "
                                          "products body is not loaded")


def test_malformed_frames_are_dead_letters_and_a_bad_update_breaks_its_book() -> None:
    frames = list(read_frames([CAPTURE]))
    normalizer, out = Coinbase(), Emitted()
    for frame in frames[:200]:
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
    assert normalizer.books["SKL-BTC"].synced
    update = next(f.payload for f in frames[200:]
                  if b'"product_id":"SKL-BTC"' in f.payload and b"l2update" in f.payload)
    match = next(f.payload for f in frames if b'"type":"match"' in f.payload)
    out = Emitted()
    for payload in (update.replace(b'"sell"', b'"middle"').replace(b'"buy"', b'"middle"'),
                    match.replace(b'"side":"sell"', b'"side":"up"'), match.replace(b'"time":"', b'"time":"x'),
                    b'{"type":"error","message":"Failed to subscribe","reason":"level2 requires authentication"}',
                    b'{"type":"mystery"}', b'{"channel":"l2_data","sequence_num":"x"}', b"\x00",
                    b'{"channel":"secret","client_id":"","timestamp":"2026-01-01T00:00:00Z","sequence_num":0,'
                    b'"events":[]}'):
        normalizer.on_ws(payload, 5, out)
    prefixes = ["bad L2Update frame: book side 'middle'", "bad Match frame: match side 'up'",
                "bad Match frame: not an RFC 3339 UTC time", "venue error: Failed to subscribe level2 requires",
                "undecodable frame: Invalid value 'mystery'", "undecodable l2_data frame: ", "undecodable frame: ",
                "unsupported channel secret"]
    assert len(out.dead_letters) == len(prefixes)
    assert all(d.reason.startswith(p) for d, p in zip(out.dead_letters, prefixes, strict=True)), [
        d.reason for d in out.dead_letters]
    journal = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("SKL-BTC", "gap"), ("SKL-BTC", "resync_start")]
    assert out.snapshot_requests == {"SKL-BTC"} and not normalizer.books["SKL-BTC"].synced


def test_trade_gaps_are_fetched_from_the_exchange_rest_trades_page_by_page() -> None:
    frames = [f for f in read_frames([CAPTURE]) if b'"product_id":"SKL-USD"' in f.payload and b"match" in f.payload]
    matches = [json.loads(f.payload) for f in frames]
    normalizer, out = Coinbase(), Emitted()
    for i, frame in enumerate(frames):
        if i not in (10, 11, 12):
            normalizer.on_ws(frame.payload, i, out)
    [gap] = [r for r in out.records if isinstance(r, FeedStatus)]
    ids = [m["trade_id"] for m in matches[10:13]]
    assert (gap.event, gap.seq_from, gap.seq_to) == ("trade_gap", ids[0], ids[2])
    [request] = out.backfill_requests
    connection = CoinbaseConnection(["SKL-USD"])
    url = connection.backfill_url(request)
    assert url == f"https://api.exchange.coinbase.com/products/SKL-USD/trades?after={ids[2] + 1}&limit=1000"
    rest = [{"time": m["time"], "trade_id": m["trade_id"], "price": m["price"], "size": m["size"], "side": m["side"]}
            for m in reversed(matches)]
    # a page of 2 (limit=2) holding the newest two missing: the next page is asked for the rest
    page = [t for t in rest if t["trade_id"] <= ids[2]][:2]
    normalizer.on_rest(url.replace("limit=1000", "limit=2"), json.dumps(page).encode(), 50, out := Emitted())
    assert [r.trade_id for r in out.records if isinstance(r, Trade)] == [str(ids[1]), str(ids[2])]
    [more] = out.backfill_requests
    assert (more.first_id, more.last_id) == (ids[0], ids[0])
    page = [t for t in rest if t["trade_id"] < ids[1]][:2]
    normalizer.on_rest(connection.backfill_url(more), json.dumps(page).encode(), 51, out := Emitted())
    [filled] = [r for r in out.records if isinstance(r, Trade)]
    offline = next(m for m in matches if m["trade_id"] == ids[0])
    assert (filled.trade_id, filled.price, filled.side, filled.flags, filled.ts_event) == (
        str(ids[0]), float(offline["price"]), -1 if offline["side"] == "buy" else 1, Flag.LAST | Flag.FROM_REST,
        iso_ns(offline["time"]))
    assert [(r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)] == [
        ("backfill_done", ids[0], ids[2])]
    assert connection.backfill_url(request._replace(symbol="BIT-24APR26-CDE")) is None


def test_the_connection_speaks_advanced_trade_by_default_and_the_exchange_on_request() -> None:
    [route] = CoinbaseConnection(["BTC-USD", "ETH-USD"]).routes()
    assert route.url == "wss://advanced-trade-ws.coinbase.com/" and route.book_channel == "level2"
    assert [json.loads(m) for m in route.subscribe] == [
        {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": c}
        for c in ("level2", "market_trades", "ticker", "heartbeats")]
    exchange = CoinbaseConnection(["BTC-USD"], protocol="exchange")
    [route] = exchange.routes()
    assert route.url == "wss://ws-feed.exchange.coinbase.com/"
    assert [json.loads(m)["channels"] for m in route.subscribe] == [["level2_batch"], ["matches"], ["ticker"],
                                                                    ["heartbeat"]]
    assert [json.loads(m) for m in exchange.resubscribe_messages("BTC-USD")] == [
        {"type": t, "product_ids": ["BTC-USD"], "channels": ["level2_batch"]} for t in ("unsubscribe", "subscribe")]
    assert exchange.metadata_urls() == ["https://api.exchange.coinbase.com/products"]
    assert CoinbaseConnection(["BTC-USD"]).metadata_urls() == [
        "https://api.coinbase.com/api/v3/brokerage/market/products?get_all_products=true&product_ids=BTC-USD"]
    connection = CoinbaseConnection(["BTC-USD"])
    assert connection.channel_of(b'{"channel":"l2_data","client_id":""}') == "level2"
    assert connection.channel_of(b'{"channel":"heartbeats"}') is None
    assert connection.channel_of(b'{"type":"last_match","trade_id":1}') == "market_trades"
    assert connection.channel_of(b'{"type":"subscriptions"}') is None
    assert connection.snapshot_url("BTC-USD") is None and connection.heartbeat() is None
    from ingest.venues.interface import UnknownChannel
    with pytest.raises(UnknownChannel, match="coinbase has no channel 'candles'"):
        CoinbaseConnection(["BTC-USD"], channels=("candles",), protocol="exchange")
