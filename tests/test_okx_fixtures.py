"""Every OKX fixture normalizes with exact values, sides, units and timestamps; sizes in contracts
become base units through the captured instruments bodies; acks and pongs are not dead letters,
malformed frames are."""

from __future__ import annotations

import json
import re
import zlib
from decimal import Decimal

import pytest

from ingest.capture_formats import read_capture
from ingest.frames import Frame
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
from normalize.venues.okx import Okx
from normalize.venues.okx.instruments import Contract
from tests.okx_data import CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS, DATA, instrument_entries, sibling_instruments

MS = 1_000_000
LAST, SNAPSHOT, DEPTH_LIMITED = int(Flag.LAST), int(Flag.SNAPSHOT), int(Flag.DEPTH_LIMITED)
EXPIRED = {"FIL-USD-220325": "FIL-USD-220624", "ADA-USDT-211224": "ADA-USDT-220624",
           "XRP-USD-230929": "XRP-USD-220624"}
"""Fixture futures the 2022 instruments capture no longer lists -> a listed expiry of their family."""


def _normalizer(*extra: Frame) -> Okx:
    normalizer = Okx()
    out = Emitted()
    for frame in [*read_capture(CRYPTOFEED_INSTRUMENTS), *extra]:
        normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    assert not out.dead_letters
    return normalizer


def _run(normalizer: Okx, payloads: list[bytes]) -> Emitted:
    out = Emitted()
    for payload in payloads:
        normalizer.on_ws(payload, 7, out)
    return out


def _frames(name: str) -> list[bytes]:
    return [frame.payload for frame in read_capture(DATA / name)]


def _without_checksum(payload: bytes) -> bytes:
    """The frame as OKX sends it since June 2026, when the field became 0 ("not sent")."""
    return re.sub(rb'"checksum":-?\d+', b'"checksum":0', payload)


def _reference_checksum(payload: bytes) -> int:
    """OKX's checksum of a snapshot frame's own levels, written out plainly (Decimal sort, strings)."""
    data = json.loads(payload)["data"][0]
    bids = sorted(data["bids"], key=lambda level: Decimal(level[0]), reverse=True)[:25]
    asks = sorted(data["asks"], key=lambda level: Decimal(level[0]))[:25]
    parts = []
    for i in range(25):
        parts += bids[i][:2] if i < len(bids) else []
        parts += asks[i][:2] if i < len(asks) else []
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


def test_expired_fixture_futures_share_their_family_contract() -> None:
    """Why sibling_instruments is sound: in the capture, every expiry of each family has one size."""
    entries = instrument_entries()
    for missing, sibling in EXPIRED.items():
        family = [e for e in entries.values() if e["instId"].startswith(missing.rsplit("-", 1)[0] + "-")
                  and e["instType"] == "FUTURES"]
        assert len(family) == 4 and sibling in {e["instId"] for e in family}
        assert len({(e["ctVal"], e["ctMult"], e["ctValCcy"], e["ctType"]) for e in family}) == 1


def test_trades_in_base_units_with_contracts_native() -> None:
    normalizer = _normalizer(sibling_instruments(EXPIRED))
    out = _run(normalizer, _frames("trades.tardis-fixture.jsonl") + _frames("trades-all.tardis-fixture.jsonl"))
    assert not out.dead_letters
    trades = [(t.symbol, t.instrument, t.price, t.size, t.size_native, t.side, t.trade_id, t.ts_event, t.ts_exch,
               t.flags) for t in out.records if isinstance(t, Trade)]
    assert trades == [
        ("CRV-USDT", "CRV-USDT", 3.973, 13.491146, None, 1, "21300150", 1639999319938 * MS, None, LAST),
        # inverse: 11 contracts of 10 USD at 36.239 USD per FIL
        ("FIL-USD-220325", "FIL-USD-20220325", 36.239, 110 / 36.239, 11.0, 1, "1271987", 1640131185600 * MS, None,
         LAST),
        # linear: 5 contracts of 0.01 BTC
        ("BTC-USDT-SWAP", "BTC-USDT-PERP", 48938.5, 0.05, 5.0, 1, "148266905", 1640131236050 * MS, None, LAST),
        ("BSV-USDT", "BSV-USDT", 42.52, 3.75, None, 1, "84834539", 1697760012017 * MS, None, LAST),
    ]


def test_contract_trade_without_metadata_is_a_dead_letter() -> None:
    frames = _frames("trades.tardis-fixture.jsonl")
    out = _run(_normalizer(), frames)
    assert [t.symbol for t in out.records] == ["CRV-USDT", "BTC-USDT-SWAP"]
    assert [(d.raw, d.reason) for d in out.dead_letters] == [
        (frames[1], "bad trades frame: no contract size for FIL-USD-220325: its instruments body is not loaded")]


def test_trades_of_the_real_capture() -> None:
    """An inverse future (100 USD contracts), an inverse swap (10 USD) and a spot pair."""
    normalizer, out = _normalizer(), Emitted()
    for frame in read_capture(CRYPTOFEED_WS):
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
    trades = {t.trade_id: t for t in out.records if isinstance(t, Trade)}
    assert len(trades) == 74
    assert {t.symbol for t in trades.values()} == {"BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"}
    expected = {
        "7849": ("BTC-USD-20220527", 30218.8, 100 / 30218.8, 1.0, 1, 1652459199958),
        "7852": ("BTC-USD-20220527", 30229.6, 3000 / 30229.6, 30.0, 1, 1652459234354),
        "7850": ("BTC-USD-20220527", 30217.7, 200 / 30217.7, 2.0, 1, 1652459234339),
        "12883020": ("UNI-USD-PERP", 5.123, 1000 / 5.123, 100.0, -1, 1652459215150),
        "338476307": ("BTC-USDT", 30236.0, 0.0002, None, 1, 1652459224818),
        "338476316": ("BTC-USDT", 30250.1, 0.00066996, None, -1, 1652459226753),
        "338476321": ("BTC-USDT", 30247.5, 0.00135203, None, -1, 1652459228210),
    }
    for trade_id, (instrument, price, size, native, side, ts_ms) in expected.items():
        t = trades[trade_id]
        assert (t.instrument, t.price, t.size, t.size_native, t.side, t.ts_event) == (
            instrument, price, size, native, side, ts_ms * MS), trade_id
    assert trades["7849"].size == pytest.approx(0.0033091982474486, rel=1e-13)  # 100 USD of BTC at 30,218.8
    assert trades["7849"].ts_recv == 1652459225507075800


def test_books_l2_tbt_fixture_trimmed_levels_fail_their_checksums() -> None:
    """tardis trimmed these books to a few levels, so their checksums cannot match: the book is
    journalled and resynced, and nothing of it is published."""
    frames = _frames("books-l2-tbt.tardis-fixture.jsonl")
    out = _run(_normalizer(sibling_instruments(EXPIRED)), frames)
    assert not out.dead_letters
    assert [(r.symbol, r.event, r.detail) for r in out.records if isinstance(r, FeedStatus)] == [
        ("BTC-DAI", "checksum_failure", f"snapshot checksum -1971869027, book gives {_reference_checksum(frames[0])}"),
        ("BTC-DAI", "resync_start", "resubscribing to the book channel"),
        ("ADA-USDT-211224", "checksum_failure",
         f"snapshot checksum -44519492, book gives {_reference_checksum(frames[2])}"),
        ("ADA-USDT-211224", "resync_start", "resubscribing to the book channel"),
    ]
    assert not [r for r in out.records if not isinstance(r, FeedStatus)]
    # updates of books never snapshotted wait for one
    assert out.snapshot_requests == {"BTC-DAI", "ADA-USDT-211224", "ETC-ETH", "LTC-USDT-220624", "REN-USDT-SWAP"}


def test_books_l2_tbt_fixture_levels_and_units() -> None:
    out = _run(_normalizer(sibling_instruments(EXPIRED)),
               [_without_checksum(p) for p in _frames("books-l2-tbt.tardis-fixture.jsonl")])
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert [(b.symbol, b.instrument, b.ts_event, b.exch_seq, b.flags) for b in books] == [
        ("BTC-DAI", "BTC-DAI", 1639999305247 * MS, None, SNAPSHOT | DEPTH_LIMITED),
        ("ADA-USDT-211224", "ADA-USDT-20211224", 1640131206623 * MS, None, SNAPSHOT | DEPTH_LIMITED),
    ]
    spot, future = books
    assert spot.levels() == ([(46043.4, 0.00375882), (46043.3, 0.00238905), (45906.8, 0.0435796)],
                             [(46167.8, 0.02250534), (46167.9, 0.00455491)])
    assert spot.bids_native is None and spot.asks_native is None
    # linear, 100 ADA a contract
    assert future.levels() == ([(1.27803, 200.0), (1.27802, 6500.0)], [(1.27898, 6500.0)])
    assert (future.bids_native, future.asks_native) == ([2.0, 65.0], [65.0])
    bbos = [(r.symbol, r.bid_price, r.bid_size, r.ask_price, r.ask_size, r.flags) for r in out.records
            if isinstance(r, Bbo)]
    assert bbos == [("BTC-DAI", 46043.4, 0.00375882, 46167.8, 0.02250534, int(Flag.DERIVED) | LAST),
                    ("ADA-USDT-211224", 1.27803, 200.0, 1.27898, 6500.0, int(Flag.DERIVED) | LAST)]


def test_books_seq_ids_chain_and_a_repeated_update_is_a_gap() -> None:
    """The docs' snapshot (seqId 123456) and update (prevSeqId 123456 -> 123457); the update sent
    twice breaks the chain (its prevSeqId no longer names the last seqId)."""
    snapshot, update = (_without_checksum(p) for p in _frames("books.doc-example.jsonl"))
    normalizer = _normalizer()
    out = _run(normalizer, [snapshot, update, update])
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert [(b.exch_seq, b.flags, *map(len, b.levels())) for b in books] == [
        (123456, SNAPSHOT | DEPTH_LIMITED, 8, 8), (123457, DEPTH_LIMITED, 8, 8)]
    journal = [(r.symbol, r.event, r.seq_from, r.seq_to, r.ts_event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("BTC-USDT", "gap", 123457, 123456, 1597026383085 * MS), ("BTC-USDT", "resync_start", None,
                                                                                 None, 7)]
    assert out.snapshot_requests == {"BTC-USDT"}
    assert normalizer.book_report() == {"BTC-USDT": (1, 1, False)}


def test_bbo_tbt() -> None:
    out = _run(_normalizer(), _frames("bbo-tbt.tardis-fixture.jsonl") + _frames("bbo-tbt.doc-example.jsonl"))
    assert not out.dead_letters
    assert [(b.symbol, b.instrument, b.ts_event, b.exch_seq, b.bid_price, b.bid_size, b.ask_price, b.ask_size,
             b.flags) for b in out.records] == [
        # 990 and 727 contracts of 0.01 BTC
        ("BTC-USDT-SWAP", "BTC-USDT-PERP", 1651761120004 * MS, None, 38632.3, 9.9, 38632.4, 7.27, LAST),
        ("BTC-USDT", "BTC-USDT", 1597026383085 * MS, 123456, 8476.97, 256.0, 8476.98, 415.0, LAST),
    ]
    assert all(isinstance(b, Bbo) for b in out.records)


def test_funding_rate_current_predicted_and_interval() -> None:
    frames = _frames("funding-rate.tardis-fixture.jsonl")
    out = _run(_normalizer(), frames + _frames("funding-rate.doc-example.jsonl"))
    funding = [(f.symbol, f.instrument, f.funding_rate, f.predicted_rate, f.interval_s, f.next_funding_ts,
                f.ts_event, f.flags) for f in out.records if isinstance(f, Funding)]
    assert funding == [
        # X-Perp future, 2026: no forecast (""), 8 h between fundingTime and nextFundingTime
        ("BTC-USD_UM_XPERP-310404", "BTC-USD_UM_XPERP-20310404", -0.0004270396398519, None, 28800,
         1785888000000 * MS, 1785870855692 * MS, LAST),
        # 2021 form: no ts (receive time, imputed), no nextFundingTime (interval unknown)
        ("WNCG-USDT-SWAP", "WNCG-USDT-PERP", 0.00048105, 0.00114, None, 1640131200000 * MS, 7,
         LAST | int(Flag.TS_EVENT_IMPUTED)),
        ("BTC-USDT-SWAP", "BTC-USDT-PERP", 0.0001, 0.0002, 28800, 1744590349506 * MS, 1744590349506 * MS, LAST),
    ]
    # a newly listed swap with only a forecast has no rate to publish
    assert [(d.raw, d.reason) for d in out.dead_letters] == [
        (frames[2], "bad funding-rate frame: funding-rate for SOS-USDT-SWAP without fundingRate or fundingTime")]


def test_mark_price_and_index_tickers() -> None:
    frames = _frames("mark-price.tardis-fixture.jsonl") + _frames("index-tickers.tardis-fixture.jsonl")
    out = _run(_normalizer(), frames)
    assert not out.dead_letters
    assert all(isinstance(r, MarkIndex) and r.flags == LAST for r in out.records)
    assert [(m.symbol, m.instrument, m.mark_price, m.index_price, m.ts_event) for m in out.records] == [
        ("FIL-USDT-220325", "FIL-USDT-20220325", 36.232, None, 1640131204676 * MS),
        ("FIL-USDT-220325", "FIL-USDT-20220325", 36.662, None, 1640140257676 * MS),
        ("WNCG-USDT-SWAP", "WNCG-USDT-PERP", 2.1729, None, 1640131259180 * MS),
        ("FIL-USDT", "FIL-USDT-INDEX", None, 35.583, 1640140200581 * MS),
        ("BTC-USD", "BTC-USD-INDEX", None, 64280.0, 1785870839964 * MS),
        ("WNCG-USDT", "WNCG-USDT-INDEX", None, 2.1675, 1640131290649 * MS),
        ("BTC-USDC", "BTC-USDC-INDEX", None, 28621.8, 1681992000093 * MS),
        ("BTC-USD", "BTC-USD-INDEX", None, 28612.1, 1681992000222 * MS),
    ]


def test_open_interest_in_coins_with_contracts_native() -> None:
    out = _run(_normalizer(), _frames("open-interest.tardis-fixture.jsonl"))
    assert [(o.instrument, o.open_interest, o.open_interest_native, o.open_interest_value, o.ts_event, o.flags)
            for o in out.records if isinstance(o, OpenInterest)] == [
        ("FIL-USDT-20220325", 23687.0, 236870.0, None, 1640131202886 * MS, LAST),  # 0.1 FIL contracts
        ("WNCG-USDT-PERP", 644195.0, 644195.0, None, 1640131258756 * MS, LAST),
    ]


def test_liquidation_orders_position_and_order_side() -> None:
    """A short position closed by a buy order: side -1 (the position), order_side +1."""
    out = _run(_normalizer(sibling_instruments(EXPIRED)), _frames("liquidation-orders.tardis-fixture.jsonl"))
    (liquidation,) = out.records
    assert isinstance(liquidation, Liquidation)
    assert (liquidation.symbol, liquidation.instrument, liquidation.price, liquidation.size, liquidation.size_native,
            liquidation.side, liquidation.order_side, liquidation.ts_event, liquidation.flags) == (
        "XRP-USD-230929", "XRP-USD-20230929", 0.55205, 390 / 0.55205, 39.0, -1, 1, 1680173247614 * MS,
        LAST | int(Flag.SAMPLED))


def test_instruments_from_rest() -> None:
    out = Emitted()
    normalizer = Okx()
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
    instruments = {r.symbol: r for r in out.records if isinstance(r, Instrument)}
    kinds = {kind: sum(r.kind == kind for r in instruments.values()) for kind in ("spot", "perpetual", "future")}
    listed = [e["instType"] for e in instrument_entries().values()]
    assert kinds == {"spot": listed.count("SPOT"), "perpetual": listed.count("SWAP"),
                     "future": listed.count("FUTURES")} == {"spot": 513, "perpetual": 166, "future": 104}
    assert len(instruments) == len(out.records)
    rows = {symbol: (r.instrument, r.kind, r.base, r.quote, r.settle, r.inverse, r.contract_size, r.tick_size,
                     r.lot_size, r.min_size, r.expiry_ts, r.status)
            for symbol, r in instruments.items()
            if symbol in ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT", "ETH-USDT-SWAP")}
    assert rows == {
        "BTC-USD-220527": ("BTC-USD-20220527", "future", "BTC", "USD", "BTC", True, 100.0, 0.1, 1.0, 1.0,
                           1653638400000 * MS, "live"),
        "UNI-USD-SWAP": ("UNI-USD-PERP", "perpetual", "UNI", "USD", "UNI", True, 10.0, 0.001, 1.0, 1.0, None, "live"),
        "BTC-USDT": ("BTC-USDT", "spot", "BTC", "USDT", "USDT", False, 1.0, 0.1, 1e-08, 1e-05, None, "live"),
        "ETH-USDT-SWAP": ("ETH-USDT-PERP", "perpetual", "ETH", "USDT", "USDT", False, 0.1, 0.01, 1.0, 1.0, None,
                          "live"),
    }
    btc = instruments["BTC-USD-220527"]
    assert btc.ts_event == btc.ts_recv == 1652459223860024700
    assert btc.flags == int(Flag.FROM_REST | Flag.TS_EVENT_IMPUTED)


def test_contract_sizes_convert_exactly() -> None:
    """Whole and fractional contracts give the float nearest the decimal product."""
    eth = Contract.of(False, Decimal("0.1"))
    assert [eth.to_base(n, 2000.0) for n in (3.0, 7.0, 0.3, 0.07)] == [0.3, 0.7, 0.03, 0.007]
    assert eth.to_base(0.07, 1.0, "0.070") == 0.007
    sos = Contract.of(False, Decimal("1000000"))
    assert sos.to_base(3.0, 1.0) == 3_000_000.0
    inverse = Contract.of(True, Decimal("100"))
    assert inverse.to_base(3.0, 30000.0) == 0.01


@pytest.mark.parametrize("payload", [b"pong", *_frames("events.tardis-fixture.jsonl"),
                                     b'{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"}}',
                                     *_frames("tickers.tardis-fixture.jsonl"),
                                     *_frames("price-limit.tardis-fixture.jsonl")])
def test_acks_pongs_and_ignored_channels_are_not_dead_letters(payload: bytes) -> None:
    out = _run(_normalizer(), [payload])
    assert not out.records and not out.dead_letters


def test_malformed_frames_are_dead_lettered() -> None:
    bad = [
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"tradeId":"1","px":"1"',  # truncated
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"tradeId":"1","px":"1","side":"buy","ts":"1"}]}',
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"tradeId":"1","px":"x","sz":"1","side":"buy",'
        b'"ts":"1"}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["1"]],"bids":[],'
        b'"ts":"1","checksum":0}]}',
        b'{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}',  # not a channel ticklake reads
        b'{"event":"error","code":"60012","msg":"Invalid request","connId":"a1"}',
        b'ping',
        *_frames("liquidations.tardis-generated.jsonl"),  # tardis's REST-made pseudo-channel
        b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["1"]],"bids":[],"ts":"1"}]}',
        b'{"arg":{"channel":"\xff\xfe',
    ]
    out = _run(_normalizer(), bad)
    assert [d.raw for d in out.dead_letters] == bad
    assert [d.reason.split(":")[0] for d in out.dead_letters] == [
        "undecodable trades frame", "undecodable trades frame", "bad trades frame", "bad books frame",
        "unsupported channel candle1m", "venue event error", "undecodable frame",
        "unsupported channel liquidations", "unsupported channel liquidations", "bad bbo-tbt frame",
        "unsupported channel \ufffd"]
    # the unreadable book level is a gap for that book, which waits for a new snapshot
    assert [(r.symbol, r.event) for r in out.records] == [("BTC-USDT", "gap"), ("BTC-USDT", "resync_start")]


def test_inexact_decimal_is_flagged() -> None:
    out = _run(_normalizer(), [b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
                               b'"tradeId":"9","px":"65432.123456789012","sz":"1","side":"sell","ts":"5"}]}'])
    (trade,) = out.records
    assert trade.flags == LAST | int(Flag.INEXACT) and trade.side == -1


def test_mangled_real_frames_never_raise() -> None:
    """Every real frame cut short and with a byte changed: records or dead letters, no exception."""
    normalizer = _normalizer()
    payloads = [f.payload for f in read_capture(CRYPTOFEED_WS)][::7]
    payloads += [p for name in sorted(DATA.glob("*.jsonl")) for p in _frames(name.name)]
    out = Emitted()
    for payload in payloads:
        for cut in range(1, len(payload), max(1, len(payload) // 40)):
            normalizer.on_ws(payload[:cut], 1, out)
            normalizer.on_ws(payload[:cut] + b"7" + payload[cut + 1:], 1, out)
    assert len(out.dead_letters) > 1000


def test_a_frame_of_several_trades_is_published_whole_or_not_at_all() -> None:
    """OKX batches trades of one instrument in one frame: LAST marks the frame's last one. Two real
    BTC-USDT trades of the capture are put in one frame here."""
    entries = [json.loads(p)["data"][0] for p in (f.payload for f in read_capture(CRYPTOFEED_WS))
               if p.startswith(b'{"arg":{"channel":"trades","instId":"BTC-USDT"}')][:2]

    def frame(data: list[dict[str, str]]) -> bytes:
        return json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": data}).encode()

    out = _run(_normalizer(), [frame(entries), frame([entries[0], entries[1] | {"sz": "lots"}])])
    assert [(t.trade_id, t.size, t.flags) for t in out.records] == [
        ("338476307", 0.0002, 0), ("338476308", 0.001, LAST)]
    assert [d.reason for d in out.dead_letters] == ["bad trades frame: not a decimal: 'lots'"]
