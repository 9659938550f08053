"""Binance spot from the real captures: every diff applied with zero sequence breaks under spot's own
rule, the final books equal an independent Decimal rebuild, trades exact to the decimal string, the
timeless bookTicker keyed by its update id, and a break resyncs that symbol alone."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.venues.binance_spot.connection import BinanceSpotConnection
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDelta, FeedStatus, Instrument, Trade, expand
from normalize.venues.binance_spot import BinanceSpot
from normalize.venues.binance_spot.instruments import instrument_id
from tests.binance_spot_data import (
    BTCUSDT_SESSION,
    CRYPTOFEED_RUN,
    CRYPTOFEED_SYMBOLS,
    FILTERS,
    exchange_info_frame,
)

MS = 1_000_000


def _rebuild(frames: list[Frame]) -> dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int]]:
    """The books by Binance spot's documented procedure, in Decimal, written here independently of
    the normalizer: per symbol, buffer diffs until the REST snapshot (L), drop u <= L, the first
    applied has U <= L + 1 <= u, then U == previous u + 1 (asserted)."""
    snapshots: dict[str, dict] = {}  # type: ignore[type-arg]
    diffs: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for frame in frames:
        body = json.loads(frame.payload)
        if frame.kind == "rest":
            symbol = frame.url.split("symbol=")[1].split("&")[0]
            snapshots.setdefault(symbol, body)
        elif body.get("data", {}).get("e") == "depthUpdate":
            diffs.setdefault(body["data"]["s"], []).append(body["data"])
    books = {}
    for symbol, snapshot in snapshots.items():
        last = snapshot["lastUpdateId"]
        bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        applied = 0
        for diff in diffs[symbol]:
            if diff["u"] <= last:
                continue
            assert diff["U"] <= last + 1 <= diff["u"] if applied == 0 else diff["U"] == last + 1
            for side, levels in ((bids, diff["b"]), (asks, diff["a"])):
                for p, q in levels:
                    if Decimal(q) == 0:
                        side.pop(Decimal(p), None)
                    else:
                        side[Decimal(p)] = Decimal(q)
            last, applied = diff["u"], applied + 1
        books[symbol] = (bids, asks, applied)
    return books


@pytest.mark.parametrize(("paths", "applied"), [
    (CRYPTOFEED_RUN, {"NKNUSDT": 149, "BLZETH": 9, "LRCBTC": 13, "RUNEEUR": 1}),
    ([BTCUSDT_SESSION], {"BTCUSDT": 3449}),
], ids=["cryptofeed-4-pairs", "hftbacktest-btcusdt"])
def test_books_rebuild_without_breaks_and_equal_a_decimal_rebuild(paths: list, applied: dict[str, int]) -> None:
    frames = list(read_frames(paths))
    out, normalizer = normalize_frames("binance-spot", frames)
    assert normalizer.book_report() == {symbol: (n, 0, True) for symbol, n in applied.items()}
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert not out.dead_letters and not out.snapshot_requests
    truth = _rebuild(frames)
    for symbol, sync in normalizer.books.items():  # type: ignore[attr-defined]
        bids, asks, n = truth[symbol]
        assert n == applied[symbol]
        assert sync.book.bids == {float(p): float(q) for p, q in bids.items()}
        assert sync.book.asks == {float(p): float(q) for p, q in asks.items()}
    rows = expand(out.records)
    snapshots = Counter(r.symbol for r in rows if isinstance(r, BookDelta) and r.flags & Flag.SNAPSHOT)
    assert set(snapshots) == set(applied) and all(n >= 100 for n in snapshots.values())
    # spot diffs carry E only: ts_event = E, no distinct send time; snapshots have no time at all
    diff_rows = [r for r in rows if isinstance(r, BookDelta) and not r.flags & Flag.SNAPSHOT]
    assert diff_rows and all(r.ts_exch is None and not r.flags & Flag.TS_EVENT_IMPUTED for r in diff_rows)
    assert all(r.flags & Flag.TS_EVENT_IMPUTED and r.flags & Flag.FROM_REST for r in rows
               if isinstance(r, BookDelta) and r.flags & Flag.SNAPSHOT)


def test_trades_are_exact_to_the_decimal_string() -> None:
    frames = list(read_frames([BTCUSDT_SESSION, *CRYPTOFEED_RUN]))
    out, _ = normalize_frames("binance-spot", frames)
    trades = {(t.symbol, t.trade_id): t for t in out.records if isinstance(t, Trade)}
    wire = [json.loads(f.payload)["data"] for f in frames
            if f.kind == "ws" and (b'"e":"trade"' in f.payload or b'"e":"aggTrade"' in f.payload)]
    assert len(wire) == len(trades) == 9757 + 2
    for w in wire:
        t = trades[(w["s"], str(w.get("t", w.get("a"))))]
        assert Decimal(repr(t.price)) == Decimal(w["p"]) and Decimal(repr(t.size)) == Decimal(w["q"])
        assert (t.ts_event, t.ts_exch, t.side, t.trade_type) == (w["T"] * MS, w["E"] * MS, -1 if w["m"] else 1, None)
        assert t.instrument == instrument_id(w["s"]) and t.size_native is None
    assert trades["BTCUSDT", "3735683259"].instrument == "BTC-USDT"
    assert trades["LRCBTC", "9213679"].instrument == "LRC-BTC"
    assert not [r for r in out.records if isinstance(r, FeedStatus)]  # raw trade ids run on without a gap


def test_book_ticker_has_no_time_and_is_keyed_by_its_update_id() -> None:
    frames = list(read_frames([BTCUSDT_SESSION]))
    out, _ = normalize_frames("binance-spot", frames)
    native = [r for r in out.records if isinstance(r, Bbo) and not r.flags & Flag.DERIVED]
    assert len(native) == 28040
    first = native[0]
    assert (first.exch_seq, first.bid_price, first.bid_size, first.ask_price, first.ask_size) == (
        50093239212, 61837.63, 3.78826, 61837.64, 1.54698)
    assert all(r.flags & Flag.TS_EVENT_IMPUTED and r.ts_event == r.ts_recv and r.ts_exch is None for r in native)
    assert len({r.exch_seq for r in native}) == len(native)  # u tells every one apart
    # where a bookTicker and a diff end at the same update id, the venue's best levels are the book's
    derived = {r.exch_seq: r for r in out.records if isinstance(r, Bbo) and r.flags & Flag.DERIVED}
    same = [(r, derived[r.exch_seq]) for r in native if r.exch_seq in derived]
    assert len(same) > 100
    assert all((a.bid_price, a.bid_size, a.ask_price, a.ask_size) == (b.bid_price, b.bid_size, b.ask_price,
                                                                       b.ask_size) for a, b in same)


def test_a_skipped_diff_resyncs_that_symbol_only() -> None:
    frames = list(read_frames(CRYPTOFEED_RUN))
    nkn = [i for i, f in enumerate(frames) if b"nknusdt@depth" in f.payload]
    skipped = nkn[60]
    out, normalizer = normalize_frames("binance-spot", frames[:skipped] + frames[skipped + 1:])
    journal = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("NKNUSDT", "gap"), ("NKNUSDT", "resync_start")]
    gap = next(r for r in out.records if isinstance(r, FeedStatus) and r.event == "gap")
    assert gap.detail.startswith("diff U=") and "does not follow u=" in gap.detail
    assert out.snapshot_requests == {"NKNUSDT"}
    report = normalizer.book_report()
    assert report["NKNUSDT"][1:] == (1, False)
    assert {s: report[s] for s in CRYPTOFEED_SYMBOLS[1:]} == {"BLZETH": (9, 0, True), "LRCBTC": (13, 0, True),
                                                             "RUNEEUR": (1, 0, True)}
    assert not [r for r in expand(out.records) if isinstance(r, BookDelta) and r.symbol == "NKNUSDT"
                and r.ts_recv >= gap.ts_recv]


def test_a_snapshot_older_than_the_buffered_diffs_is_asked_for_again() -> None:
    """Spot's rule counts from lastUpdateId + 1: a snapshot whose L + 1 falls before the first buffered
    diff's U cannot be continued."""
    frames = list(read_frames(CRYPTOFEED_RUN))
    rest = next(f for f in frames if f.kind == "rest" and "NKNUSDT" in f.url)
    first_diff = next(json.loads(f.payload)["data"] for f in frames if b"nknusdt@depth" in f.payload)
    old = json.loads(rest.payload) | {"lastUpdateId": first_diff["U"] - 2}
    normalizer, out = BinanceSpot(), Emitted()
    normalizer.on_ws(next(f.payload for f in frames if b"nknusdt@depth" in f.payload), 1, out)
    normalizer.on_rest(rest.url, json.dumps(old).encode(), 2, out)
    assert out.snapshot_requests == {"NKNUSDT"} and not normalizer.books["NKNUSDT"].synced
    assert [r.event for r in out.records if isinstance(r, FeedStatus)] == ["resync_start"]
    # one exactly at U - 1 continues it
    normalizer.on_rest(rest.url, json.dumps(old | {"lastUpdateId": first_diff["U"] - 1}).encode(), 3, out)
    assert normalizer.books["NKNUSDT"].synced and normalizer.books["NKNUSDT"].applied == 1


def test_malformed_frames_are_dead_letters() -> None:
    frames = list(read_frames(CRYPTOFEED_RUN))
    ticker = next(f for f in frames if b"@bookTicker" in f.payload)
    diff = next(f for f in frames if b"blzeth@depth" in f.payload)
    normalizer, out = BinanceSpot(), Emitted()
    for payload in (ticker.payload.replace(b'"b":"', b'"b":"nan', 1), b'{"stream":"x@bookTicker","data":{}}',
                    diff.payload.replace(b'"U":', b'"U":"x', 1), b"\xff", b'{"result":null,"id":1}'):
        normalizer.on_ws(payload, 1, out)
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "bad bookTicker frame", "bad bookTicker frame", "undecodable frame", "undecodable frame"]
    assert not out.records


def test_exchange_info_is_the_instrument_master() -> None:
    out, normalizer = normalize_frames("binance-spot", [exchange_info_frame(), *read_frames(CRYPTOFEED_RUN)])
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    assert set(instruments) == set(FILTERS)
    btc = instruments["BTCUSDT"]
    assert (btc.instrument, btc.kind, btc.base, btc.quote, btc.settle, btc.inverse, btc.contract_size) == (
        "BTC-USDT", "spot", "BTC", "USDT", "USDT", False, 1.0)
    assert (btc.tick_size, btc.lot_size, btc.min_size, btc.funding_interval_s, btc.expiry_ts, btc.status) == (
        0.01, 0.00001, 0.00001, None, None, "TRADING")
    assert btc.ts_event == 1633998510000 * MS and btc.flags == Flag.FROM_REST
    for record in instruments.values():
        assert BinanceSpotConnection.symbol_of(record.instrument) == record.symbol
    # ids of the records follow the master
    assert {r.instrument for r in out.records if isinstance(r, Trade)} == {"NKN-USDT", "LRC-BTC"}
    bad = json.loads(exchange_info_frame().payload)
    bad["symbols"][0]["filters"][0]["tickSize"] = "x"
    normalizer.on_rest(exchange_info_frame().url, json.dumps(bad).encode(), 5, out := Emitted())
    assert [d.reason[:40] for d in out.dead_letters] == ["exchangeInfo: 1 symbols unreadable, the "]
    with pytest.raises(ValueError, match="binance-spot lists spot pairs"):
        BinanceSpotConnection.symbol_of("BTC-USDT-PERP")


def test_aggregate_trade_gaps_are_backfilled_from_rest() -> None:
    """Aggregate trades count up by one per symbol: a jump is journaled, asked for over REST
    (/api/v3/aggTrades), and the page fills it. The frames are the session's raw trades restated as
    aggregate trades (one each, a = t): the capture's own aggTrades are two."""
    trades = [json.loads(f.payload)["data"] for f in read_frames([BTCUSDT_SESSION]) if b'"e":"trade"' in f.payload]
    agg = [{"e": "aggTrade", "E": t["E"], "s": t["s"], "a": t["t"], "p": t["p"], "q": t["q"], "f": t["t"],
            "l": t["t"], "T": t["T"], "m": t["m"], "M": True} for t in trades[:50]]
    normalizer, out = BinanceSpot(), Emitted()
    for i, t in enumerate(agg):
        if i not in (20, 21):
            normalizer.on_ws(json.dumps({"stream": "btcusdt@aggTrade", "data": t}).encode(), i, out)
    [gap] = [r for r in out.records if isinstance(r, FeedStatus)]
    assert (gap.event, gap.seq_from, gap.seq_to) == ("trade_gap", agg[20]["a"], agg[21]["a"])
    [request] = out.backfill_requests
    url = BinanceSpotConnection(["BTCUSDT"]).backfill_url(request)
    assert url == f"https://api.binance.com/api/v3/aggTrades?symbol=BTCUSDT&fromId={agg[20]['a']}&limit=1000"
    page = [{k: t[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for t in agg[20:30]]
    normalizer.on_rest(url, json.dumps(page).encode(), 99, out := Emitted())
    filled = [r for r in out.records if isinstance(r, Trade)]
    assert [r.trade_id for r in filled] == [str(agg[20]["a"]), str(agg[21]["a"])]
    assert all(r.flags & Flag.FROM_REST and r.ts_exch is None for r in filled)
    assert [r.event for r in out.records if isinstance(r, FeedStatus)] == ["backfill_done"]


def test_connection_subscribes_one_url_and_polls_nothing() -> None:
    connection = BinanceSpotConnection(["BTCUSDT", "ETHUSDT"], channels=("trade", "depth@100ms", "bookTicker"))
    [route] = connection.routes()
    assert route.name == "stream" and route.book_channel == "depth@100ms"
    assert route.url == ("wss://stream.binance.com:9443/stream?streams=btcusdt@trade/btcusdt@depth@100ms/"
                         "btcusdt@bookTicker/ethusdt@trade/ethusdt@depth@100ms/ethusdt@bookTicker")
    assert connection.snapshot_url("BTCUSDT") == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert connection.poll_urls() == [] and connection.heartbeat() is None
    assert connection.metadata_urls() == ['https://api.binance.com/api/v3/exchangeInfo?symbols=["BTCUSDT","ETHUSDT"]']
    assert connection.channel_of(b'{"stream":"btcusdt@bookTicker","data":{}}') == "bookTicker"
    assert [r.name for r in BinanceSpotConnection([f"S{i}USDT" for i in range(150)]).routes()] == [
        "stream", "stream-2", "stream-3"]
    from ingest.venues.interface import UnknownChannel
    with pytest.raises(UnknownChannel, match="binance-spot has no channel 'markPrice@1s'"):
        BinanceSpotConnection(["BTCUSDT"], channels=("markPrice@1s",))


def test_replay_serves_the_book_without_times_at_the_playback_position() -> None:
    from ingest.venues.binance_spot.replay import BinanceSpotReplay

    frames = list(read_frames(CRYPTOFEED_RUN))
    replay = BinanceSpotReplay(frames)
    for frame in frames:
        if frame.kind == "ws":
            replay.observe(frame.payload)
    body = json.loads(replay.rest("GET", "/api/v3/depth", {"symbol": ["NKNUSDT"], "limit": ["1000"]}, b""))
    assert set(body) == {"lastUpdateId", "bids", "asks"}
    _, normalizer = normalize_frames("binance-spot", frames)
    assert body["lastUpdateId"] == normalizer.books["NKNUSDT"].last_u  # type: ignore[attr-defined]
    assert replay.rest("GET", "/fapi/v1/depth", {"symbol": ["NKNUSDT"]}, b"") is None
    assert replay.route_of("/stream") == "stream" and replay.serves("stream", "nknusdt@aggTrade")
    assert replay.streams_from_path("/stream?streams=a@depth@100ms/b@trade") == {"a@depth@100ms", "b@trade"}
    assert replay.stream_of(b'{"stream":"nknusdt@depth@100ms","data":{}}') == "nknusdt@depth@100ms"
