"""OKX book rebuilds from the real capture: every one of its 290 checksums matches, the rebuilt top
of book agrees with the venue's tickers where they are comparable, and a checksum failure resyncs
that instrument alone."""

from __future__ import annotations

import json
from collections import Counter

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.venues.okx.replay import OkxReplay
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus
from normalize.venues.okx import Okx
from normalize.venues.okx.book_sync import CHECKSUM_DEPTH
from tests.okx_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS

MS = 1_000_000


def _frames() -> list[Frame]:
    return list(read_frames(CRYPTOFEED_RUN))


def _book_messages(frames: list[Frame]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(f.payload) for f in frames if f.kind == "ws" and b'"channel":"books"' in f.payload
            and b'"event"' not in f.payload]


def test_every_checksum_of_the_capture_matches() -> None:
    frames = _frames()
    messages = _book_messages(frames)
    assert Counter(m["action"] for m in messages) == {"snapshot": 3, "update": 287}
    assert all(m["data"][0]["checksum"] != 0 for m in messages)  # every message is checked
    out, normalizer = normalize_frames("okx", frames)
    assert normalizer.book_report() == {"BTC-USD-220527": (98, 0, True), "UNI-USD-SWAP": (92, 0, True),
                                        "BTC-USDT": (97, 0, True)}
    assert {s: b.snapshots for s, b in normalizer.books.items()} == dict.fromkeys(CRYPTOFEED_SYMBOLS, 1)
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert not out.dead_letters and not out.snapshot_requests
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert len(books) == 290 and all(b.flags & Flag.DEPTH_LIMITED for b in books)
    # the books end where the venue's last checksum of each instrument says they are
    last = {m["arg"]["instId"]: m["data"][0]["checksum"] for m in messages}
    assert {s: b.book.checksum(CHECKSUM_DEPTH) for s, b in normalizer.books.items()} == last
    # top-N snapshots read the book: best first on each side
    tops = Emitted()
    normalizer.book_tops(3, 123, tops)
    spot = normalizer.books["BTC-USDT"].book
    rows = [(r.side, r.level, r.price, r.size) for r in tops.records if r.symbol == "BTC-USDT"]
    assert rows == [(1, i + 1, p, spot.bids[p]) for i, p in enumerate(sorted(spot.bids, reverse=True)[:3])] + [
        (-1, i + 1, p, spot.asks[p]) for i, p in enumerate(sorted(spot.asks)[:3])]
    assert len(tops.records) == 18 and tops.records[-1].flags & Flag.LAST


def test_snapshot_sizes_in_base_units_with_contracts_native() -> None:
    out, _ = normalize_frames("okx", _frames())
    snapshots = {b.symbol: b for b in out.records if isinstance(b, BookDeltas) and b.flags & Flag.SNAPSHOT}
    future, swap, spot = (snapshots[s] for s in CRYPTOFEED_SYMBOLS)
    assert (future.levels()[1][0], future.asks_native[0]) == ((30238.8, 200 / 30238.8), 2.0)  # 2 x 100 USD
    assert (swap.levels()[1][0], swap.asks_native[0]) == ((5.148, 600 / 5.148), 60.0)  # 60 x 10 USD
    assert spot.levels()[1][0] == (30243.5, 1.44679) and spot.asks_native is None
    assert (future.ts_event, future.ts_recv, future.exch_seq) == (1652459225393 * MS, 1652459225507364300, None)
    assert [len(side) for side in spot.levels()] == [400, 400]
    assert future.flags == spot.flags == int(Flag.SNAPSHOT | Flag.DEPTH_LIMITED)


def test_rebuilt_top_of_book_agrees_with_the_tickers() -> None:
    """OKX's 2022 tickers repeat their last quote until it changes, lagging the book; a ticker
    whose quote changed is compared: both its prices are levels of the rebuilt book (on their
    sides) at a book message of the 350 ms before it, and the first equals a rebuilt BBO."""
    normalizer, states = Okx(), {}  # type: ignore[var-annotated]
    fresh, previous, derived = [], {}, {}  # type: ignore[var-annotated]
    for frame in _frames():
        out = Emitted()
        if frame.kind == "rest":
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
            continue
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
        for record in out.records:
            if isinstance(record, Bbo) and record.flags & Flag.DERIVED:
                sync = normalizer.books[record.symbol]
                states.setdefault(record.symbol, []).append((record.ts_event, set(sync.book.bids), set(sync.book.asks)))
                derived[(record.symbol, record.ts_event)] = record
        if frame.payload.startswith(b'{"arg":{"channel":"tickers"'):
            ticker = json.loads(frame.payload)["data"][0]
            quote = (float(ticker["bidPx"]), float(ticker["askPx"]))
            if ticker["instId"] in states and quote != previous.get(ticker["instId"]):
                fresh.append((ticker["instId"], int(ticker["ts"]) * MS, quote, ticker))
            previous[ticker["instId"]] = quote
    assert [(symbol, ts // MS) for symbol, ts, _, _ in fresh] == [
        ("BTC-USDT", 1652459226240), ("BTC-USDT", 1652459229410), ("BTC-USDT", 1652459233193),
        ("BTC-USD-220527", 1652459234474)]
    for symbol, ts, (bid, ask), _ in fresh:
        recent = [(bids, asks) for t, bids, asks in states[symbol] if ts - 350 * MS <= t <= ts]
        assert any(bid in bids and ask in asks for bids, asks in recent), (symbol, ts)
    symbol, _, _, ticker = fresh[0]
    mine = derived[(symbol, 1652459226124 * MS)]
    assert (mine.bid_price, mine.bid_size, mine.ask_price, mine.ask_size) == tuple(
        float(ticker[k]) for k in ("bidPx", "bidSz", "askPx", "askSz"))


def _corrupt_level(frames: list[Frame], symbol: str, nth: int) -> tuple[list[Frame], int]:
    """The frames with the nth update of `symbol` altered in its first level's size text."""
    updates = [i for i, f in enumerate(frames) if f.kind == "ws" and b'"action":"update"' in f.payload
               and f'"instId":"{symbol}"'.encode() in f.payload]
    index = updates[nth]
    message = json.loads(frames[index].payload)
    side = "asks" if message["data"][0]["asks"] else "bids"
    message["data"][0][side][0][1] = str(float(message["data"][0][side][0][1]) + 1)
    changed = Frame(frames[index].ts_recv, "ws", json.dumps(message, separators=(",", ":")).encode())
    return [*frames[:index], changed, *frames[index + 1:]], index


def test_a_wrong_level_fails_the_checksum_and_resyncs_that_instrument_only() -> None:
    frames, index = _corrupt_level(_frames(), "BTC-USDT", 40)
    out, normalizer = normalize_frames("okx", frames)
    journal = [(r.symbol, r.event, r.ts_recv) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("BTC-USDT", "checksum_failure", frames[index].ts_recv),
                       ("BTC-USDT", "resync_start", frames[index].ts_recv)]
    assert out.snapshot_requests == {"BTC-USDT"}
    assert normalizer.book_report() == {"BTC-USD-220527": (98, 0, True), "UNI-USD-SWAP": (92, 0, True),
                                        "BTC-USDT": (40, 1, False)}
    # nothing of BTC-USDT from the failing message on: neither its levels nor a BBO
    published = [r for r in out.records if r.symbol == "BTC-USDT" and isinstance(r, BookDeltas | Bbo)
                 and r.ts_recv >= frames[index].ts_recv]
    assert published == []


def test_a_corrupted_checksum_resyncs_from_the_venue_snapshot() -> None:
    """The replay server's corruption and resync snapshot, without the network: after the
    failure the venue's snapshot (its truth book at that position) restores the book, flagged
    GAP_BEFORE, and every later checksum of that instrument matches again."""
    frames = _frames()
    replay, normalizer, out = OkxReplay(frames), Okx(), Emitted()
    swap_updates = [i for i, f in enumerate(frames) if b'"instId":"UNI-USD-SWAP"},"action":"update"' in f.payload]
    bad, resync = swap_updates[30], swap_updates[33]
    for i, frame in enumerate(frames):
        if frame.kind == "rest":
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
            continue
        replay.observe(frame.payload)
        normalizer.on_ws(replay.corrupt(frame.payload) if i == bad else frame.payload, frame.ts_recv, out)
        if i == resync:
            snapshot = replay.books["UNI-USD-SWAP"].snapshot().encode()
            normalizer.on_ws(snapshot, frame.ts_recv + 1, out)
    journal = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("UNI-USD-SWAP", "checksum_failure"), ("UNI-USD-SWAP", "resync_start"),
                       ("UNI-USD-SWAP", "resync_done")]
    assert normalizer.book_report() == {"BTC-USD-220527": (98, 0, True), "UNI-USD-SWAP": (92 - 4, 1, True),
                                        "BTC-USDT": (97, 0, True)}
    snapshots = [(b.symbol, b.flags & Flag.GAP_BEFORE) for b in out.records
                 if isinstance(b, BookDeltas) and b.flags & Flag.SNAPSHOT]
    assert snapshots == [("BTC-USD-220527", 0), ("UNI-USD-SWAP", 0), ("BTC-USDT", 0),
                         ("UNI-USD-SWAP", int(Flag.GAP_BEFORE))]
    assert not out.snapshot_requests and not out.dead_letters
