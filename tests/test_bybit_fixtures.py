"""Every Bybit v5 fixture normalizes with exact values, sides, units and timestamps."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import (
    Bbo,
    BookDeltas,
    FeedStatus,
    Funding,
    Instrument,
    Liquidation,
    MarkIndex,
    OpenInterest,
    Trade,
)
from normalize.venues.bybit import Bybit
from normalize.venues.bybit.instruments import Spec, spec_from_symbol
from tests.bybit_data import (
    ALL_LIQUIDATION,
    DOC_INSTRUMENTS_BIOUSDT,
    DOC_INSTRUMENTS_BTCUSDT,
    LIQUIDATION,
    OB500,
    ORDERBOOK,
    TICKERS,
    TICKERS_DOC,
    TRADES,
)

MS = 1_000_000


def _records(path: Path) -> list:
    out, _ = normalize_frames("bybit", read_capture(path))
    assert not out.dead_letters, out.dead_letters
    return out.records


def test_public_trades_linear_and_inverse() -> None:
    trades = _records(TRADES)
    assert all(isinstance(t, Trade) for t in trades)
    assert [(t.symbol, t.instrument, t.price, t.size_native, t.side, t.trade_id, t.ts_event, t.ts_exch, t.flags)
            for t in trades] == [
        ("BTCUSD", "BTC-USD-PERP", 28560.5, 5823.0, 1, "0cbf2330-952d-5d03-a462-4bf826c867af",
         1680673823564 * MS, 1680673823566 * MS, 0),
        ("BTCUSD", "BTC-USD-PERP", 28560.5, 3.0, 1, "912e56de-9ed6-5f4f-9421-f0ff5a42d84a",
         1680673823564 * MS, 1680673823566 * MS, 0),
        ("BTCUSD", "BTC-USD-PERP", 28560.5, 5593.0, 1, "cb558b74-cf72-5157-b53b-93944db336ad",
         1680673823564 * MS, 1680673823566 * MS, Flag.LAST),  # LAST: the last trade of the frame
        ("LTCUSDT", "LTC-USDT-PERP", 94.53, None, 1, "4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f",
         1680688979983 * MS, 1680688979985 * MS, Flag.LAST),
    ]
    # inverse BTCUSD contracts are 1 USD: base units = contracts / price; linear sizes are base units
    assert [t.size for t in trades] == [5823 / 28560.5, 3 / 28560.5, 5593 / 28560.5, 0.4]


def test_trade_sides_are_the_taker_side() -> None:
    out = Emitted()
    Bybit().on_ws(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":2,"data":[{"T":1,"s":"BTCUSDT","S":"Sell",'
                  b'"v":"0.001","p":"16578.50","L":"PlusTick","i":"x","BT":true,"seq":7}]}', 5, out)
    (trade,) = out.records
    assert (trade.side, trade.exch_seq, trade.size, trade.ts_recv) == (-1, 7, 0.001, 5)  # block trades are kept


def test_tickers_merge_deltas_into_complete_records() -> None:
    records = _records(TICKERS)
    kinds = [(type(r).__name__, r.symbol, r.ts_event // MS) for r in records]
    assert kinds == [
        ("MarkIndex", "BTCUSD", 1680673822577), ("Funding", "BTCUSD", 1680673822577),
        ("OpenInterest", "BTCUSD", 1680673822577),
        # the BTCUSD delta repeats an unchanged fundingRate and changes openInterest only
        ("OpenInterest", "BTCUSD", 1680673822776),
        # a dated future has no funding (fundingRate ""); its delta changes no field of ours
        ("MarkIndex", "BTCUSDU23", 1680673822099), ("OpenInterest", "BTCUSDU23", 1680673822099),
        ("MarkIndex", "BTCUSDT", 1680673821770), ("Funding", "BTCUSDT", 1680673821770),
        ("OpenInterest", "BTCUSDT", 1680673821770),
    ]
    mark, funding, oi, oi_delta, fut_mark, fut_oi, lin_mark, lin_funding, lin_oi = records
    # linear: openInterest is in base units (BTC), openInterestValue in USDT
    assert isinstance(lin_funding, Funding) and isinstance(lin_oi, OpenInterest) and isinstance(lin_mark, MarkIndex)
    assert (lin_mark.instrument, lin_mark.mark_price, lin_mark.index_price, lin_mark.exch_seq) == (
        "BTC-USDT-PERP", 28552.81, 28562.25, 50193544280)
    assert (lin_funding.funding_rate, lin_funding.next_funding_ts, lin_funding.interval_s, lin_funding.mark_price,
            lin_funding.index_price, lin_funding.predicted_rate) == (
        0.0001, 1680681600000 * MS, 8 * 3600, 28552.81, 28562.25, None)
    assert (lin_oi.open_interest, lin_oi.open_interest_native, lin_oi.open_interest_value) == (
        52774.528, None, 1506861070.82)
    assert lin_oi.flags == Flag.LAST and lin_funding.flags == 0
    # inverse: openInterest counts 1 USD contracts, openInterestValue is in BTC (base)
    assert (mark.instrument, mark.mark_price, mark.index_price) == ("BTC-USD-PERP", 28560.0, 28566.94)
    assert (funding.funding_rate, funding.next_funding_ts) == (0.0001, 1680681600000 * MS)
    assert (oi.open_interest, oi.open_interest_native, oi.open_interest_value) == (15747.08, 449736676.0, 449736676.0)
    assert (oi_delta.open_interest, oi_delta.open_interest_native, oi_delta.exch_seq) == (
        15747.08, 449736674.0, 20856433603)
    assert (fut_mark.mark_price, fut_mark.index_price, fut_mark.estimated_settle_price) == (29023.6, 28566.94, None)
    assert (fut_oi.open_interest, fut_oi.open_interest_native) == (156.67, 4547176.0)
    assert all(r.ts_exch is None and r.ts_recv == 0 for r in records)


def test_tickers_doc_example_takes_the_funding_interval_it_carries() -> None:
    mark, funding, oi = _records(TICKERS_DOC)
    assert (mark.mark_price, mark.index_price) == (17217.33, 17227.36)
    assert (funding.funding_rate, funding.interval_s, funding.next_funding_ts) == (
        -0.000212, 8 * 3600, 1673280000000 * MS)
    assert (oi.open_interest, oi.open_interest_value, oi.exch_seq) == (68744.761, 1183601235.91, 24987956059)


def test_ticker_funding_interval_from_the_venue_field() -> None:
    out = Emitted()
    Bybit().on_ws(b'{"topic":"tickers.XUSDT","type":"snapshot","data":{"symbol":"XUSDT","fundingRate":"0.00005",'
                  b'"nextFundingTime":"1673280000000","fundingIntervalHour":"4","markPrice":"1.5","indexPrice":"1.4"},'
                  b'"cs":1,"ts":1673272861686}', 1, out)
    funding = next(r for r in out.records if isinstance(r, Funding))
    assert (funding.interval_s, funding.funding_rate) == (4 * 3600, 0.00005)


def test_all_liquidation_side_is_the_liquidated_position() -> None:
    """Bybit, allLiquidation `S`: "Position side. When you receive a Buy update, this means that a
    long position has been liquidated". Sell: a short was liquidated, by a buy order."""
    (liq,) = _records(ALL_LIQUIDATION)
    assert isinstance(liq, Liquidation)
    assert (liq.instrument, liq.side, liq.order_side, liq.price, liq.size, liq.size_native) == (
        "PIPPIN-USDT-PERP", -1, 1, 0.02456, 2846.0, None)
    assert (liq.ts_event, liq.ts_exch, liq.flags) == (1740480207110 * MS, 1740480207578 * MS, Flag.LAST)


def test_deprecated_liquidation_channel() -> None:
    galau, xrpusd = _records(LIQUIDATION)
    # GALAUSDT "Buy": a long position liquidated (sold); sampled: at most one per symbol per second
    assert (galau.instrument, galau.side, galau.order_side, galau.price, galau.size) == (
        "GALA-USDT-PERP", 1, -1, 0.03803, 1637.0)
    assert galau.flags == Flag.LAST | Flag.SAMPLED and galau.ts_event == 1673251091822 * MS
    # XRPUSD is inverse: 6949 contracts of 1 USD at 0.5149
    assert (xrpusd.instrument, xrpusd.side, xrpusd.order_side, xrpusd.size_native, xrpusd.size) == (
        "XRP-USD-PERP", -1, 1, 6949.0, 6949 / 0.5149)


def test_orderbook_fixture_snapshots_deltas_and_a_gap() -> None:
    out, normalizer = normalize_frames("bybit", read_capture(ORDERBOOK))
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert [(b.symbol, b.instrument, b.exch_seq, *b.levels(), b.flags) for b in books] == [
        ("BTCUSDT", "BTC-USDT-PERP", 7003305, [(28552.0, 0.047)], [(28552.1, 25.433)],
         Flag.SNAPSHOT | Flag.DEPTH_LIMITED),
        ("BTCUSDT", "BTC-USDT-PERP", 7003306, [(28552.0, 0.012)], [], Flag.DEPTH_LIMITED),
        ("BTCPERP", "BTC-USDC-PERP", 20683568, [(28555.2, 0.597)], [(28555.3, 0.225)],
         Flag.SNAPSHOT | Flag.DEPTH_LIMITED),
        ("BTCPERP", "BTC-USDC-PERP", 20683569, [(28555.2, 0.677)], [(28555.3, 0.029)], Flag.DEPTH_LIMITED),
    ]
    assert books[1].ts_event == 1680673821137 * MS and books[1].ts_exch is None  # no cts: ts is the event time
    bbos = [(r.symbol, r.bid_price, r.bid_size, r.ask_price, r.ask_size) for r in out.records if isinstance(r, Bbo)]
    assert bbos[1] == ("BTCUSDT", 28552.0, 0.012, 28552.1, 25.433)
    assert bbos[3] == ("BTCPERP", 28555.2, 0.677, 28555.3, 0.029)
    # the last frame (another day, u=1188472 after 7003306) is a gap for BTCUSDT only
    gap, start = [r for r in out.records if isinstance(r, FeedStatus)]
    assert (gap.symbol, gap.event, gap.seq_from, gap.seq_to, gap.ts_event) == (
        "BTCUSDT", "gap", 7003306, 1188472, 1682092584425 * MS)
    assert (start.symbol, start.event) == ("BTCUSDT", "resync_start")
    assert out.snapshot_requests == {"BTCUSDT"}
    assert normalizer.book_report() == {"BTCUSDT": (1, 1, False), "BTCPERP": (1, 0, True)}


def test_inverse_book_sizes_are_base_units_with_contracts_kept() -> None:
    normalizer, out = Bybit(), Emitted()
    normalizer.on_ws(b'{"topic":"orderbook.50.BTCUSD","type":"snapshot","ts":1,"data":{"s":"BTCUSD",'
                     b'"b":[["28560.00","340549"]],"a":[["28560.50","70817"]],"u":5,"seq":9}}', 1, out)
    book = out.records[0]
    assert book.levels() == ([(28560.0, 340549 / 28560.0)], [(28560.5, 70817 / 28560.5)])
    assert (book.bids_native, book.asks_native) == ([340549.0], [70817.0])


def test_restart_snapshot_resets_the_book_and_is_journaled() -> None:
    """Bybit: "Occasionally, you'll receive "u"=1, which is a snapshot data due to the restart of
    the service". The capture's own snapshot frame, resent with u=1 after its deltas, stands in."""
    lines = OB500.read_bytes().splitlines()
    normalizer, out = Bybit(), Emitted()
    for line in lines[:10]:
        normalizer.on_ws(line, 1, out)
    restart = lines[0].replace(b'"u":20254869,', b'"u":1,')
    assert restart != lines[0]
    normalizer.on_ws(restart, 2, out)
    journal = [(r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("gap", 20254878, 1), ("resync_start", None, None), ("resync_done", None, None)]
    reset = [r for r in out.records if isinstance(r, BookDeltas)][-1]
    assert reset.flags == Flag.SNAPSHOT | Flag.DEPTH_LIMITED | Flag.GAP_BEFORE and reset.exch_seq == 1
    sync = normalizer.books["XRPUSDT"]
    assert sync.synced and sync.breaks == 1 and len(sync.book.bids) == len(reset.levels()[0]) == 500
    # deltas continue from u=1
    normalizer.on_ws(lines[1].replace(b'"u":20254870,', b'"u":2,'), 3, out)
    assert sync.last_u == 2 and sync.applied == 10


def test_instrument_master_from_the_documented_v5_shape() -> None:
    """Bybit v5 docs example bodies (Get Instruments Info, linear: an official USDT perpetual and a
    pre-market one), not recordings: no recorded instruments-info body exists in the samples."""
    normalizer, out = Bybit(), Emitted()
    url = "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000"
    normalizer.on_rest(url, DOC_INSTRUMENTS_BTCUSDT, 7, out)
    normalizer.on_rest(url, DOC_INSTRUMENTS_BIOUSDT, 8, out)
    btc, bio = out.records
    assert isinstance(btc, Instrument) and isinstance(bio, Instrument)
    assert (btc.symbol, btc.instrument, btc.kind, btc.base, btc.quote, btc.settle, btc.inverse, btc.contract_size,
            btc.tick_size, btc.lot_size, btc.min_size, btc.funding_interval_s, btc.expiry_ts, btc.status) == (
        "BTCUSDT", "BTC-USDT-PERP", "perpetual", "BTC", "USDT", "USDT", False, 1.0, 0.1, 0.001, 0.001, 8 * 3600,
        None, "Trading")
    assert (btc.ts_event, btc.ts_recv, btc.flags) == (1735809771618 * MS, 7, Flag.FROM_REST)
    assert (bio.instrument, bio.status, bio.tick_size, bio.lot_size) == ("BIO-USDT-PERP", "PreLaunch", 0.0001, 1.0)
    assert normalizer.master.specs["BTCUSDT"] == Spec("BTC-USDT-PERP", False, 1.0)
    assert normalizer.master.funding_interval_s["BTCUSDT"] == 8 * 3600
    assert not out.dead_letters
    # the pre-market page names a next page: it is asked for, with every other parameter kept (the
    # cursor is opaque text, sent URL-encoded as Bybit's own SDK sends it)
    assert out.rest_requests == (url + "&cursor=first%253DBIOUSDT%2526last%253DBIOUSDT",)


@pytest.mark.parametrize(("symbol", "spec"), [
    ("BTCUSDT", Spec("BTC-USDT-PERP", False, 1.0)),
    ("1000PEPEUSDT", Spec("1000PEPE-USDT-PERP", False, 1.0)),
    ("BTCPERP", Spec("BTC-USDC-PERP", False, 1.0)),
    ("ETHUSDC", Spec("ETH-USDC-PERP", False, 1.0)),
    ("BTC-27DEC24", Spec("BTC-USDC-20241227", False, 1.0)),
    ("BTCUSDT-26JUN26", Spec("BTC-USDT-20260626", False, 1.0)),
    ("BTCUSD", Spec("BTC-USD-PERP", True, 1.0)),
    ("BTCUSDU23", Spec("BTCUSDU23", True, 1.0)),
])
def test_ids_from_the_symbol_without_metadata(symbol: str, spec: Spec) -> None:
    assert spec_from_symbol(symbol) == spec


def test_control_frames_are_not_dead_letters_but_refusals_are() -> None:
    normalizer, out = Bybit(), Emitted()
    # Bybit v5 docs examples of a pong and a subscription acknowledgement
    normalizer.on_ws(b'{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a",'
                     b'"op":"ping"}', 1, out)
    normalizer.on_ws(b'{"success":true,"ret_msg":"","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b",'
                     b'"req_id":"10001","op":"subscribe"}', 2, out)
    assert out.records == [] and out.dead_letters == []
    refused = b'{"success":false,"ret_msg":"error:handler not found,topic:orderbook.7.BTCUSDT","conn_id":"c",' \
              b'"req_id":"","op":"subscribe"}'
    normalizer.on_ws(refused, 3, out)
    assert [(d.reason, d.raw) for d in out.dead_letters] == [
        ("venue refused subscribe: error:handler not found,topic:orderbook.7.BTCUSDT", refused)]


def test_malformed_frames_are_dead_lettered_and_the_feed_goes_on() -> None:
    normalizer, out = Bybit(), Emitted()
    bad = [
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT"',  # truncated
        b'{"topic":"kline.5.BTCUSDT","type":"snapshot","ts":1,"data":[]}',  # not a channel of ours
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1"}]}',
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1",'
        b'"p":"1","i":"a"},{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"12a","i":"b"}]}',  # one bad price
        b'{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["x","1"]],"a":[],"u":2}}',
        b'{"topic":"orderbook.1.BTCUSDT","type":"partial","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":2}}',
        b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"BTCUSDT","markPrice":"x",'
        b'"indexPrice":"1"}}',
        b'not json',
    ]
    for payload in bad:
        normalizer.on_ws(payload, 9, out)
    assert [d.raw for d in out.dead_letters] == bad
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "undecodable frame", "unknown topic kline", "undecodable frame", "bad value", "undecodable frame",
        "unknown book message type partial", "bad value", "undecodable frame"]
    assert out.records == []  # half of the two-trade frame is never emitted
    normalizer.on_ws(TRADES.read_bytes().splitlines()[1], 10, out)
    assert [r.trade_id for r in out.records] == ["4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f"]


def test_inexact_decimals_are_flagged() -> None:
    out = Emitted()
    normalizer = Bybit()
    normalizer.on_ws(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":2,"data":[{"T":1,"s":"BTCUSDT",'
                     b'"S":"Buy","v":"0.12345678901234567","p":"65432.10000000000000","i":"a"},{"T":1,'
                     b'"s":"BTCUSDT","S":"Buy","v":"0.0010000000000000","p":"65432.10000000000000","i":"b"}]}', 1, out)
    assert [(r.size, bool(r.flags & Flag.INEXACT)) for r in out.records] == [
        (0.12345678901234566, True), (0.001, False)]
    # a ticker frame's long turnover24h does not taint the records, whose own fields are exact
    records = _records(TICKERS_DOC)
    assert b'"turnover24h":"1570383121.943499"' in TICKERS_DOC.read_bytes()
    assert not any(r.flags & Flag.INEXACT for r in records)


def test_a_bad_ticker_delta_does_not_poison_the_merged_state() -> None:
    normalizer, out = Bybit(), Emitted()
    normalizer.on_ws(TICKERS_DOC.read_bytes(), 1, out)
    bad = b'{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"x"},"cs":2,"ts":3}'
    normalizer.on_ws(bad, 2, out)
    normalizer.on_ws(b'{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","indexPrice":"17228.05",'
                     b'"openInterest":"68745.001"},"cs":3,"ts":4}', 3, out)
    assert [d.raw for d in out.dead_letters] == [bad]
    mark, oi = out.records[3:]
    assert (mark.mark_price, mark.index_price, mark.exch_seq) == (17217.33, 17228.05, 3)
    assert (oi.open_interest, oi.open_interest_value, oi.flags) == (68745.001, 1183601235.91, Flag.LAST)


def test_block_trades_are_kept_and_marked() -> None:
    """Bybit marks block trades (`BT`): kept, with trade_type "block" (bars leave them out)."""
    line = TRADES.read_bytes().splitlines()[0]
    normalizer, out = Bybit(), Emitted()
    normalizer.on_ws(line.replace(b'"BT":false', b'"BT":true'), 1, out)
    normalizer.on_ws(line, 2, out)
    kinds = [r.trade_type for r in out.records if isinstance(r, Trade)]
    assert kinds[: len(kinds) // 2] == ["block"] * (len(kinds) // 2) and set(kinds[len(kinds) // 2:]) == {None}
