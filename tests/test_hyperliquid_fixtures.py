"""Every Hyperliquid fixture and recorded REST body normalizes with exact values, sides, units and
timestamps; control frames are not dead letters, broken ones are."""

from __future__ import annotations

import json

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, Funding, Instrument, MarkIndex, OpenInterest, Trade
from normalize.venues.hyperliquid import Hyperliquid
from tests.hyperliquid_data import (
    BOOK_BODY,
    CAPTURE,
    DATA,
    FUNDING_BODY,
    INFO,
    META_BODY,
    META_BOOK_CASSETTE,
    META_FUNDING_CASSETTE,
)

MS = 1_000_000
SNAPSHOT_ROWS = Flag.SNAPSHOT | Flag.DEPTH_LIMITED


def _records(name: str) -> list:
    out, _ = normalize_frames("hyperliquid", read_capture(DATA / name))
    assert not out.dead_letters, out.dead_letters
    return out.records


def _ws(*frames: bytes, ts_recv: int = 0, normalizer: Hyperliquid | None = None) -> Emitted:
    normalizer = normalizer or Hyperliquid()
    out = Emitted()
    for frame in frames:
        normalizer.on_ws(frame, ts_recv, out)
    return out


def test_trades_fixture_sides_and_last_flags() -> None:
    trades = _records("trades.tardis-fixture.jsonl")
    assert [(t.symbol, t.instrument, t.price, t.size, t.side, t.trade_id, t.ts_event, t.flags) for t in trades] == [
        ("FXS", "FXS-USDC-PERP", 1.9008, 10.5, -1, "611279506717453", 1730160015113 * MS, Flag.LAST),
        ("FXS", "FXS-USDC-PERP", 1.9014, 9.1, -1, "809065877559592", 1730160059558 * MS, Flag.LAST),
        # one message of three fills: LAST only on the last row
        ("BTC", "BTC-USDC-PERP", 69997.0, 0.38111, 1, "1016375172059570", 1730160006192 * MS, 0),
        ("BTC", "BTC-USDC-PERP", 69997.0, 0.33458, 1, "479312521152049", 1730160006192 * MS, 0),
        ("BTC", "BTC-USDC-PERP", 69997.0, 0.83613, 1, "229986151112628", 1730160006192 * MS, Flag.LAST),
        ("BTC", "BTC-USDC-PERP", 69998.0, 0.00714, 1, "696560709859024", 1730160007572 * MS, Flag.LAST),
    ]
    assert all(type(t) is Trade and t.ts_exch is None and t.size_native is None for t in trades)


def test_real_trades() -> None:
    frames = list(read_capture(CAPTURE))
    trades = [r for r in _records(CAPTURE.name) if isinstance(r, Trade)]
    assert len(trades) == len({t.trade_id for t in trades}) == 64
    first = trades[0]
    assert (first.trade_id, first.price, first.size, first.side, first.ts_event, first.ts_recv) == (
        "121451470284048", 105056.0, 0.00219, 1, 1737918794873 * MS, frames[2].ts_recv)
    seller = next(t for t in trades if t.trade_id == "85392298469503")
    assert (seller.price, seller.size, seller.side, seller.ts_event) == (105055.0, 0.00219, -1, 1737918796079 * MS)
    # a zero hash (the venue sends one for some fills) changes nothing
    assert next(t for t in trades if t.trade_id == "199015583806854").size == 0.00035
    assert repr(next(t for t in trades if t.trade_id == "754186699313231").size) == "0.01853"


def test_bbo_fixture_including_the_one_sided_one() -> None:
    spot, btc = _records("bbo.tardis-fixture.jsonl")
    assert (spot.symbol, spot.instrument, spot.bid_price, spot.bid_size, spot.ask_price, spot.ask_size) == (
        "@162", "@162", 0.97925, 4144.6, 0.97934, 50.0)
    assert (btc.instrument, btc.bid_price, btc.bid_size, btc.ask_price, btc.ask_size) == (
        "BTC-USDC-PERP", 107575.0, 3.87947, None, None)
    assert all(type(b) is Bbo and b.ts_event == 1750948919838 * MS and b.flags == Flag.LAST for b in (spot, btc))


def test_l2book_fixture_and_the_empty_book() -> None:
    deltas, derived = _records("l2Book.tardis-fixture.jsonl")  # SHIA's empty first book has no rows
    assert type(deltas) is BookDeltas and deltas.symbol == "BANANA" and deltas.instrument == "BANANA-USDC-PERP"
    assert deltas.levels() == ([(59.8, 3.4), (59.778, 1.6)], [(59.811, 2.9), (59.832, 17.6)])
    assert deltas.flags == SNAPSHOT_ROWS and deltas.ts_event == 1730160007687 * MS and deltas.exch_seq is None
    assert [r.flags for r in deltas.rows()] == [SNAPSHOT_ROWS] * 3 + [SNAPSHOT_ROWS | Flag.LAST]
    assert (derived.bid_price, derived.bid_size, derived.ask_price, derived.ask_size, derived.flags) == (
        59.8, 3.4, 59.811, 2.9, Flag.DERIVED | Flag.LAST)


def test_an_empty_book_after_a_resubscription_removes_every_level() -> None:
    banana, shia = (DATA / "l2Book.tardis-fixture.jsonl").read_bytes().splitlines()[::-1]
    emptied = shia.replace(b'"SHIA"', b'"BANANA"')
    ack = (b'{"channel":"subscriptionResponse","data":{"method":"subscribe",'
           b'"subscription":{"type":"l2Book","coin":"BANANA"}}}')
    out = _ws(banana, ack, emptied)
    removal = out.records[2]
    assert type(removal) is BookDeltas
    assert removal.levels() == ([(59.8, 0.0), (59.778, 0.0)], [(59.811, 0.0), (59.832, 0.0)])
    assert removal.flags == Flag.GAP_BEFORE | Flag.DEPTH_LIMITED
    assert (out.records[3].bid_price, out.records[3].ask_price) == (None, None)


def test_active_asset_ctx_is_mark_funding_and_open_interest() -> None:
    frame = (DATA / "activeAssetCtx.tardis-fixture.jsonl").read_bytes().strip()
    ts_recv = 1730160007687123456
    mark, funding, oi = _ws(frame, ts_recv=ts_recv).records
    imputed = Flag.TS_EVENT_IMPUTED
    assert type(mark) is MarkIndex and (mark.instrument, mark.mark_price, mark.index_price, mark.flags) == (
        "MOODENG-USDC-PERP", 0.19963, 0.1995, imputed)
    assert type(funding) is Funding
    assert (funding.funding_rate, funding.predicted_rate, funding.interval_s, funding.next_funding_ts,
            funding.mark_price, funding.index_price, funding.flags) == (
        0.00004863, None, 3600, 1730163600 * 10**9, 0.19963, 0.1995, imputed)
    assert type(oi) is OpenInterest and (oi.open_interest, oi.open_interest_value, oi.flags) == (
        18617460.0, None, imputed | Flag.LAST)
    assert {r.ts_event for r in (mark, funding, oi)} == {ts_recv}


def test_spot_context_and_control_frames_are_read_and_ignored() -> None:
    spot = (DATA / "activeSpotAssetCtx.tardis-fixture.jsonl").read_bytes().strip()
    out = _ws(spot, b'{"channel":"pong"}', b"Websocket connection established.",
              b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades",'
              b'"coin":"BTC"}}}')
    assert not out.records and not out.dead_letters and not out.snapshot_requests


def test_broken_frames_are_dead_letters() -> None:
    trade = (DATA / "trades.tardis-fixture.jsonl").read_bytes().splitlines()[0]
    frames = [
        b'{"channel":"error","data":"Already subscribed: {\\"type\\":\\"l2Book\\",\\"coin\\":\\"BTC\\"}"}',
        trade[:-9],
        trade.replace(b'"1.9008"', b'"1.9x08"'),
        b'{"channel":"allMids","data":{"mids":{"BTC":"30135.0"}}}',
        trade.replace(b'"tid":611279506717453', b'"tid":"x"'),
    ]
    out = _ws(*frames)
    assert not out.records
    assert [d.raw for d in out.dead_letters] == frames
    reasons = [d.reason for d in out.dead_letters]
    assert reasons[0] == 'venue error: Already subscribed: {"type":"l2Book","coin":"BTC"}'
    assert reasons[1].startswith("undecodable frame") and reasons[2].startswith("bad trade decimal")
    assert "allMids" in reasons[3]


def test_long_decimals_are_flagged_inexact() -> None:
    trade = (DATA / "trades.tardis-fixture.jsonl").read_bytes().splitlines()[0]
    book = (DATA / "l2Book.tardis-fixture.jsonl").read_bytes().splitlines()[1]
    out = _ws(trade.replace(b'"1.9008"', b'"1.90080000000000001"'), book.replace(b'"59.778"', b'"59.7780000000000001"'))
    trade_record, deltas, derived = out.records
    assert trade_record.flags == Flag.LAST | Flag.INEXACT
    assert deltas.flags == SNAPSHOT_ROWS | Flag.INEXACT and derived.flags & Flag.INEXACT


def test_meta_is_instruments() -> None:
    normalizer = Hyperliquid()
    out = Emitted()
    normalizer.on_rest(f'{INFO}#{{"type":"meta"}}', META_BODY.read_bytes(), 1689630201000000000, out)
    instruments = out.records
    assert len(instruments) == 28 and all(type(i) is Instrument for i in instruments)
    by_symbol = {i.symbol: i for i in instruments}
    btc, doge, pepe = by_symbol["BTC"], by_symbol["DOGE"], by_symbol["kPEPE"]
    assert (btc.instrument, btc.kind, btc.base, btc.quote, btc.settle, btc.inverse, btc.contract_size,
            btc.tick_size, btc.lot_size, btc.min_size, btc.funding_interval_s, btc.expiry_ts, btc.status) == (
        "BTC-USDC-PERP", "perpetual", "BTC", "USDC", "USDC", False, 1.0, 0.1, 0.00001, None, 3600, None, None)
    assert (doge.tick_size, doge.lot_size) == (0.000001, 1.0)
    assert (pepe.instrument, pepe.base) == ("kPEPE-USDC-PERP", "kPEPE")
    assert by_symbol["ETH"].tick_size == 0.01 and by_symbol["ETH"].lot_size == 0.0001
    assert all(i.ts_event == i.ts_recv == 1689630201000000000 for i in instruments)
    assert [i.flags for i in instruments] == [Flag.FROM_REST | Flag.TS_EVENT_IMPUTED] * 27 + [
        Flag.FROM_REST | Flag.TS_EVENT_IMPUTED | Flag.LAST]
    assert instruments[-1].symbol == "APT"


def test_funding_history_is_settled_rates() -> None:
    normalizer = Hyperliquid()
    out = Emitted()
    url = f'{INFO}#{{"type":"fundingHistory","coin":"BTC","startTime":1681923833000}}'
    normalizer.on_rest(url, FUNDING_BODY.read_bytes(), 1689630202000000000, out)
    funding = out.records
    assert len(funding) == 1038 and all(type(f) is Funding for f in funding)
    picked = [(f.instrument, f.ts_event, f.funding_rate, f.interval_s, f.next_funding_ts, f.predicted_rate,
               f.mark_price) for f in (funding[0], funding[81], funding[82], funding[-1])]
    assert picked == [
        ("BTC-USDC-PERP", 1683849600048 * MS, -0.00061334, 28800, 1683849600048 * MS, None, None),
        ("BTC-USDC-PERP", 1686182400254 * MS, 0.0001, 28800, 1686182400254 * MS, None, None),  # the last 8-hourly
        ("BTC-USDC-PERP", 1686186000054 * MS, 0.0000125, 3600, 1686186000054 * MS, None, None),
        ("BTC-USDC-PERP", 1689627600065 * MS, 0.0000125, 3600, 1689627600065 * MS, None, None),
    ]
    assert [f.flags for f in funding] == [Flag.FROM_REST] * 1037 + [Flag.FROM_REST | Flag.LAST]
    assert all(f.ts_recv == 1689630202000000000 for f in funding)
    # every value as the venue wrote it
    body = json.loads(FUNDING_BODY.read_bytes())
    assert [(f.funding_rate, f.ts_event) for f in funding] == [(float(e["fundingRate"]), e["time"] * MS) for e in body]
    # a later poll overlapping this one publishes nothing twice
    again = Emitted()
    normalizer.on_rest(url, FUNDING_BODY.read_bytes(), 1689630262000000000, again)
    assert not again.records and not again.dead_letters


def test_cassettes_read_as_rest_frames() -> None:
    out, normalizer = normalize_frames("hyperliquid", read_capture(META_FUNDING_CASSETTE))
    assert not out.dead_letters
    assert [type(r).__name__ for r in out.records] == ["Instrument"] * 28 + ["Funding"] * 1038
    assert out.records[28].ts_recv == 1689630202000000000  # the response's Date header
    assert {r.instrument for r in out.records[28:]} == {"BTC-USDC-PERP"}
    out, normalizer = normalize_frames("hyperliquid", read_capture(META_BOOK_CASSETTE))
    deltas, derived = out.records[28:]
    body = json.loads(BOOK_BODY.read_bytes())
    bids, asks = deltas.levels()
    assert bids == [(float(level["px"]), float(level["sz"])) for level in body["levels"][0]]
    assert asks == [(float(level["px"]), float(level["sz"])) for level in body["levels"][1]]
    assert (bids[0], asks[0], bids[-1], asks[-1]) == (
        (2.111, 134.4), (2.1124, 352.3), (1.81, 2397.0), (2.1518, 62.0))
    assert deltas.flags == SNAPSHOT_ROWS | Flag.FROM_REST and deltas.ts_event == 1689630203930 * MS
    assert derived.flags == Flag.DERIVED | Flag.LAST | Flag.FROM_REST
    assert normalizer.book_report() == {"DYDX": (1, 0, True)}


def test_unknown_info_requests_are_dead_letters() -> None:
    out = Emitted()
    Hyperliquid().on_rest(f'{INFO}#{{"type":"allMids"}}', b'{"BTC":"30135.0"}', 1, out)
    Hyperliquid().on_rest(f"{INFO}#not json", b"{}", 2, out)
    Hyperliquid().on_rest(f'{INFO}#{{"type":"meta"}}', b'{"universe":[{"name":"BTC"}]}', 3, out)
    assert not out.records
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "unknown info request allMids", "undecodable REST body from https", "undecodable REST body from https"]
