"""Hyperliquid books and trades from the real BTC capture: the deltas ticklake derives from the
full snapshots rebuild every snapshot exactly, trade sides agree with the book, and the trades a
subscription replays are dropped by id with a bounded memory."""

from __future__ import annotations

import json
from decimal import Decimal

from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDelta, FeedStatus, Trade, expand
from normalize.venues.hyperliquid import Hyperliquid
from tests.hyperliquid_data import CAPTURE

TRADES_ACK = (b'{"channel":"subscriptionResponse","data":{"method":"subscribe",'
              b'"subscription":{"type":"trades","coin":"BTC"}}}')


def _frames() -> list[bytes]:
    return [f.payload for f in read_capture(CAPTURE)]


def _venue_book(payload: bytes) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """The snapshot as the venue wrote it, in exact decimals."""
    bids, asks = json.loads(payload)["data"]["levels"]
    return ({Decimal(level["px"]): Decimal(level["sz"]) for level in bids},
            {Decimal(level["px"]): Decimal(level["sz"]) for level in asks})


def _exact(side: dict[float, float]) -> dict[Decimal, Decimal]:
    """Our floats as decimals, through their shortest repr: equal only if they round-trip."""
    return {Decimal(repr(price)): Decimal(repr(size)) for price, size in side.items()}


def test_deltas_rebuild_every_snapshot_exactly() -> None:
    normalizer = Hyperliquid()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    snapshots = messages = 0
    for payload in _frames():
        out = Emitted()
        normalizer.on_ws(payload, 0, out)
        assert not out.dead_letters
        rows = [r for r in expand(out.records) if isinstance(r, BookDelta)]
        if rows:
            messages += 1
            assert all(r.flags & Flag.DEPTH_LIMITED and not r.flags & Flag.GAP_BEFORE for r in rows)
            assert [r.flags & Flag.LAST for r in rows] == [0] * (len(rows) - 1) + [Flag.LAST]
        if rows and rows[0].flags & Flag.SNAPSHOT:
            bids.clear()
            asks.clear()
        for row in rows:  # applied the way a consumer applies book_delta rows
            side = bids if row.side == 1 else asks
            if row.size:
                side[row.price] = row.size
            else:
                del side[row.price]
        if b'"channel":"l2Book"' in payload:
            snapshots += 1
            venue_bids, venue_asks = _venue_book(payload)
            assert len(venue_bids) == len(venue_asks) == 20
            assert (_exact(bids), _exact(asks)) == (venue_bids, venue_asks)
            derived = [r for r in out.records if isinstance(r, Bbo)]
            if derived:
                assert (derived[0].bid_price, derived[0].ask_price) == (max(bids), min(asks))
    assert snapshots == 46
    assert messages == 45, "the second snapshot repeats the first: nothing to emit"
    state = normalizer.books["BTC"]
    assert normalizer.book_report() == {"BTC": (46, 0, True)}
    assert (state.book.bids, state.book.asks) == (bids, asks)


def test_only_the_first_snapshot_is_a_snapshot() -> None:
    out = Emitted()
    normalizer = Hyperliquid()
    for payload in _frames():
        normalizer.on_ws(payload, 0, out)
    rows = [r for r in expand(out.records) if isinstance(r, BookDelta)]
    snapshot = [r for r in rows if r.flags & Flag.SNAPSHOT]
    assert len(snapshot) == 40 and rows[:40] == snapshot
    assert (snapshot[0].price, snapshot[0].size, snapshot[19].price, snapshot[20].price, snapshot[20].side) == (
        105055.0, 3.03622, 105030.0, 105056.0, -1)
    assert {r.ts_event for r in snapshot} == {1737918843542 * 1_000_000}
    assert len(rows) - 40 < 45 * 40 / 4, "later messages carry the changes, not the whole book"


def test_trade_sides_agree_with_the_book() -> None:
    """"B" is a buying taker: it prints at or above the best ask; "A" at or below the best bid."""
    normalizer = Hyperliquid()
    out = Emitted()
    checked = 0
    bid = ask = None
    for payload in _frames():
        before = len(out.records)
        normalizer.on_ws(payload, 0, out)
        for record in out.records[before:]:
            if isinstance(record, Bbo):
                bid, ask = record.bid_price, record.ask_price
            elif isinstance(record, Trade) and bid is not None and ask is not None:
                assert record.price >= ask if record.side == 1 else record.price <= bid
                checked += 1
    trades = [r for r in out.records if isinstance(r, Trade)]
    assert checked == 64 and {t.side for t in trades} == {1, -1}


def test_a_replayed_trade_is_not_counted_twice() -> None:
    frames = _frames()
    first_replay = frames[2]
    normalizer = Hyperliquid()
    out = Emitted()
    for payload in frames:
        normalizer.on_ws(payload, 0, out)
    # a reconnect: the venue acknowledges and replays its 30 most recent trades (the last 30 seen)
    recent = [t for m in frames if b'"channel":"trades"' in m for t in json.loads(m)["data"]][-30:]
    replay = json.dumps({"channel": "trades", "data": recent}, separators=(",", ":")).encode()
    again = Emitted()
    normalizer.on_ws(TRADES_ACK, 1, again)
    normalizer.on_ws(replay, 2, again)
    normalizer.on_ws(first_replay, 3, again)
    assert not again.records and not again.dead_letters


def test_a_replay_with_nothing_seen_marks_a_gap() -> None:
    frames = _frames()
    normalizer = Hyperliquid()
    out = Emitted()
    for payload in frames[:21]:  # the replay of 30 and two more trades seen
        normalizer.on_ws(payload, 0, out)
    gap = Emitted()
    normalizer.on_ws(TRADES_ACK, 5, gap)
    normalizer.on_ws(frames[51], 6, gap)  # 21 fills none of which was seen: the ones between are missing
    status, *trades = gap.records
    assert type(status) is FeedStatus and (status.event, status.instrument, status.ts_event, status.ts_recv) == (
        "gap", "BTC-USDC-PERP", 1737918867964 * 1_000_000, 6)
    assert len(trades) == 21 and trades[0].flags == Flag.GAP_BEFORE and trades[-1].flags == Flag.LAST
    assert all(t.flags == 0 for t in trades[1:-1])
    # without an acknowledgement first, new trades are just new trades
    later = Emitted()
    normalizer.on_ws(frames[52], 7, later)
    assert [(type(r), r.flags) for r in later.records] == [(Trade, Flag.LAST)]


def test_trade_memory_is_bounded() -> None:
    frames = _frames()
    normalizer = Hyperliquid(trade_memory=40)
    out = Emitted()
    for payload in frames:
        normalizer.on_ws(payload, 0, out)
    tape = normalizer.tapes["BTC"]
    assert len(tape.seen) == len(tape.order) == 40
    # the oldest 24 were forgotten: sent again, they come out again; the rest do not
    again = Emitted()
    normalizer.on_ws(frames[2], 1, again)
    replayed = json.loads(frames[2])["data"]
    assert [r.trade_id for r in again.records] == [str(t["tid"]) for t in replayed[:24]]
