"""Binance USD-M book rebuilds from real captures: zero sequence breaks, and the rebuilt top of
book equals every venue bookTicker taken at the same update id."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from ingest.synthetic.feed import synthetic_feed
from ingest.synthetic.market import Rates
from normalize.flags import Flag
from normalize.records import Bbo, BookDelta, FeedStatus, expand
from tests.binance_data import CRYPTOFEED_SNAPSHOTS, CRYPTOFEED_WS, DATA

CRYPTOFEED = [CRYPTOFEED_WS, CRYPTOFEED_SNAPSHOTS]


def _top_agreement(records: list) -> tuple[int, int]:
    """(bookTickers compared, disagreements): compare at equal update ids."""
    derived = {(r.symbol, r.exch_seq): r for r in records
               if isinstance(r, Bbo) and r.flags & Flag.DERIVED and not r.flags & Flag.SNAPSHOT}
    compared = bad = 0
    for r in records:
        if isinstance(r, Bbo) and not r.flags & Flag.DERIVED and (r.symbol, r.exch_seq) in derived:
            mine = derived[(r.symbol, r.exch_seq)]
            compared += 1
            bad += (mine.bid_price, mine.bid_size, mine.ask_price, mine.ask_size) != (
                r.bid_price, r.bid_size, r.ask_price, r.ask_size)
    return compared, bad


def test_cryptofeed_four_symbols_rebuild_without_breaks() -> None:
    out, normalizer = normalize_frames("binance-usdm", read_frames(CRYPTOFEED))
    applied = {symbol: sync.applied for symbol, sync in normalizer.books.items()}
    assert applied == {"SUSHIUSDT": 252, "AKROUSDT": 188, "KEEPUSDT": 132, "CTKUSDT": 180}
    assert all(sync.breaks == 0 and sync.synced for sync in normalizer.books.values())
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert not out.dead_letters and not out.snapshot_requests
    snapshots = Counter(r.symbol for r in expand(out.records) if isinstance(r, BookDelta) and r.flags & Flag.SNAPSHOT)
    assert set(snapshots) == set(applied) and all(n > 100 for n in snapshots.values())
    compared, bad = _top_agreement(out.records)
    assert compared > 20 and bad == 0


@pytest.mark.parametrize(("name", "symbol", "diffs"), [
    ("ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz", "BTCUSDT", 6547),
    ("ws_depth0ms+trade+bookTicker+rest_snapshot.ethusdt_20240808.hftbacktest.gz", "ETHUSDT", 6581),
])
def test_hftbacktest_rebuilds_without_breaks(name: str, symbol: str, diffs: int) -> None:
    out, normalizer = normalize_frames("binance-usdm", read_frames([DATA / name]))
    sync = normalizer.books[symbol]
    assert (sync.applied, sync.breaks, sync.synced) == (diffs, 0, True)
    assert not out.dead_letters
    compared, bad = _top_agreement(out.records)
    assert compared > 500 and bad == 0
    last = [r for r in expand(out.records) if isinstance(r, BookDelta)][-1]
    assert last.flags & Flag.LAST
    bid, _, ask, _ = sync.book.bbo()
    assert bid is not None and ask is not None and bid < ask


def test_skipped_diff_resyncs_that_symbol_only() -> None:
    frames = list(read_frames(CRYPTOFEED))
    sushi_diffs = [i for i, f in enumerate(frames) if b"sushiusdt@depth" in f.payload]
    skipped = sushi_diffs[100]
    out, normalizer = normalize_frames("binance-usdm", frames[:skipped] + frames[skipped + 1:])
    gaps = [r for r in out.records if isinstance(r, FeedStatus) and r.event == "gap"]
    assert [(g.symbol, g.event) for g in gaps] == [("SUSHIUSDT", "gap")]
    assert out.snapshot_requests == {"SUSHIUSDT"}
    assert not normalizer.books["SUSHIUSDT"].synced
    for other in ("AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        assert normalizer.books[other].synced and normalizer.books[other].breaks == 0
    after_gap = [r for r in expand(out.records) if isinstance(r, BookDelta) and r.symbol == "SUSHIUSDT"
                 and r.ts_recv > gaps[0].ts_recv]
    assert after_gap == []  # nothing published for SUSHIUSDT until a fresh snapshot arrives


def test_diff_with_malformed_levels_is_dead_lettered_and_that_symbol_resyncs() -> None:
    """A real diff whose levels no longer parse: dead-lettered with the reason and the frame, the
    book left as it was and marked broken (it missed that diff), the other symbols untouched."""
    frames = list(read_frames(CRYPTOFEED))
    sushi_diffs = [i for i, f in enumerate(frames) if b"sushiusdt@depth" in f.payload]
    bad_index = sushi_diffs[100]
    good = frames[bad_index].payload
    bad = good.replace(b'"b":[["', b'"b":[["x', 1)
    assert bad != good
    frames[bad_index] = dataclasses.replace(frames[bad_index], payload=bad)
    out, normalizer = normalize_frames("binance-usdm", frames)
    assert [(d.raw, d.reason.split(":")[0]) for d in out.dead_letters] == [(bad, "bad depth levels")]
    assert "bid levels: expected a decimal" in out.dead_letters[0].reason
    statuses = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert ("SUSHIUSDT", "gap") in statuses and ("SUSHIUSDT", "resync_start") in statuses
    assert all(symbol == "SUSHIUSDT" for symbol, event in statuses if event == "gap")
    assert out.snapshot_requests == {"SUSHIUSDT"}
    sushi = normalizer.books["SUSHIUSDT"]
    _, before = normalize_frames("binance-usdm", frames[:bad_index])
    held = before.books["SUSHIUSDT"]
    assert not sushi.synced and sushi.breaks == 1 and sushi.applied == held.applied > 90
    assert (sushi.book.bids, sushi.book.asks) == (held.book.bids, held.book.asks)
    assert [r for r in expand(out.records) if isinstance(r, BookDelta) and r.symbol == "SUSHIUSDT"
            and r.ts_recv >= frames[bad_index].ts_recv] == []
    for other in ("AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        assert normalizer.books[other].synced and normalizer.books[other].breaks == 0


def test_a_capture_that_starts_with_the_snapshot_syncs_from_its_first_diff() -> None:
    """The snapshot was taken right after a diff: the next one (pu == lastUpdateId, U above it) is
    the first applied. The venue's U <= lastUpdateId rule alone needs the diff before, which a
    capture starting with the snapshot (a synthetic market's, say) does not hold."""
    feed = synthetic_feed("binance-usdm", 2, Rates(trades=10, book=200, liquidations=0), 1_796_601_590_000_000_000,
                          1.0, seed=1, channels=("depth@100ms",))
    frames = [*feed.rest_frames(), *feed]
    out, normalizer = normalize_frames("binance-usdm", frames)
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    diffs = sum(1 for frame in frames if b'"e":"depthUpdate"' in frame.payload)
    assert sum(sync.applied for sync in normalizer.books.values()) == diffs > 100
    assert all(sync.synced and not sync.breaks for sync in normalizer.books.values())
