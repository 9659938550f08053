"""Kraken Futures: the real 2021 capture normalized (books rebuilt independently with Decimal, every
seq in order, trades exact to the text, contracts in base units), the ticker's funding as a fraction
per interval, ids, and the real handler against the replay server with a seq break and a drop."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.offline import normalize_frames
from ingest.replay_server import Faults, ReplayServer
from ingest.venues.kraken_futures.connection import KrakenFuturesConnection
from ingest.venues.kraken_futures.replay import KrakenFuturesReplay
from ingest.venues.names import venue_symbols
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus, Funding, Instrument, MarkIndex, OpenInterest, Trade
from normalize.venues.kraken_futures import KrakenFutures
from normalize.venues.kraken_futures.instruments import spec_from_symbol, venue_symbol
from tests.kraken_futures_data import RUN, SYMBOLS, WS
from tests.live_replay import play

DELTAS = 7014


def _ws_messages() -> list[dict]:  # type: ignore[type-arg]
    """The recorded data frames (acks left out), numbers as Decimal."""
    messages = [json.loads(f.payload, parse_float=Decimal) for f in read_frames([WS])]
    return [m for m in messages if "event" not in m]


def test_the_capture_normalizes_with_every_seq_in_order() -> None:
    out, normalizer = normalize_frames("kraken-futures", read_frames(RUN))
    assert not out.dead_letters
    report = normalizer.book_report()
    assert set(report) == set(SYMBOLS)
    assert all(breaks == 0 and synced for _, breaks, synced in report.values())
    assert sum(applied for applied, _, _ in report.values()) == DELTAS
    counts = Counter(type(r).__name__ for r in out.records)
    assert counts == {"BookDeltas": DELTAS + 10, "Bbo": DELTAS + 10, "Trade": 1003, "Instrument": 17}
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    # every delta's seq is its product's last + 1, snapshot included (checked here on the frames too)
    last: dict[str, int] = {}
    for m in _ws_messages():
        if m.get("feed") in ("book_snapshot", "book"):
            assert m["feed"] == "book_snapshot" or m["seq"] == last[m["product_id"]] + 1
            last[m["product_id"]] = m["seq"]
    assert {s: normalizer.books[s].seq for s in SYMBOLS} == last  # type: ignore[attr-defined]


def test_final_books_equal_an_independent_decimal_rebuild() -> None:
    books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    for m in _ws_messages():
        if m.get("feed") == "book_snapshot":
            books[m["product_id"]] = {"buy": {lv["price"]: lv["qty"] for lv in m["bids"] if lv["qty"]},
                                      "sell": {lv["price"]: lv["qty"] for lv in m["asks"] if lv["qty"]}}
        elif m.get("feed") == "book":
            side = books[m["product_id"]][m["side"]]
            if m["qty"]:
                side[m["price"]] = m["qty"]
            else:
                side.pop(m["price"], None)
    _, normalizer = normalize_frames("kraken-futures", read_frames(RUN))
    for symbol, truth in books.items():
        bids, asks = normalizer.books[symbol].book.top(10_000)  # type: ignore[attr-defined]
        # inverse contracts of 1 USD: base units = contracts / price
        assert bids == [(float(p), float(q) / float(p)) for p, q in sorted(truth["buy"].items(), reverse=True)]
        assert asks == [(float(p), float(q) / float(p)) for p, q in sorted(truth["sell"].items())]
        assert len(bids) > 5 and len(asks) > 5


def test_book_messages_carry_contracts_as_native_sizes() -> None:
    out, _ = normalize_frames("kraken-futures", read_frames(RUN))
    first = next(r for r in out.records if isinstance(r, BookDeltas) and r.symbol == "PI_ETHUSD"
                 and not r.flags & Flag.SNAPSHOT)
    # {"feed":"book","product_id":"PI_ETHUSD","side":"sell","seq":26660860,"price":2004.85,"qty":4787.0,...}
    assert (first.exch_seq, first.ts_event, first.levels(), first.asks_native) == (
        26660860, 1626994927744 * 10**6, ([], [(2004.85, 4787.0 / 2004.85)]), [4787.0])
    assert first.instrument == "ETH-USD-PERP"


def test_trades_are_exact_to_the_text_and_oldest_first() -> None:
    out, _ = normalize_frames("kraken-futures", read_frames(RUN))
    trades = [r for r in out.records if isinstance(r, Trade)]
    expected = []
    for m in _ws_messages():
        if m.get("feed") == "trade_snapshot":
            expected += m["trades"][::-1]
        elif m.get("feed") == "trade":
            expected.append(m)
    assert len(trades) == len(expected) == 1003
    for record, t in zip(trades, expected, strict=True):
        assert (record.trade_id, record.price, record.size_native, record.side, record.ts_event, record.exch_seq) == (
            t["uid"], float(t["price"]), float(t["qty"]), 1 if t["side"] == "buy" else -1, t["time"] * 10**6,
            t["seq"])
        assert record.size == float(t["qty"]) / float(t["price"]) and record.trade_type is None
    spec = spec_from_symbol("FI_BCHUSD_210730")
    assert spec is not None and trades[0].instrument == spec.instrument == "BCH-USD-20210730"
    # within a snapshot, oldest first and LAST on the newest
    snapshot = [t for t in trades[:100]]
    assert [t.exch_seq for t in snapshot] == sorted(t.exch_seq for t in snapshot)  # type: ignore[type-var]
    assert snapshot[-1].flags & Flag.LAST and not snapshot[0].flags & Flag.LAST


def test_prints_that_are_not_market_trades_are_marked() -> None:
    normalizer, out = KrakenFutures(), Emitted()
    for kind in ("liquidation", "block", "assignment", "termination", "fill", "new_kind"):
        frame = {"feed": "trade", "product_id": "PF_XBTUSD", "uid": kind, "side": "sell", "type": kind,
                 "seq": 1, "time": 1790360004381, "qty": 0.0002, "price": 83994.0}
        normalizer.on_ws(json.dumps(frame).encode(), 1, out)
    assert [(t.trade_id, t.trade_type, t.size, t.size_native, t.instrument) for t in out.records] == [
        (kind, trade_type, 0.0002, 0.0002, "BTC-USD:USD-PERP") for kind, trade_type in (
            ("liquidation", "liquidation"), ("block", "block"), ("assignment", "adl"), ("termination", "unknown"),
            ("fill", None), ("new_kind", "unknown"))]


PF_TICKER = (b'{"time":1790359997224,"product_id":"PF_XBTUSD","funding_rate":0.912482213835,'
             b'"funding_rate_prediction":1.3232500286425,"relative_funding_rate":0.00001089345,'
             b'"relative_funding_rate_prediction":0.00001575425,"next_funding_rate_time":1790362800000,'
             b'"leverage":"100x","premium":0.0,"feed":"ticker","bid":84001.0,"ask":84002.0,"bid_size":0.0273,'
             b'"ask_size":0.006,"volume":4237.2723,"dtm":0,"index":83995.76,"last":83997.0,"change":-0.22,'
             b'"suspended":false,"tag":"perpetual","pair":"XBT:USD","openInterest":2189.7813,'
             b'"markPrice":84004.11362574516,"maturityTime":0,"post_only":false,"volumeQuote":356641614.007}')
"""A PF_XBTUSD ticker as recorded by a third-party project (2026-09): funding_rate 0.912 USD per BTC
contract an hour is relative_funding_rate 0.0000109 of the price."""
PI_TICKER = (b'{"time":1612270825253,"feed":"ticker","product_id":"PI_XBTUSD","bid":34832.5,"ask":34847.5,'
             b'"bid_size":42864.0,"ask_size":2300.0,"volume":262306237.0,"dtm":0,"leverage":"50x","index":34803.45,'
             b'"premium":0.1,"last":34852.0,"change":2.995109121267192,"funding_rate":3.891007752e-9,'
             b'"funding_rate_prediction":4.2233756e-9,"suspended":false,"tag":"perpetual","pair":"XBT:USD",'
             b'"openInterest":107706940.0,"markPrice":34844.25,"maturityTime":0,'
             b'"relative_funding_rate":0.000135046879166667,"relative_funding_rate_prediction":0.000146960125,'
             b'"next_funding_rate_time":1612281600000}')
"""Kraken's documentation example (2021, four-hourly funding then): for the inverse contract the
absolute rate is in BTC per 1 USD contract."""


def test_ticker_funding_is_the_relative_rate_a_fraction_per_interval() -> None:
    normalizer, out = KrakenFutures(), Emitted()
    normalizer.on_ws(PF_TICKER, 1, out)
    bbo, mark, oi, funding = out.records
    assert isinstance(bbo, Bbo) and isinstance(mark, MarkIndex) and isinstance(oi, OpenInterest)
    assert isinstance(funding, Funding)
    assert (bbo.bid_price, bbo.bid_size, bbo.ask_price, bbo.ask_size, bbo.ts_event) == (
        84001.0, 0.0273, 84002.0, 0.006, 1790359997224 * 10**6)
    assert (mark.mark_price, mark.index_price) == (84004.11362574516, 83995.76)
    assert mark.flags & Flag.INEXACT  # the mark price has 16 digits; the ticker's `change` is not used
    assert (oi.open_interest, oi.open_interest_native, oi.open_interest_value) == (2189.7813, 2189.7813, None)
    assert (funding.funding_rate, funding.predicted_rate, funding.interval_s, funding.next_funding_ts) == (
        0.00001089345, 0.00001575425, 3600, 1790362800000 * 10**6)
    assert funding.instrument == "BTC-USD:USD-PERP" and funding.flags & Flag.LAST
    # the absolute rate is the relative one times the spot price when it was computed (within 1 %)
    assert abs(0.912482213835 / 84004.11362574516 / funding.funding_rate - 1) < 0.01
    normalizer.on_ws(PI_TICKER, 2, out)
    pi = out.records[4:]
    assert [type(r).__name__ for r in pi] == ["Bbo", "MarkIndex", "OpenInterest", "Funding"]
    assert pi[0].bid_size == 42864.0 / 34832.5  # type: ignore[attr-defined]
    assert (pi[2].open_interest, pi[2].open_interest_value) == (107706940.0 / 34844.25, 107706940.0)  # type: ignore[attr-defined]
    assert pi[3].funding_rate == 0.000135046879166667 and pi[3].instrument == "BTC-USD-PERP"  # type: ignore[attr-defined]


def test_omitted_ticker_fields_are_zero_and_the_interval_follows_settlements() -> None:
    normalizer, out = KrakenFutures(), Emitted()
    base = json.loads(PF_TICKER)
    for key in ("relative_funding_rate", "relative_funding_rate_prediction", "funding_rate",
                "funding_rate_prediction"):
        del base[key]
    normalizer.on_ws(json.dumps(base).encode(), 1, out)
    later = base | {"time": base["time"] + 4 * 3600_000, "next_funding_rate_time": base["next_funding_rate_time"]
                    + 4 * 3600_000, "relative_funding_rate": 0.0001}
    normalizer.on_ws(json.dumps(later).encode(), 2, out)
    first, second = [r for r in out.records if isinstance(r, Funding)]
    assert (first.funding_rate, first.predicted_rate, first.interval_s) == (0.0, 0.0, 3600)
    assert (second.funding_rate, second.interval_s) == (0.0001, 4 * 3600)
    # a dated future has no funding
    dated = base | {"product_id": "FF_XBTUSD_250328", "tag": "quarter"}
    before = len(out.records)
    normalizer.on_ws(json.dumps(dated).encode(), 3, out)
    assert [type(r).__name__ for r in out.records[before:]] == ["Bbo", "MarkIndex", "OpenInterest"]


def test_control_frames_and_unreadable_ones() -> None:
    normalizer, out = KrakenFutures(), Emitted()
    for frame in (b'{"event":"info","version":1}', b'{"event":"subscribed","feed":"book","product_ids":["PI_XBTUSD"]}',
                  b'{"feed":"heartbeat","time":1}',
                  b'{"feed":"ticker_lite","product_id":"PI_LTCUSD","bid":119.31,"ask":119.42}'):
        normalizer.on_ws(frame, 1, out)
    assert not out.records and not out.dead_letters
    normalizer.on_ws(b'{"event":"alert","message":"Failed to subscribe to authenticated feed"}', 2, out)
    normalizer.on_ws(b'{"feed":"trade","product_id":"PI_XBTUSD","uid":"x","side":"buy","time":1,"qty":"1",'
                     b'"price":1.0}', 3, out)
    normalizer.on_ws(b'{"feed":"book","product_id":"IN_XBTUSD","side":"buy","seq":1,"price":1.0,"qty":1.0,'
                     b'"timestamp":1}', 4, out)
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "venue event alert", "bad trade frame", "bad book frame"]


def test_ids_round_trip_and_instruments() -> None:
    for symbol, instrument in (("PI_XBTUSD", "BTC-USD-PERP"), ("PF_XBTUSD", "BTC-USD:USD-PERP"),
                               ("FI_XBTUSD_210924", "BTC-USD-20210924"), ("FF_ETHUSD_250328", "ETH-USD:USD-20250328"),
                               ("PV_XRPXBT", "XRP-BTC-PERP")):
        spec = spec_from_symbol(symbol)
        assert spec is not None and spec.instrument == instrument and venue_symbol(instrument) == symbol
    assert venue_symbols(KrakenFuturesConnection, ["BTC-USD:USD-PERP", "PI_ETHUSD"]) == ["PF_XBTUSD", "PI_ETHUSD"]
    with pytest.raises(ValueError, match="kraken-futures lists perpetuals"):
        venue_symbol("BTC-USD")
    out, _ = normalize_frames("kraken-futures", read_frames(RUN))
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    fi = instruments["FI_XBTUSD_210924"]
    assert (fi.kind, fi.inverse, fi.contract_size, fi.tick_size, fi.settle, fi.expiry_ts, fi.funding_interval_s) == (
        "future", True, 1.0, 0.5, "BTC", 1632495600 * 10**9, None)
    pi = instruments["PI_XRPUSD"]
    assert (pi.instrument, pi.kind, pi.tick_size, pi.funding_interval_s) == ("XRP-USD-PERP", "perpetual", 0.0001, 3600)


# -- the real handler against the replay server ------------------------------------------------------
async def _run(faults: Faults) -> tuple[CollectingSink, KrakenFutures, ReplayServer]:
    server = ReplayServer("kraken-futures", list(read_frames(RUN)), speed=20, faults=faults)
    await server.start()
    sink, normalizer = CollectingSink(), KrakenFutures()
    connection = KrakenFuturesConnection(SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                         reconnect_interval_s=0.05)
    handler = FeedHandler(connection, normalizer, sink, None,
                          HandlerConfig(backoff_initial_s=0.05, resubscribe_retry_s=0.5))
    await play(server, handler, timeout_s=90, settle_s=0.5)
    return sink, normalizer, server


def _offline_trades() -> set[str]:
    out, _ = normalize_frames("kraken-futures", read_frames(RUN))
    return {r.trade_id for r in out.records if isinstance(r, Trade)}


async def test_live_every_trade_arrives_and_books_stay_in_sync() -> None:
    sink, normalizer, _ = await _run(Faults())
    assert {r.trade_id for r in sink.emitted.records if isinstance(r, Trade)} == _offline_trades()
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    assert sum(applied for applied, _, _ in normalizer.book_report().values()) == DELTAS
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 1,
                                                                                         "disconnect": 1}
    assert len([r for r in sink.emitted.records if isinstance(r, Instrument)]) == 17
    assert not sink.emitted.dead_letters


async def test_live_a_seq_break_resyncs_that_product_alone_from_the_venues_book() -> None:
    frames = [f for f in read_frames(RUN) if f.kind == "ws"]
    eth = [i for i, f in enumerate(frames) if f.payload.startswith(b'{"feed":"book","product_id":"PI_ETHUSD"')]
    sink, normalizer, server = await _run(Faults(skip={eth[1000]}))
    journal = [(r.symbol, r.event) for r in sink.emitted.records if isinstance(r, FeedStatus) and r.symbol]
    assert journal == [("PI_ETHUSD", "gap"), ("PI_ETHUSD", "resync_start"), ("PI_ETHUSD", "resync_done")]
    report = normalizer.book_report()
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != "PI_ETHUSD")
    assert report["PI_ETHUSD"][1:] == (1, True)
    snapshots = [r for r in sink.emitted.records if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]
    assert [r.symbol for r in snapshots if r.flags & Flag.GAP_BEFORE] == ["PI_ETHUSD"]
    # the rebuilt book is the venue's at the end: the replay server's truth, in contracts
    protocol = server.protocol
    assert isinstance(protocol, KrakenFuturesReplay)
    truth = protocol.books["PI_ETHUSD"]
    bids, asks = normalizer.books["PI_ETHUSD"].book.top(10_000)
    assert bids == [(p, truth.bids[p] / p) for p in sorted(truth.bids, reverse=True)]
    assert asks == [(p, truth.asks[p] / p) for p in sorted(truth.asks)]
    assert {r.trade_id for r in sink.emitted.records if isinstance(r, Trade)} == _offline_trades()
    assert not sink.emitted.dead_letters


async def test_live_a_dropped_connection_resubscribes_every_book() -> None:
    sink, normalizer, _ = await _run(Faults(drop_after=2000))
    journal = [r.event for r in sink.emitted.records if isinstance(r, FeedStatus) and not r.symbol]
    assert journal == ["connect", "disconnect", "connect", "disconnect"]
    snapshots = [(r.symbol, bool(r.flags & Flag.GAP_BEFORE)) for r in sink.emitted.records
                 if isinstance(r, BookDeltas) and r.flags & Flag.SNAPSHOT]
    # each book again from the new subscription's snapshot: GAP_BEFORE where deltas were lost between
    # (the snapshot's seq does not continue the book's), not where the book had missed nothing
    assert Counter(symbol for symbol, _ in snapshots) == {s: 2 for s in SYMBOLS}
    assert [gap for _, gap in snapshots[:len(SYMBOLS)]] == [False] * len(SYMBOLS)
    assert all(breaks == 0 and synced for _, breaks, synced in normalizer.book_report().values())
    received = [r.trade_id for r in sink.emitted.records if isinstance(r, Trade)]
    # the second subscription's trade snapshot repeats trades already published (same keys)
    assert set(received) == _offline_trades()
    assert not sink.emitted.dead_letters


def test_connection_subscribes_per_feed_and_resyncs_one_book() -> None:
    from ingest.venues.kraken_futures import connection as module

    connection = KrakenFuturesConnection(["pi_xbtusd", "PF_ETHUSD"], ws_base="ws://127.0.0.1:1",
                                         rest_base="http://127.0.0.1:1")
    [route] = connection.routes()
    assert (route.name, route.url, route.book_channel, route.symbols) == (
        "v1", "ws://127.0.0.1:1/ws/v1", "book", ("PI_XBTUSD", "PF_ETHUSD"))
    assert [json.loads(m) for m in route.subscribe] == [
        {"event": "subscribe", "feed": feed, "product_ids": ["PI_XBTUSD", "PF_ETHUSD"]}
        for feed in ("book", "trade", "ticker")]
    assert [json.loads(m) for m in connection.resubscribe_messages("PF_ETHUSD")] == [
        {"event": "unsubscribe", "feed": "book", "product_ids": ["PF_ETHUSD"]},
        {"event": "subscribe", "feed": "book", "product_ids": ["PF_ETHUSD"]}]
    assert connection.heartbeat() is None and connection.snapshot_url("PF_ETHUSD") is None
    assert connection.metadata_urls() == ["http://127.0.0.1:1/derivatives/api/v3/instruments"]
    assert connection.channel_of(b'{"feed":"book_snapshot","product_id":"PI_XBTUSD"}') == "book"
    assert connection.channel_of(b'{"feed":"heartbeat","time":1}') is None
    assert connection.channel_of(b'{"event":"subscribed","feed":"book"}') is None
    assert (module.DECOMMISSIONED, module.SUCCESSOR) == ("2027-03-01", "wss://uws.kraken.com/v2/public")
