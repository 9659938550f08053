"""Every BitMEX fixture message, and the first messages of each table of the real capture, normalize with
exact values, sides, units and timestamps: contracts become base units through the instrument's
multipliers (inverse XBTUSD: contracts / price; quanto and linear: multiplier / quoteToSettleMultiplier a
contract), contracts kept native; the 2023 book form (price on every row, arbitrary ids, timestamps) is read
as well as the 2021 one; a row the book cannot place is a gap; answers are not dead letters, errors and
malformed frames are."""

from __future__ import annotations

import json

import pytest

from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import (
    Bbo,
    BookDeltas,
    Funding,
    Instrument,
    Liquidation,
    MarkIndex,
    OpenInterest,
    Trade,
)
from normalize.venues.bitmex import Bitmex
from normalize.venues.bitmex.instruments import id_from_symbol, venue_symbol
from normalize.venues.bitmex.normalizer import trade_type
from normalize.venues.bitmex.wire import iso_ns
from tests.bitmex_data import CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS, DATA

MS = 1_000_000
LAST, SNAPSHOT, GAP = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.GAP_BEFORE)
IMPUTED, DERIVED = int(Flag.TS_EVENT_IMPUTED), int(Flag.DERIVED)


def _normalizer() -> Bitmex:
    normalizer, out = Bitmex(), Emitted()
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    assert not out.dead_letters
    return normalizer


def _run(payloads: list[bytes], normalizer: Bitmex | None = None, ts_recv: int = 7) -> Emitted:
    normalizer = normalizer or _normalizer()
    out = Emitted()
    for payload in payloads:
        normalizer.on_ws(payload, ts_recv, out)
    return out


def _frames(name: str) -> list[bytes]:
    return [frame.payload for frame in read_capture(DATA / name)]


def _capture(table: str, action: str | None = None) -> list[bytes]:
    head = f'{{"table":"{table}","action":"{action}"' if action else f'{{"table":"{table}"'
    return [f.payload for f in read_capture(CRYPTOFEED_WS) if f.payload.startswith(head.encode())]


def test_instruments_from_rest() -> None:
    out, normalizer = Emitted(), Bitmex()
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    assert len(instruments) == 34
    assert {k: sum(r.kind == k for r in instruments.values()) for k in ("perpetual", "future")} == {
        "perpetual": 23, "future": 11}
    rows = {s: (r.instrument, r.kind, r.base, r.quote, r.settle, r.inverse, r.contract_size, r.tick_size, r.lot_size,
                r.funding_interval_s, r.expiry_ts, r.status)
            for s, r in instruments.items() if s in ("XBTUSD", "UNIUSDT", "XRPU21", "XBTU21", "ETHUSDU21")}
    assert rows == {
        "XBTUSD": ("BTC-USD-PERP", "perpetual", "BTC", "USD", "BTC", True, 1.0, 0.5, 100.0, 28800, None, "Open"),
        # a quanto: 1,000 XBt a USDT move, at 3,108 XBt a USDT: 1000/3108 UNI a contract
        "UNIUSDT": ("UNI-USDT-PERP", "perpetual", "UNI", "USDT", "BTC", False, 1000 / 3108, 0.001, 1.0, 28800, None,
                    "Open"),
        "XRPU21": ("XRP-BTC-20210924", "future", "XRP", "BTC", "BTC", False, 1.0, 1e-08, 1.0, None,
                   iso_ns("2021-09-24T12:00:00.000Z"), "Open"),
        "XBTU21": ("BTC-USD-20210924", "future", "BTC", "USD", "BTC", True, 1.0, 0.5, 100.0, None,
                   iso_ns("2021-09-24T12:00:00.000Z"), "Open"),
        "ETHUSDU21": ("ETH-USD-20210924", "future", "ETH", "USD", "BTC", False, 100 / 3108, 0.05, 1.0, None,
                      iso_ns("2021-09-24T12:00:00.000Z"), "Open"),
    }
    assert instruments["XBTUSD"].flags == int(Flag.FROM_REST) | IMPUTED
    for record in instruments.values():
        assert venue_symbol(record.instrument) == record.symbol


def test_ids_from_symbols_and_back() -> None:
    assert [id_from_symbol(s) for s in ("XBTUSD", "ETHUSDT", "XBT_USDT", "XBTU21", ".BXBT", "XBTEUR")] == [
        "BTC-USD-PERP", "ETH-USDT-PERP", "BTC-USDT", "XBTU21", ".BXBT", "BTC-EUR-PERP"]
    assert [venue_symbol(i) for i in ("BTC-USD-PERP", "BTC-USDT-PERP", "BTC-USD-20250328", "BTC-USDT-20250328",
                                      "BTC-USDT")] == ["XBTUSD", "XBTUSDT", "XBTH25", "XBTUSDTH25", "XBT_USDT"]
    with pytest.raises(ValueError, match="options are not subscribed by id"):
        venue_symbol("BTC-USD-20250328-60000-C")


def test_trades_in_base_units_with_contracts_native() -> None:
    """Inverse: contracts / price (BitMEX's homeNotional is the same rounded to satoshis); quanto and
    linear: BitMEX's homeNotional, at the quoteToSettleMultiplier of the instruments body."""
    frames = _capture("trade")
    out = _run(frames)
    assert not out.dead_letters
    trades = {t.trade_id: t for t in out.records if isinstance(t, Trade)}
    assert len(trades) == 27
    rows = [json.loads(f)["data"] for f in frames]
    for row in (r for data in rows for r in data):
        t = trades[row["trdMatchID"]]
        assert (t.symbol, t.ts_event, t.price, t.size_native, t.side, t.trade_type) == (
            row["symbol"], iso_ns(row["timestamp"]), row["price"], row["size"], 1 if row["side"] == "Buy" else -1,
            None)
        if row["symbol"] == "XBTUSD":
            # BitMEX's homeNotional is its grossValue in satoshis, rounded
            assert t.size == row["size"] / row["price"] and t.size == pytest.approx(row["homeNotional"], rel=1e-5)
        elif row["timestamp"] >= "2021-07-22T22:36:07":  # since the instruments were fetched
            assert t.size == row["homeNotional"]
    new = trades["39744121-c20e-44ba-8cc8-a6b8cdf72885"]  # UNIUSDT, 52 contracts at 3,108 XBt a USDT
    assert (new.instrument, new.size, new.size_native, new.flags) == ("UNI-USDT-PERP", 16.73101673101673, 52.0, LAST)
    old = trades["0c52f8cc-b0ef-50f7-881d-6fe355ac0944"]  # the partial's trade of 22:34, at 3,110 XBt then
    assert old.size == 219 * 1000 / 3108
    assert old.size != 70.41800643086816 == 219 * 1000 / 3110  # BitMEX's homeNotional, at the rate of its time
    linear = trades["8f8fe9db-eb13-26a5-dea2-a398d89e04a8"]  # XRPU21: one XRP a contract
    assert (linear.instrument, linear.price, linear.size) == ("XRP-BTC-20210924", 1.819e-05, 15.0)
    # homeNotional's 16 digits are not the record's: no INEXACT
    assert not any(t.flags & Flag.INEXACT for t in trades.values())


def test_trade_types() -> None:
    assert [trade_type(t) for t in (None, "Regular", "Liquidation", "AuctionBlock", "Referential")] == [
        None, None, "liquidation", "block", "unknown"]
    frame = _capture("trade", "insert")[0].replace(b'"foreignNotional"', b'"trdType":"Liquidation","foreignNotional"')
    (trade,) = _run([frame]).records
    assert isinstance(trade, Trade) and trade.trade_type == "liquidation"


def test_quotes_numbered_within_a_millisecond() -> None:
    frames = _capture("quote")
    out = _run(frames)
    quotes = [q for q in out.records if isinstance(q, Bbo)]
    assert (len(frames), len(quotes)) == (93, sum(len(json.loads(f)["data"]) for f in frames)) == (93, 436)
    first = quotes[0]  # the XRPU21 partial: a repeat of the last quote, exch_seq None
    assert (first.instrument, first.ts_event, first.exch_seq, first.bid_price, first.bid_size, first.ask_price,
            first.ask_size, first.flags) == ("XRP-BTC-20210924", iso_ns("2021-07-22T22:35:53.978Z"), None, 1.814e-05,
                                             15.0, 1.819e-05, 1703.0, LAST)
    xbt = [q for q in quotes if q.symbol == "XBTUSD" and q.ts_event == iso_ns("2021-07-22T22:36:10.465Z")]
    assert [q.exch_seq for q in xbt] == [0, 1]
    row = next(r for f in _capture("quote", "insert") for r in json.loads(f)["data"]
               if r["symbol"] == "XBTUSD" and r["timestamp"] == "2021-07-22T22:36:10.465Z")
    assert (xbt[0].bid_price, xbt[0].bid_size) == (row["bidPrice"], row["bidSize"] / row["bidPrice"])
    keys = {(q.instrument, q.ts_event, q.exch_seq) for q in quotes}
    assert len(keys) == len(quotes)


def test_instrument_fixtures_and_liquidations() -> None:
    normalizer = _normalizer()
    out = _run(_frames("instrument.tardis-fixture.jsonl"), normalizer)
    assert not out.dead_letters
    assert [(type(r).__name__, r.instrument, r.ts_event, r.flags) for r in out.records] == [
        ("MarkIndex", "ETH-BTC-20190628", iso_ns("2019-05-31T23:59:30.000Z"), 0),
        ("OpenInterest", "ETH-BTC-20190628", iso_ns("2019-05-31T23:59:30.000Z"), 0),
        ("MarkIndex", "LTC-BTC-20190628", iso_ns("2019-05-31T23:59:55.000Z"), 0),
        ("OpenInterest", "LTC-BTC-20190628", iso_ns("2019-05-31T23:59:55.000Z"), LAST),
        ("OpenInterest", "ETH-USD-PERP", 7, IMPUTED | LAST),  # the update has no time
    ]
    eth_mark, eth_oi, _, _, quanto = out.records
    assert isinstance(eth_mark, MarkIndex) and (eth_mark.mark_price, eth_mark.index_price) == (0.03162, 0.03131)
    assert isinstance(eth_oi, OpenInterest) and (eth_oi.open_interest, eth_oi.open_interest_native) == (150499.0,
                                                                                                          150499.0)
    # ETHUSD is a quanto of 100 XBt a USD move at 3,108 XBt a USD (the instruments body)
    assert isinstance(quanto, OpenInterest) and (quanto.open_interest, quanto.open_interest_native) == (
        58922153 * 100 / 3108, 58922153.0)
    liquidations = _run(_frames("liquidation.tardis-fixture.jsonl"), normalizer, ts_recv=99)
    # a buy order liquidates a short: side -1, order_side +1; the deletion is no new liquidation
    assert [(r.instrument, r.ts_event, r.price, r.size, r.size_native, r.side, r.order_side, r.exch_seq, r.flags)
            for r in liquidations.records] == [
        ("BTC-USD-PERP", 99, 10106.0, 9214 / 10106, 9214.0, -1, 1, 0, IMPUTED | LAST)]
    assert all(isinstance(r, Liquidation) for r in liquidations.records)


def test_instrument_table_state_funding_and_quanto_terms() -> None:
    """Rows carry only what changed: the XBTUSD row of the REST body as a partial gives mark, index (the
    indicative settle price), funding and open interest; an update of the mark alone re-emits the mark; a
    new quoteToSettleMultiplier changes what a quanto contract is worth; the funding table's settlements."""
    body = json.loads(next(read_capture(CRYPTOFEED_INSTRUMENTS)).payload)
    xbt = next(row for row in body if row["symbol"] == "XBTUSD")
    partial = json.dumps({"table": "instrument", "action": "partial", "data": [xbt]}).encode()
    update = b'{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","markPrice":32185.5,' \
             b'"timestamp":"2021-07-22T22:36:10.000Z"}]}'
    normalizer = _normalizer()
    out = _run([partial, update], normalizer)
    ts = iso_ns(xbt["timestamp"])
    assert [(type(r).__name__, r.ts_event) for r in out.records] == [
        ("MarkIndex", ts), ("Funding", ts), ("OpenInterest", ts), ("MarkIndex", iso_ns("2021-07-22T22:36:10.000Z"))]
    mark, funding, interest, again = out.records
    assert isinstance(mark, MarkIndex) and (mark.mark_price, mark.index_price) == (32184.89, 32182.72)
    assert isinstance(funding, Funding) and (funding.funding_rate, funding.predicted_rate, funding.interval_s,
                                             funding.next_funding_ts, funding.mark_price) == (
        0.0001, 0.0001, 28800, iso_ns("2021-07-23T04:00:00.000Z"), 32184.89)
    assert isinstance(interest, OpenInterest) and (interest.open_interest, interest.open_interest_native,
                                                   interest.open_interest_value) == (
        574264600 / 32184.89, 574264600.0, 574264600.0)
    assert isinstance(again, MarkIndex) and (again.mark_price, again.index_price) == (32185.5, 32182.72)
    q2s = b'{"table":"instrument","action":"update","data":[{"symbol":"UNIUSDT","quoteToSettleMultiplier":3110}]}'
    _run([q2s], normalizer)
    assert normalizer.master.specs["UNIUSDT"].to_base(219, 17.0) == 219 * 1000 / 3110  # == homeNotional then
    settled = _run([b'{"table":"funding","action":"partial","data":[{"timestamp":"2021-07-22T20:00:00.000Z",'
                    b'"symbol":"XBTUSD","fundingInterval":"2000-01-01T08:00:00.000Z","fundingRate":0.0001,'
                    b'"fundingRateDaily":0.0003}]}'], normalizer)
    (record,) = settled.records
    assert isinstance(record, Funding)
    assert (record.instrument, record.ts_event, record.next_funding_ts, record.funding_rate, record.interval_s,
            record.flags) == ("BTC-USD-PERP", iso_ns("2021-07-22T20:00:00.000Z"), iso_ns("2021-07-22T20:00:00.000Z"),
                              0.0001, 28800, int(Flag.FROM_REST) | LAST)


def _book(action: str, *rows: dict[str, object], table: str = "orderBookL2") -> bytes:
    return json.dumps({"table": table, "action": action, "data": list(rows)}).encode()


def test_the_2023_book_form_and_its_checks() -> None:
    """Since 2023 every row has its price and (since 2022) its time, and ids are arbitrary: the rows'
    matching-engine time is ts_event, messages of one millisecond are numbered; a price that moved under its
    id, an unknown id, or an insert of a held id is a gap for that symbol."""
    t = "2023-07-20T10:00:00.123Z"
    rows = [{"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": 1000, "price": 30000.5, "timestamp": t},
            {"symbol": "XBTUSD", "id": 2, "side": "Sell", "size": 2000, "price": 30001.0, "timestamp": t}]
    normalizer = _normalizer()
    out = _run([_book("partial", *rows),
                _book("update", rows[0] | {"size": 500}),
                _book("insert", {"symbol": "XBTUSD", "id": 77, "side": "Buy", "size": 300, "price": 30000.0,
                                 "timestamp": t}),
                _book("delete", {"symbol": "XBTUSD", "id": 2, "side": "Sell", "price": 30001.0, "timestamp": t})],
               normalizer)
    books = [b for b in out.records if isinstance(b, BookDeltas)]
    assert [(b.ts_event, b.exch_seq, b.flags, b.levels(), b.bids_native, b.asks_native) for b in books] == [
        (iso_ns(t), 0, SNAPSHOT, ([(30000.5, 1000 / 30000.5)], [(30001.0, 2000 / 30001.0)]), [1000.0], [2000.0]),
        (iso_ns(t), 1, 0, ([(30000.5, 500 / 30000.5)], []), [500.0], []),
        (iso_ns(t), 2, 0, ([(30000.0, 300 / 30000.0)], []), [300.0], []),
        (iso_ns(t), 3, 0, ([], [(30001.0, 0.0)]), [], [0.0]),
    ]
    bbo = [b for b in out.records if isinstance(b, Bbo)][-1]
    assert (bbo.bid_price, bbo.ask_price, bbo.flags) == (30000.5, None, DERIVED | LAST)
    for bad, detail in (
            (_book("update", rows[0] | {"price": 29999.5}), "update of level id 1 at Buy 29999.5, held at side 1 "
                                                            "price 30000.5"),
            (_book("delete", rows[1]), "delete of level id 2, which the book does not hold"),
            (_book("insert", rows[0]), "insert of level id 1, which the book holds")):
        again = _normalizer()
        _run([_book("partial", *rows)], again)
        if b'"id": 2' in bad and b'"delete"' in bad:
            _run([_book("delete", rows[1])], again)
        journal = _run([bad], again)
        assert [(r.event, r.detail) for r in journal.records] == [("gap", detail), (
            "resync_start", "resubscribing to the book table")]
        assert journal.snapshot_requests == {"XBTUSD"} and again.book_report()["XBTUSD"][1:] == (1, False)
    # a depth-limited table's rows are DEPTH_LIMITED
    limited = _run([_book("partial", *rows, table="orderBookL2_25")])
    assert [b.flags for b in limited.records if isinstance(b, BookDeltas)] == [SNAPSHOT | int(Flag.DEPTH_LIMITED)]


def test_the_2021_book_form() -> None:
    """Updates and deletes carry no price (the id held it) and rows no time (receive time, imputed)."""
    normalizer = _normalizer()
    partial = _capture("orderBookL2", "partial")[2]
    assert b'"symbol":"XBTUSD"' in partial
    update = next(f for f in _capture("orderBookL2", "update") if b'"symbol":"XBTUSD"' in f
                  and len(json.loads(f)["data"]) == 1)
    out = _run([partial, update], normalizer, ts_recv=5)
    snapshot, first_bbo, change, _ = out.records
    assert isinstance(snapshot, BookDeltas) and isinstance(change, BookDeltas)
    assert (snapshot.ts_event, snapshot.exch_seq, snapshot.flags) == (5, None, SNAPSHOT | IMPUTED)
    levels = json.loads(partial)["data"]
    assert len(snapshot.bids_native or []) + len(snapshot.asks_native or []) == len(levels)
    row = json.loads(update)["data"][0]
    price = next(level["price"] for level in levels if level["id"] == row["id"])
    bids, asks = change.levels()
    assert (bids or asks) == [(price, row["size"] / price)]
    assert (change.flags, isinstance(first_bbo, Bbo)) == (IMPUTED, True)


def test_control_frames() -> None:
    quiet = [b"pong", *(f.payload for f in read_capture(CRYPTOFEED_WS) if not f.payload.startswith(b'{"table"')),
             b'{"table":"orderBook10","action":"update","data":[]}',
             b'{"table":"settlement","action":"partial","data":[]}']
    assert len(quiet) == 1 + 31 + 2
    out = _run(quiet)
    assert not out.records and not out.dead_letters


def test_malformed_frames_and_errors_are_dead_letters() -> None:
    quote = _capture("quote", "insert")[0]
    bad = [
        b'{"status":400,"error":"Unknown table: orderBookL3","meta":{},"request":{"op":"subscribe"}}',
        b'{"success":false,"error":"Rate limited"}',
        quote[:40],
        quote.replace(b'"2021-07-22T22:36:10.014Z"', b'"yesterday"', 1),
        quote.replace(b'"UNIUSDT"', b'"NOSUCH"', 1),
        _capture("trade", "insert")[0].replace(b'"side":"Buy"', b'"side":"Up"'),
        b'{"table":"chat","action":"insert","data":[]}',
        b'{"hello":1}',
        b"\xfe",
    ]
    out = _run(bad)
    assert [d.raw for d in out.dead_letters] == bad
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "venue error 400", "venue error None", "undecodable quote frame", "bad quote frame", "bad quote frame",
        "bad trade frame", "unsupported table chat", "neither a table row nor an answer", "undecodable frame"]


def test_mangled_real_frames_never_raise() -> None:
    normalizer, out = _normalizer(), Emitted()
    payloads = [f.payload for f in read_capture(CRYPTOFEED_WS) if len(f.payload) < 20_000][::5]
    payloads += [p for path in sorted(DATA.glob("*.jsonl")) for p in _frames(path.name)]
    for payload in payloads:
        for cut in range(1, len(payload), max(1, len(payload) // 40)):
            normalizer.on_ws(payload[:cut], 1, out)
            normalizer.on_ws(payload[:cut] + b"7" + payload[cut + 1:], 1, out)
    assert len(out.dead_letters) > 1000
