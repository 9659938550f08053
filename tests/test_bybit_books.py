"""The real Bybit ob500 capture (XRPUSDT linear, 1 snapshot + 49 deltas) rebuilds with a continuous
update id, and the book equals an independent rebuild from the raw JSON with Decimal."""

from __future__ import annotations

import json
from decimal import Decimal

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.flags import Flag
from normalize.records import Bbo, BookDelta, BookDeltas, FeedStatus, expand
from tests.bybit_data import OB500

MS = 1_000_000


def _decimal_rebuild(lines: list[bytes]) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for line in lines:
        message = json.loads(line, parse_float=Decimal)
        if message["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, message["data"]["b"]), (asks, message["data"]["a"])):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(size)
    return bids, asks


def test_ob500_rebuilds_without_breaks_and_equals_a_decimal_rebuild() -> None:
    lines = OB500.read_bytes().splitlines()
    out, normalizer = normalize_frames("bybit", read_capture(OB500))
    assert not out.dead_letters and not out.snapshot_requests
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert normalizer.book_report() == {"XRPUSDT": (49, 0, True)}
    sync = normalizer.books["XRPUSDT"]
    # one packed message per frame, u continuous from the snapshot's 20254869
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert [b.exch_seq for b in books] == list(range(20254869, 20254869 + 50))
    assert [b.flags for b in books] == [Flag.SNAPSHOT | Flag.DEPTH_LIMITED] + [Flag.DEPTH_LIMITED] * 49
    raw = [json.loads(line) for line in lines]
    assert [(b.ts_event, b.ts_exch) for b in books] == [(m["cts"] * MS, m["ts"] * MS) for m in raw]
    assert [b.row_count() for b in books] == [len(m["data"]["b"]) + len(m["data"]["a"]) for m in raw]
    # the final book, every level of both sides, equals the Decimal rebuild
    bids, asks = _decimal_rebuild(lines)
    assert len(bids) == len(asks) == 500
    assert sync.book.bids == {float(p): float(q) for p, q in bids.items()}
    assert sync.book.asks == {float(p): float(q) for p, q in asks.items()}
    top_bids, top_asks = sync.book.top(10)
    assert top_bids == [(float(p), float(bids[p])) for p in sorted(bids, reverse=True)[:10]]
    assert top_asks == [(float(p), float(asks[p])) for p in sorted(asks)[:10]]
    # the derived BBO of the last message is the rebuilt top, with the capture's exact text
    last_bbo = [r for r in out.records if isinstance(r, Bbo)][-1]
    best_bid, best_ask = max(bids), min(asks)
    assert (last_bbo.bid_price, last_bbo.bid_size, last_bbo.ask_price, last_bbo.ask_size) == (
        float(best_bid), float(bids[best_bid]), float(best_ask), float(asks[best_ask]))
    assert last_bbo.flags == Flag.DERIVED | Flag.LAST and last_bbo.exch_seq == 20254918


def test_ob500_deletes_remove_levels() -> None:
    lines = OB500.read_bytes().splitlines()
    deletes = [(i, side, price) for i, line in enumerate(lines) for side in ("b", "a")
               for price, size in json.loads(line)["data"][side] if Decimal(size) == 0]
    assert len(deletes) == 18
    rows = [r for r in expand(normalize_frames("bybit", read_capture(OB500))[0].records) if isinstance(r, BookDelta)]
    zero_rows = {(r.side, r.price) for r in rows if r.size == 0}
    assert zero_rows == {(1 if side == "b" else -1, float(price)) for _, side, price in deletes}
    # each deleted level was on the book just before its delete and is gone just after it
    for index, side, price in deletes:
        before_bids, before_asks = _decimal_rebuild(lines[:index])
        after_bids, after_asks = _decimal_rebuild(lines[:index + 1])
        before, after = (before_bids, after_bids) if side == "b" else (before_asks, after_asks)
        assert Decimal(price) in before and Decimal(price) not in after


def test_skipped_delta_is_a_gap_and_nothing_is_published_until_a_snapshot() -> None:
    frames = list(read_capture(OB500))
    out, normalizer = normalize_frames("bybit", frames[:20] + frames[21:])
    journal = [(r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("gap", 20254888, 20254890), ("resync_start", None, None)]
    assert out.snapshot_requests == {"XRPUSDT"}
    assert normalizer.book_report() == {"XRPUSDT": (19, 1, False)}
    assert [b.exch_seq for b in out.records if isinstance(b, BookDeltas)][-1] == 20254888
    # the snapshot Bybit sends on resubscription resyncs the book: the capture's own, replayed
    resync, _ = normalize_frames("bybit", frames[:20] + frames[21:] + frames[:1])
    done = [r for r in resync.records if isinstance(r, FeedStatus)][-1]
    assert (done.event, done.symbol) == ("resync_done", "XRPUSDT")
    snapshot = [b for b in resync.records if isinstance(b, BookDeltas)][-1]
    assert snapshot.flags == Flag.SNAPSHOT | Flag.DEPTH_LIMITED | Flag.GAP_BEFORE
