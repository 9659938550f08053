"""Every Binance USD-M fixture normalizes with exact values, sides, units and timestamps."""

from __future__ import annotations

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.flags import Flag
from normalize.records import FeedStatus, Funding, Instrument, Liquidation, MarkIndex, OpenInterest, Trade
from tests.binance_data import DATA, funding_info_body

MS = 1_000_000


def _records(name: str) -> list:
    out, _ = normalize_frames("binance-usdm", read_capture(DATA / name))
    assert not out.dead_letters, out.dead_letters
    return out.records


def test_trades() -> None:
    records = _records("trade.tardis-fixture.jsonl")
    trades = [r for r in records if isinstance(r, Trade)]
    # the fixture's two BTCUSDT trades are months apart: the ids between them are a gap
    assert [(r.symbol, r.event, r.seq_from, r.seq_to) for r in records if isinstance(r, FeedStatus)] == [
        ("BTCUSDT", "trade_gap", 10934581, 173525188)]
    assert [(t.symbol, t.instrument, t.price, t.size, t.side, t.trade_id, t.ts_event, t.ts_exch) for t in trades] == [
        ("BTCUSDT", "BTC-USDT-PERP", 7627.6, 0.044, 1, "10934580", 1574381164086 * MS, 1574381164089 * MS),
        ("ETHUSDT", "ETH-USDT-PERP", 2366.55, 0.07, -1, "73701056", 1596034530235 * MS, 1596034530241 * MS),
        ("BTCUSDT", "BTC-USDT-PERP", 11343.67, 0.467, -1, "173525189", 1596240000519 * MS, 1596240000596 * MS),
    ]
    assert [t.flags for t in trades] == [Flag.LAST, Flag.LAST, Flag.LAST | Flag.GAP_BEFORE]


def test_agg_trades_from_real_capture() -> None:
    trades = [r for r in _records("ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt")
              if isinstance(r, Trade)]
    assert len(trades) == 91
    first = next(t for t in trades if t.trade_id == "16599292")
    assert (first.symbol, first.price, first.size, first.side, first.ts_event) == (
        "CTKUSDT", 1.011, 10.0, 1, 1626992741421 * MS)
    assert repr(first.price) == "1.011"


def test_mark_price_and_funding() -> None:
    records = _records("markPriceUpdate.tardis-fixture.jsonl")
    marks = [r for r in records if isinstance(r, MarkIndex)]
    funding = [r for r in records if isinstance(r, Funding)]
    assert [(m.instrument, m.mark_price, m.index_price, m.estimated_settle_price, m.ts_event) for m in marks] == [
        ("BTC-USDT-PERP", 8291.34697815, None, None, 1569888003001 * MS),
        ("BTC-USDT-PERP", 11857.56, 11851.86949091, None, 1597536008000 * MS),
        ("BTC-BUSD-20210129", 31799.2773, 31307.034, 31235.82439517, 1609830121004 * MS),
    ]
    # the delivery contract (T=0) has no funding
    assert [(f.instrument, f.funding_rate, f.next_funding_ts, f.interval_s) for f in funding] == [
        ("BTC-USDT-PERP", 0.0001, 1569916800000 * MS, 28800),
        ("BTC-USDT-PERP", 0.0001564, 1597564800000 * MS, 28800),
    ]


def test_mark_price_doc_example() -> None:
    mark, funding = _records("markPriceUpdate.doc-example.jsonl")
    assert (mark.mark_price, mark.index_price, mark.estimated_settle_price) == (
        11794.15, 11784.62659091, 11784.25641265)
    assert (funding.funding_rate, funding.next_funding_ts) == (0.00038167, 1562306400000 * MS)


def test_liquidations_record_position_and_order_side() -> None:
    (tardis,) = _records("forceOrder.tardis-fixture.jsonl")
    assert isinstance(tardis, Liquidation)
    assert (tardis.order_side, tardis.side, tardis.price, tardis.size) == (1, -1, 4706.04, 0.014)  # a short closed
    assert tardis.ts_event == 1584059031421 * MS and tardis.ts_exch == 1584059031426 * MS
    assert tardis.flags & Flag.SAMPLED
    (doc,) = _records("forceOrder.doc-example.jsonl")
    assert (doc.order_side, doc.side, doc.price, doc.size) == (-1, 1, 9910.12345678, 0.014)  # a long closed


def test_open_interest_from_rest() -> None:
    (oi,) = _records("openInterest.tardis-generated.jsonl")
    assert isinstance(oi, OpenInterest)
    assert (oi.instrument, oi.open_interest) == ("BTC-USDT-PERP", 26286.181)
    assert oi.flags & Flag.FROM_REST and oi.flags & Flag.TS_EVENT_IMPUTED


def test_exchange_info_instruments() -> None:
    instruments = _records("rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt")
    by_symbol = {i.symbol: i for i in instruments if isinstance(i, Instrument)}
    btc = by_symbol["BTCUSDT"]
    assert (btc.instrument, btc.kind, btc.tick_size, btc.lot_size, btc.min_size, btc.contract_size, btc.inverse) == (
        "BTC-USDT-PERP", "perpetual", 0.01, 0.001, 0.001, 1.0, False)
    assert btc.funding_interval_s == 28800 and btc.settle == "USDT"
    futures = [i for i in by_symbol.values() if i.kind == "future"]
    assert futures and all(i.expiry_ts and i.instrument.split("-")[-1].isdigit() for i in futures)


def test_malformed_frames_are_dead_lettered() -> None:
    from normalize.emitted import Emitted
    from normalize.venues.binance_usdm import BinanceUsdm

    normalizer, out = BinanceUsdm(), Emitted()
    bad = [
        b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT"',  # truncated
        b'{"stream":"x","data":{"e":"somethingNew","E":1}}',  # unknown channel
        b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"1","T":1,"m":true}}',
        b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":"x","s":"BTCUSDT","a":1,"p":"1","q":"1","T":1,'
        b'"m":true}}',
    ]
    for payload in bad:
        normalizer.on_ws(payload, 123, out)
    good = b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":7,"p":"1.5","q":"2",' \
           b'"T":1,"m":true}}'
    normalizer.on_ws(good, 124, out)
    assert [d.raw for d in out.dead_letters] == bad
    assert all(d.reason.startswith("undecodable frame") for d in out.dead_letters)
    assert [(r.trade_id, r.price, r.side) for r in out.records] == [("7", 1.5, -1)]


def test_inexact_decimal_is_flagged() -> None:
    from normalize.emitted import Emitted
    from normalize.venues.binance_usdm import BinanceUsdm

    out = Emitted()
    BinanceUsdm().on_ws(b'{"e":"aggTrade","E":2,"s":"BTCUSDT","a":7,"p":"65432.123456789012","q":"2","T":1,'
                        b'"m":false}', 1, out)
    assert out.records[0].flags & Flag.INEXACT


def test_trade_decimals_exact_by_text_and_bad_ones_dead_lettered() -> None:
    from normalize.emitted import Emitted
    from normalize.venues.binance_usdm import BinanceUsdm

    ids = iter(range(7, 100))

    def trade(price: str, size: str) -> bytes:
        return (b'{"e":"aggTrade","E":2,"s":"BTCUSDT","a":%d,"p":"%s","q":"%s","T":1,"m":false}'
                % (next(ids), price.encode(), size.encode()))

    out = Emitted()
    normalizer = BinanceUsdm()
    for price, size in (("0.1234567890123", "1"), ("65432.10000000000000", "0.0010000000000000"),
                        ("1", "0.12345678901234567")):
        normalizer.on_ws(trade(price, size), 1, out)
    assert [(r.price, r.size, bool(r.flags & Flag.INEXACT)) for r in out.records] == [
        (0.1234567890123, 1.0, False), (65432.1, 0.001, False), (1.0, 0.12345678901234566, True)]
    normalizer.on_ws(trade("12a", "1"), 5, out)
    assert len(out.records) == 3
    assert [(d.ts_recv, d.reason) for d in out.dead_letters] == [
        (5, "bad trade decimal: not a decimal: '12a'")]


def test_depth_levels_inexact_flagged_and_a_bad_snapshot_dead_lettered() -> None:
    """Depth decimals are checked where the book parses them: a 17-digit size flags that
    message's rows and its derived BBO. A snapshot whose levels do not parse is dead-lettered
    and another is asked for; the next good one syncs the book."""
    from normalize.emitted import Emitted
    from normalize.records import Bbo, BookDeltas
    from normalize.venues.binance_usdm import BinanceUsdm

    url = "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    normalizer, out = BinanceUsdm(), Emitted()
    bad_snapshot = b'{"lastUpdateId":10,"E":5,"T":4,"bids":[["65432.1","1"]],"asks":[["65432.2",1,"x"]]}'
    normalizer.on_rest(url, bad_snapshot, 1, out)
    assert [(d.raw, d.reason) for d in out.dead_letters] == [
        (bad_snapshot, f"undecodable REST body from {url}: ask levels: a level must be [price, size] at byte 13")]
    assert out.snapshot_requests == {"BTCUSDT"} and not normalizer.books["BTCUSDT"].synced and not out.records
    normalizer.on_rest(url, b'{"lastUpdateId":10,"E":5,"T":4,"bids":[["65432.1","1"]],"asks":[["65432.2","3"]]}',
                       2, out)
    assert normalizer.books["BTCUSDT"].synced and not out.snapshot_requests
    normalizer.on_ws(b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":7,"T":6,"s":"BTCUSDT","U":9,'
                     b'"u":11,"pu":8,"b":[["65432.1","0.12345678901234567"]],"a":[]}}', 3, out)
    snapshot, snapshot_bbo, diff, diff_bbo = out.records
    assert type(snapshot) is BookDeltas and not snapshot.flags & Flag.INEXACT
    assert type(diff) is BookDeltas and diff.flags & Flag.INEXACT
    assert diff.levels() == ([(65432.1, 0.12345678901234566)], [])
    assert type(diff_bbo) is Bbo and diff_bbo.flags & Flag.INEXACT and not snapshot_bbo.flags & Flag.INEXACT
    assert (diff_bbo.bid_price, diff_bbo.bid_size, diff_bbo.ask_price, diff_bbo.ask_size) == (
        65432.1, 0.12345678901234566, 65432.2, 3.0)


FUNDING_INFO_URL = "https://fapi.binance.com/fapi/v1/fundingInfo"
EXCHANGE_INFO_URL = "https://fapi.binance.com/fapi/v1/exchangeInfo"


def test_funding_intervals_fromfunding_info_body() -> None:
    """fundingInfo lists the perpetuals off the 8 h default: their instruments and funding records
    carry the listed interval. A later body that changes one republishes that instrument only."""
    from normalize.emitted import Emitted
    from normalize.venues.binance_usdm import BinanceUsdm

    exchange_info = next(iter(read_capture(DATA / "rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt")))
    normalizer, out = BinanceUsdm(), Emitted()
    normalizer.on_rest(FUNDING_INFO_URL, funding_info_body(("BTCUSDT", 4), ("SUSHIUSDT", 1)), 1, out)
    assert not out.records  # nothing published yet to correct
    normalizer.on_rest(EXCHANGE_INFO_URL, exchange_info.payload, 2, out)
    intervals = {i.symbol: i.funding_interval_s for i in out.records if isinstance(i, Instrument)}
    assert (intervals["BTCUSDT"], intervals["SUSHIUSDT"], intervals["ETHUSDT"]) == (14400, 3600, 28800)
    assert all(v is None for s, v in intervals.items() if "_" in s)  # quarterlies do not fund
    mark = (b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1597536008000,"s":"BTCUSDT",'
            b'"p":"11857.56000000","i":"11851.86949091","r":"0.00015640","T":1597564800000}}')
    normalizer.on_ws(mark, 3, out)
    assert out.records[-1].interval_s == 14400
    # BTCUSDT back to 8 h, ETHUSDT to 4 h: those two are published again, as of the body's receipt
    published = len(out.records)
    normalizer.on_rest(FUNDING_INFO_URL, funding_info_body(("ETHUSDT", 4), ("SUSHIUSDT", 1)), 4, out)
    again = out.records[published:]
    assert sorted((i.symbol, i.funding_interval_s, i.ts_event, i.ts_recv) for i in again) == [
        ("BTCUSDT", 28800, 4, 4), ("ETHUSDT", 14400, 4, 4)]
    assert all(i.flags == Flag.FROM_REST | Flag.TS_EVENT_IMPUTED for i in again)
    assert normalizer.instrument_log.latest["BTCUSDT"].funding_interval_s == 28800
    # a refreshed exchangeInfo the same day publishes nothing new
    normalizer.on_rest(EXCHANGE_INFO_URL, exchange_info.payload, 5, out)
    assert len(out.records) == published + 2
    # a body that does not hold intervals is dead-lettered and changes nothing
    bad = funding_info_body(("BTCUSDT", 0))
    normalizer.on_rest(FUNDING_INFO_URL, bad, 6, out)
    assert [(d.reason, d.raw) for d in out.dead_letters] == [
        (f"undecodable REST body from {FUNDING_INFO_URL}: funding interval of 0 h for BTCUSDT", bad)]
    assert normalizer.master.funding_interval_s == {"ETHUSDT": 14400, "SUSHIUSDT": 3600}


def test_raw_trades_say_what_kind_of_print_they_are() -> None:
    """`@trade`'s X: MARKET is a market trade (trade_type None), INSURANCE_FUND and ADL say so."""
    trades = [r for r in _records("trade.tardis-fixture.jsonl") if isinstance(r, Trade)]
    kinds = {(t.symbol, t.trade_id): t.trade_type for t in trades}
    assert kinds[("ETHUSDT", "73701056")] == "insurance_fund"
    btc = [t.trade_type for t in trades if t.symbol == "BTCUSDT"]
    assert btc == [None] * len(btc)
