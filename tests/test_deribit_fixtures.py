"""Every Deribit fixture message normalizes with exact values, sides, units and timestamps: inverse sizes
become base units (USD / price, the USD native), options and linear contracts stay coins; liquidation and
block prints are marked; tickers give mark, index, funding, open interest and option summaries; combos are
read and ignored; answers are not dead letters, errors and malformed frames are; a test_request heartbeat
is answered."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.flags import TRAILING, Flag
from normalize.records import (
    Bbo,
    BookDeltas,
    FeedStatus,
    Funding,
    Instrument,
    Liquidation,
    MarkIndex,
    OpenInterest,
    OptionSummary,
    Trade,
)
from normalize.trade_ids import Backfill
from normalize.venues.deribit import Deribit
from normalize.venues.deribit.instruments import spec_from_name, venue_symbol
from normalize.venues.deribit.wire import TEST_ANSWER
from tests.deribit_data import CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS, DATA

MS = 1_000_000
LAST, SNAPSHOT, GAP = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.GAP_BEFORE)


def _frames(name: str) -> list[bytes]:
    return [frame.payload for frame in read_capture(DATA / name)]


def _run(payloads: list[bytes], normalizer: Deribit | None = None) -> Emitted:
    normalizer = normalizer or Deribit()
    out = Emitted()
    for payload in payloads:
        normalizer.on_ws(payload, 7, out)
    return out


def test_ids_and_units_from_the_names() -> None:
    cases = {
        "BTC-PERPETUAL": ("BTC-USD-PERP", "perpetual", True),
        "BTC-25MAR22": ("BTC-USD-20220325", "future", True),
        "BTC-25MAR22-60000-C": ("BTC-USD-20220325-60000-C", "option", False),
        "ETH-5JUN20-310-P": ("ETH-USD-20200605-310-P", "option", False),
        "BTC_USDC-PERPETUAL": ("BTC-USDC-PERP", "perpetual", False),
        "MATIC_USDC-9MAR24-1d02-C": ("MATIC-USDC-20240309-1.02-C", "option", False),
        "BTC_USDC": ("BTC-USDC", "spot", False),
    }
    for name, expected in cases.items():
        assert tuple(spec_from_name(name)) == expected, name  # type: ignore[arg-type]
        assert venue_symbol(expected[0]) == name
    for combo in ("BTC-FS-30SEP22_PERP", "BTC-STRD-30SEP22-20000", "BTC-CSR12-16SEP22-21000_23000", "BTC"):
        assert spec_from_name(combo) is None
    with pytest.raises(ValueError, match="spot is BTC-USDC"):
        venue_symbol("BTC-USD")


def test_book_fixtures_old_and_new_forms() -> None:
    """A 2019 snapshot (no type, no prev_change_id) of an inverse perpetual, a change whose prev_change_id
    names another message (a gap), a change of a book never snapshotted (waits), a 2022 linear snapshot."""
    frames = _frames("book.tardis-fixture.jsonl")
    normalizer = Deribit()
    out = _run(frames, normalizer)
    assert not out.dead_letters
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert [(b.symbol, b.instrument, b.ts_event, b.exch_seq, b.flags) for b in books] == [
        ("ETH-PERPETUAL", "ETH-USD-PERP", 1564617600273 * MS, 1776289261, SNAPSHOT),
        ("LINK_USDC-PERPETUAL", "LINK-USDC-PERP", 1654041599955 * MS, 1232767964, SNAPSHOT)]
    eth, link = books
    # inverse: USD amounts / price, the USD native
    assert eth.levels() == ([(217.8, 1895 / 217.8), (217.75, 712 / 217.75)],
                            [(218.6, 179803 / 218.6), (218.65, 7887 / 218.65)])
    assert (eth.bids_native, eth.asks_native) == ([1895.0, 712.0], [179803.0, 7887.0])
    # linear USDC: coins already
    assert link.levels() == ([(7.562, 34.0), (7.561, 329.0), (7.56, 401.0), (7.559, 133.0), (7.558, 660.0)], [])
    assert link.bids_native is None and link.asks_native is None
    bbos = [(b.symbol, b.bid_price, b.bid_size, b.ask_price, b.ask_size, b.flags) for b in out.records
            if isinstance(b, Bbo)]
    assert bbos == [("ETH-PERPETUAL", 217.8, 1895 / 217.8, 218.6, 179803 / 218.6, int(Flag.DERIVED) | LAST),
                    ("LINK_USDC-PERPETUAL", 7.562, 34.0, None, None, int(Flag.DERIVED) | LAST)]
    journal = [(r.symbol, r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("ETH-PERPETUAL", "gap", 1776289261, 1776294621), ("ETH-PERPETUAL", "resync_start", None, None)]
    assert out.snapshot_requests == {"ETH-PERPETUAL", "ETH-10SEP21-3350-P"}
    assert normalizer.book_report() == {"ETH-PERPETUAL": (0, 1, False), "ETH-10SEP21-3350-P": (0, 0, False),
                                        "LINK_USDC-PERPETUAL": (0, 0, True)}


def test_quote_fixture() -> None:
    out = _run(_frames("quote.tardis-fixture.jsonl"))
    assert [(b.symbol, b.instrument, b.ts_event, b.exch_seq, b.bid_price, b.bid_size, b.ask_price, b.ask_size,
             b.flags) for b in out.records] == [
        ("BTC-PERPETUAL", "BTC-USD-PERP", 1567296000183 * MS, 0, 9600.5, 162800 / 9600.5, 9601.0, 49710 / 9601.0,
         LAST)]
    # a second quote in the same millisecond gets the next number (Deribit sends no sequence)
    again = Deribit()
    out = _run(_frames("quote.tardis-fixture.jsonl") * 2, again)
    assert [b.exch_seq for b in out.records] == [0, 1]


def test_trades_liquidations_and_gaps() -> None:
    """Inverse sizes in base units, exact; `liquidation` T (taker liquidated) and M (maker) marked and
    turned into Liquidation records of the liquidated position; trade_seq jumps are trade gaps."""
    frames = _frames("trades.tardis-fixture.jsonl")
    out = _run(frames)
    assert not out.dead_letters
    trades = [r for r in out.records if isinstance(r, Trade)]
    assert [(t.instrument, t.ts_event, t.exch_seq, t.price, t.size, t.size_native, t.side, t.trade_id, t.trade_type,
             t.flags) for t in trades] == [
        ("BTC-USD-PERP", 1567296022565 * MS, 20944815, 9598.5, 2000 / 9598.5, 2000.0, -1, "39355898", None, 0),
        ("BTC-USD-PERP", 1567296022565 * MS, 20944816, 9598.5, 50 / 9598.5, 50.0, -1, "39355899", None, LAST),
        ("BTC-USD-PERP", 1584058044032 * MS, 40781986, 4469.5, 1120 / 4469.5, 1120.0, -1, "66460463", "liquidation",
         LAST | GAP),
        ("BTC-USD-PERP", 1584058067675 * MS, 40782080, 4458.5, 2500 / 4458.5, 2500.0, 1, "66460626", "liquidation",
         LAST | GAP),
    ]
    # exact to the decimal text: every price is the float of its JSON number
    texts = [t for frame in frames for t in json.loads(frame, parse_float=str, parse_int=str)["params"]["data"]]
    assert [Decimal(repr(t.price)) for t in trades] == [Decimal(t["price"]) for t in texts]
    assert [t.size_native for t in trades] == [float(t["amount"]) for t in texts]
    # T: the taker sold, so a long was liquidated; M: the taker bought from a liquidated long's sell order
    liquidations = [(r.ts_event, r.price, r.size, r.size_native, r.side, r.order_side, r.exch_seq, r.flags)
                    for r in out.records if isinstance(r, Liquidation)]
    assert liquidations == [(1584058044032 * MS, 4469.5, 1120 / 4469.5, 1120.0, 1, -1, 0, LAST),
                            (1584058067675 * MS, 4458.5, 2500 / 4458.5, 2500.0, 1, -1, 0, LAST)]
    gaps = [(r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)]
    assert gaps == [("trade_gap", 20944817, 40781985), ("trade_gap", 40781987, 40782079)]
    assert out.backfill_requests == [Backfill("BTC-PERPETUAL", "trades", 20944817, 40781985),
                                     Backfill("BTC-PERPETUAL", "trades", 40781987, 40782079)]


def test_block_trades_and_both_sides_liquidated() -> None:
    template = json.loads(_frames("trades.tardis-fixture.jsonl")[0])
    trade = template["params"]["data"][0]
    data = [trade | {"trade_seq": 1, "trade_id": "a", "block_trade_id": "154"},
            trade | {"trade_seq": 2, "trade_id": "b", "liquidation": "MT"}]
    out = _run([json.dumps(template | {"params": template["params"] | {"data": data}}).encode()])
    assert [(t.trade_id, t.trade_type) for t in out.records if isinstance(t, Trade)] == [("a", "block"),
                                                                                          ("b", "liquidation")]
    # the taker (sell) and the maker (a buy order) were both liquidated: a long and a short
    assert [(r.side, r.order_side) for r in out.records if isinstance(r, Liquidation)] == [(1, -1), (-1, 1)]


def test_ticker_fixtures() -> None:
    """Perpetuals: mark, index, funding_8h over 8 h, open interest in coins at the mark (USD native);
    options: mark, index, estimated delivery, open interest in coins, and the summary with implied
    volatilities as fractions; combos ignored."""
    out = _run(_frames("ticker.tardis-fixture.jsonl"))
    assert not out.dead_letters
    marks = [(m.instrument, m.ts_event, m.mark_price, m.index_price, m.estimated_settle_price) for m in out.records
             if isinstance(m, MarkIndex)]
    assert marks == [
        ("BTC-USD-PERP", 1564617604229 * MS, 10094.1, 10091.15, None),
        ("BTC-USD-PERP", 1569888003897 * MS, 8304.39, 8305.94, None),
        ("BTC-USD-20200608-8750-P", 1591603200048 * MS, 0.0, 9729.25, None),  # expired: "expired"
        ("BTC-USD-20200605-9250-C", 1590969652595 * MS, 0.03847784, 9434.36, 9434.36),
        ("ETH-USD-20200605-310-P", 1590969597073 * MS, 0.33859, 231.54, 231.54),
        ("ETH-USD-20200610-270-C", 1591608298178 * MS, 0.000632, 243.98, 243.98),
        ("MATIC-USDC-20240309-1.02-C", 1709809020064 * MS, 0.139, 1.1367, 1.1367),
    ]
    funding = [(f.instrument, f.funding_rate, f.predicted_rate, f.interval_s, f.next_funding_ts, f.mark_price,
                f.index_price) for f in out.records if isinstance(f, Funding)]
    assert funding == [("BTC-USD-PERP", 0.00016281, None, 28800, None, 10094.1, 10091.15),
                       ("BTC-USD-PERP", -8.477e-05, None, 28800, None, 8304.39, 8305.94)]
    assert all(f.flags & TRAILING for f in out.records if isinstance(f, Funding))  # charged continuously
    interest = [(o.instrument, o.open_interest, o.open_interest_native, o.open_interest_value) for o in out.records
                if isinstance(o, OpenInterest)]
    assert interest == [("BTC-USD-PERP", 66128281 / 10094.1, 66128281.0, 66128281.0),
                        ("BTC-USD-PERP", 84844461 / 8304.39, 84844461.0, 84844461.0),
                        ("BTC-USD-20200608-8750-P", 0.0, None, None), ("BTC-USD-20200605-9250-C", 533.2, None, None),
                        ("ETH-USD-20200605-310-P", 0.0, None, None), ("ETH-USD-20200610-270-C", 0.0, None, None),
                        ("MATIC-USDC-20240309-1.02-C", 0.0, None, None)]
    summaries = {s.instrument: s for s in out.records if isinstance(s, OptionSummary)}
    assert list(summaries) == ["BTC-USD-20200608-8750-P", "BTC-USD-20200605-9250-C", "ETH-USD-20200605-310-P",
                               "ETH-USD-20200610-270-C", "MATIC-USDC-20240309-1.02-C"]
    call = summaries["BTC-USD-20200605-9250-C"]
    assert msgspec.structs.asdict(call) | {"ts_recv": 0} == {
        "venue": "deribit", "symbol": "BTC-5JUN20-9250-C", "instrument": "BTC-USD-20200605-9250-C",
        "ts_event": 1590969652595 * MS, "ts_recv": 0, "ts_exch": None, "exch_seq": None, "flags": LAST,
        "mark_price": 0.03847784, "mark_iv": 0.6321, "bid_iv": 0.5839, "ask_iv": 0.669, "underlying_price": 9440.73,
        "underlying": "SYN.BTC-5JUN20", "delta": 0.62959, "gamma": 0.00058, "vega": 3.88497, "theta": -28.34113,
        "rho": 0.66242, "interest_rate": 0.0}
    # no bid, no ask: bid_iv and ask_iv 0 are "none", not a volatility of 0
    assert (summaries["ETH-USD-20200605-310-P"].bid_iv, summaries["ETH-USD-20200605-310-P"].ask_iv) == (None, None)
    assert summaries["BTC-USD-20200608-8750-P"].ask_iv == 5.0  # 500 %
    assert {r.symbol for r in out.records} & {"BTC-STRD-30SEP22-20000", "BTC-FS-30SEP22_PERP"} == set()


def test_open_interest_only_when_it_changed() -> None:
    frame = _frames("ticker.tardis-fixture.jsonl")[0]
    out = _run([frame, frame])
    assert sum(isinstance(r, OpenInterest) for r in out.records) == 1
    assert sum(isinstance(r, MarkIndex) for r in out.records) == 2


def test_instruments_from_rest() -> None:
    out, normalizer = Emitted(), Deribit()
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    assert not out.dead_letters
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    assert len(instruments) == len(out.records) == 1017  # every entry of the four answers (none a combo)
    kinds = {kind: sum(r.kind == kind for r in instruments.values()) for kind in ("perpetual", "future", "option")}
    assert kinds == {"perpetual": 19, "future": 18, "option": 980}
    rows = {s: (r.instrument, r.kind, r.base, r.quote, r.settle, r.inverse, r.contract_size, r.tick_size, r.lot_size,
                r.min_size, r.funding_interval_s, r.expiry_ts, r.status, r.strike, r.option_type)
            for s, r in instruments.items()
            if s in ("BTC-PERPETUAL", "BTC-25MAR22", "BTC-25MAR22-30000-C", "ETH-PERPETUAL", "UNI_USDC-PERPETUAL")}
    assert rows == {
        "BTC-PERPETUAL": ("BTC-USD-PERP", "perpetual", "BTC", "USD", "BTC", True, 10.0, 0.5, 10.0, 10.0, 28800, None,
                          "open", None, None),
        "BTC-25MAR22": ("BTC-USD-20220325", "future", "BTC", "USD", "BTC", True, 10.0, 0.5, 10.0, 10.0, None,
                        1648195200000 * MS, "open", None, None),
        "BTC-25MAR22-30000-C": ("BTC-USD-20220325-30000-C", "option", "BTC", "BTC", "BTC", False, 1.0, 0.0005, 0.1,
                                0.1, None, 1648195200000 * MS, "open", 30000.0, "call"),
        "ETH-PERPETUAL": ("ETH-USD-PERP", "perpetual", "ETH", "USD", "ETH", True, 1.0, 0.05, 1.0, 1.0, 28800, None,
                          "open", None, None),
        "UNI_USDC-PERPETUAL": ("UNI-USDC-PERP", "perpetual", "UNI", "USDC", "USDC", False, 1.0, 0.001, 1.0, 1.0, 28800,
                               None, "open", None, None),
    }
    btc = instruments["BTC-PERPETUAL"]
    # the answer's own server time (usOut, us) is ts_event
    assert (btc.ts_event, btc.flags) == (1626993723162185 * 1000, int(Flag.FROM_REST))


def test_control_frames_and_the_heartbeat() -> None:
    answers = [b'{"jsonrpc":"2.0","id":1,"result":"ok","usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
               b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}',
               next(read_capture(CRYPTOFEED_WS)).payload]  # the recorded subscribe result
    out = _run(answers)
    assert not out.records and not out.dead_letters and not out.replies
    out = _run([b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'])
    assert out.replies == (TEST_ANSWER,)
    assert json.loads(TEST_ANSWER) == {"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}}


def test_malformed_frames_and_errors_are_dead_letters() -> None:
    book = _frames("book.tardis-fixture.jsonl")[0]
    bad = [
        b'{"jsonrpc":"2.0","id":2,"error":{"message":"raw_subscriptions_not_available_for_unauthorized",'
        b'"code":13778},"usIn":1,"usOut":1,"usDiff":0,"testnet":false}',
        book[:60],
        book.replace(b'"new",217.8', b'"add",217.8'),
        book.replace(b"217.8,1895", b'217.8,"1895"'),
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd","data":{}}}',
        _frames("trades.tardis-fixture.jsonl")[0].replace(b'"direction":"sell"', b'"direction":"up"'),
        _frames("trades.tardis-fixture.jsonl")[0].replace(b"BTC-PERPETUAL", b"BTC-FS-30SEP22_PERP"),
        b'{"jsonrpc":"2.0"}',
        b"\xff",
    ]
    out = _run(bad)
    assert [d.raw for d in out.dead_letters] == bad
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "venue error 13778", "undecodable frame", "bad book frame", "undecodable book frame",
        "unsupported channel deribit_price_index.btc_usd", "bad trades frame", "bad trades frame",
        "neither a notification nor an answer", "undecodable frame"]
    # the unreadable snapshot left the book waiting for another
    assert [(r.symbol, r.event) for r in out.records] == [("ETH-PERPETUAL", "gap"), ("ETH-PERPETUAL", "resync_start")]


def test_inexact_decimal_is_flagged() -> None:
    frame = _frames("quote.tardis-fixture.jsonl")[0].replace(b"9600.5", b"9600.50000000000000001")
    (bbo,) = _run([frame]).records
    assert bbo.flags == LAST | int(Flag.INEXACT)


def test_missing_trades_are_fetched_over_rest() -> None:
    """A trade_seq jump asks for the missing trades; the REST page fills the hole (FROM_REST), the gap is
    done, and a trade arriving again afterwards is dropped."""
    template = json.loads(_frames("trades.tardis-fixture.jsonl")[0])
    trade = template["params"]["data"][0]

    def frame(*seqs: int) -> bytes:
        data = [trade | {"trade_seq": s, "trade_id": str(s)} for s in seqs]
        return json.dumps(template | {"params": template["params"] | {"data": data}}).encode()

    normalizer = Deribit()
    out = _run([frame(1, 2), frame(5)], normalizer)
    assert out.backfill_requests == [Backfill("BTC-PERPETUAL", "trades", 3, 4)]
    page = json.dumps({"jsonrpc": "2.0", "result": {"trades": [trade | {"trade_seq": s, "trade_id": str(s)}
                                                               for s in (3, 4)], "has_more": False}}).encode()
    url = ("https://www.deribit.com/api/v2/public/get_last_trades_by_instrument?instrument_name=BTC-PERPETUAL"
           "&start_seq=3&end_seq=4&count=1000&sorting=asc")
    rest = Emitted()
    normalizer.on_rest(url, page, 9, rest)
    assert [(t.trade_id, t.flags) for t in rest.records if isinstance(t, Trade)] == [
        ("3", int(Flag.FROM_REST)), ("4", int(Flag.FROM_REST) | LAST)]
    assert [(r.event, r.seq_from, r.seq_to) for r in rest.records if isinstance(r, FeedStatus)] == [
        ("backfill_done", 3, 4)]
    assert not _run([frame(4)], normalizer).records  # seen: dropped, as the stores would
    # a page that lacks a trade: what the venue did not serve is lost, said once
    normalizer = Deribit()
    _run([frame(1), frame(4)], normalizer)
    lost = Emitted()
    normalizer.on_rest(url.replace("end_seq=4", "end_seq=3").replace("start_seq=3", "start_seq=2"),
                       page.replace(b'"trade_seq": 3', b'"trade_seq": 2'), 9, lost)
    assert [(r.event, r.seq_from, r.seq_to) for r in lost.records if isinstance(r, FeedStatus)] == [
        ("trades_lost", 3, 3)]


def test_mangled_real_frames_never_raise() -> None:
    normalizer, out = Deribit(), Emitted()
    payloads = [f.payload for f in read_capture(CRYPTOFEED_WS)][::3]
    payloads += [p for path in sorted(DATA.glob("*.jsonl")) for p in _frames(path.name)]
    for payload in payloads:
        for cut in range(1, len(payload), max(1, len(payload) // 40)):
            normalizer.on_ws(payload[:cut], 1, out)
            normalizer.on_ws(payload[:cut] + b"7" + payload[cut + 1:], 1, out)
    assert len(out.dead_letters) > 1000
