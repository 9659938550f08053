"""BitMEX book rebuilds from the real capture: every insert, update and delete finds its level id (0
breaks), the final books equal a rebuild in Decimal written here, every quote after a book synced is the
rebuilt book's top, sizes are base units with the contracts native, and a lost message resyncs that symbol
alone from the venue's partial."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.venues.bitmex.replay import BitmexReplay
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import Bbo, BookDeltas, FeedStatus
from normalize.venues.bitmex import Bitmex
from tests.bitmex_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS

Book = tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]


def _frames() -> list[Frame]:
    return list(read_frames(CRYPTOFEED_RUN))


def _book_messages(frames: list[Frame]) -> list[dict[str, Any]]:
    return [json.loads(f.payload, parse_float=Decimal) for f in frames
            if f.kind == "ws" and f.payload.startswith(b'{"table":"orderBookL2"')]


def _rebuild(messages: list[dict[str, Any]]) -> dict[str, Book]:
    """Each symbol's book from the recorded messages, in Decimal contracts: level id -> (side, price) from
    partial and insert, then updates set and deletes remove the level the id names."""
    ids: dict[str, dict[int, tuple[str, Decimal]]] = {}
    books: dict[str, Book] = {}
    for m in messages:
        if m["action"] == "partial":
            ids[m["filter"]["symbol"]], books[m["filter"]["symbol"]] = {}, ({}, {})
        for row in m["data"]:
            symbol = row["symbol"]
            bids, asks = books[symbol]
            if m["action"] in ("partial", "insert"):
                ids[symbol][row["id"]] = (row["side"], row["price"])
            side, price = ids[symbol][row["id"]]
            levels = bids if side == "Buy" else asks
            if m["action"] == "delete":
                del levels[price]
                del ids[symbol][row["id"]]
            else:
                levels[price] = Decimal(row["size"])
    return books


def _base(normalizer: Bitmex, symbol: str, levels: dict[Decimal, Decimal]) -> dict[float, float]:
    """Decimal contracts -> the book's base units: the normalizer's own conversion of each level."""
    spec = normalizer.master.specs[symbol]
    return {float(price): spec.to_base(float(size), float(price)) for price, size in levels.items()}


def test_every_row_finds_its_id_and_the_books_equal_a_decimal_rebuild() -> None:
    frames = _frames()
    messages = _book_messages(frames)
    assert Counter(m["action"] for m in messages) == {"partial": 10, "insert": 445, "update": 1090, "delete": 434}
    out, normalizer = normalize_frames("bitmex", frames)
    assert isinstance(normalizer, Bitmex)
    assert normalizer.book_report() == {
        "XRPU21": (5, 0, True), "UNIUSDT": (79, 0, True), "XBTUSD": (1299, 0, True), "ADAUSDT": (119, 0, True),
        "SOLUSDT": (141, 0, True), "TRXU21": (2, 0, True), "EOSUSDT": (85, 0, True), "TRXUSDT": (35, 0, True),
        "BCHUSD": (72, 0, True), "MATICUSDT": (132, 0, True)}
    assert sum(applied for applied, _, _ in normalizer.book_report().values()) == 445 + 1090 + 434
    assert not [r for r in out.records if isinstance(r, FeedStatus)]
    assert not out.dead_letters and not out.snapshot_requests
    books = [r for r in out.records if isinstance(r, BookDeltas)]
    assert len(books) == 1979 and sum(bool(b.flags & Flag.SNAPSHOT) for b in books) == 10
    assert all(b.flags & Flag.TS_EVENT_IMPUTED and b.exch_seq is None for b in books)  # 2021: no time in rows
    rebuilt = _rebuild(messages)
    assert set(rebuilt) == set(CRYPTOFEED_SYMBOLS)
    for symbol, (bids, asks) in rebuilt.items():
        book = normalizer.books[symbol].book
        assert book.bids == _base(normalizer, symbol, bids), symbol
        assert book.asks == _base(normalizer, symbol, asks), symbol
        # and the held ids are the rebuild's
        assert len(normalizer.books[symbol].levels) == len(bids) + len(asks)


def test_sizes_are_base_units_with_the_contracts_native() -> None:
    """XBTUSD: 1 USD a contract, base = contracts / price; UNIUSDT (quanto): 1000/3108 UNI a contract;
    XRPU21 (linear, quoted in XBT): 1 XRP a contract. Each against Decimal arithmetic."""
    frames = _frames()
    out, _ = normalize_frames("bitmex", frames)
    partials = {b.symbol: b for b in out.records if isinstance(b, BookDeltas) and b.flags & Flag.SNAPSHOT}
    for symbol, per_contract in (("XBTUSD", None), ("UNIUSDT", Decimal(1000) / Decimal(3108)),
                                 ("XRPU21", Decimal(1))):
        deltas = partials[symbol]
        bids, asks = deltas.levels()
        natives = (deltas.bids_native or []) + (deltas.asks_native or [])
        for (price, size), contracts in zip(bids + asks, natives, strict=True):
            exact = Decimal(contracts) / Decimal(repr(price)) if per_contract is None else Decimal(contracts) * \
                per_contract
            assert size == pytest.approx(float(exact), rel=1e-15), (symbol, price)
        assert len(natives) > 100


def test_every_quote_is_the_rebuilt_top() -> None:
    """BitMEX's quote table (recorded independently of the book) names, after each quote frame, exactly
    the best levels of the book rebuilt so far, prices and sizes, for all 83 quote frames of synced books."""
    normalizer, compared = Bitmex(), 0
    for frame in _frames():
        out = Emitted()
        if frame.kind == "rest":
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
            continue
        normalizer.on_ws(frame.payload, frame.ts_recv, out)
        if not frame.payload.startswith(b'{"table":"quote"'):
            continue
        quote = json.loads(frame.payload)["data"][-1]
        sync = normalizer.books.get(quote["symbol"])
        if sync is None or not sync.synced:
            continue
        spec = normalizer.master.specs[quote["symbol"]]
        assert sync.book.bbo() == (quote["bidPrice"], spec.to_base(quote["bidSize"], quote["bidPrice"]),
                                   quote["askPrice"], spec.to_base(quote["askSize"], quote["askPrice"])), quote
        compared += 1
    assert compared == 83


def test_a_lost_insert_resyncs_that_symbol_from_the_venue_partial() -> None:
    """An XBTUSD insert never arrives; the delete of its id shows it (a gap for XBTUSD alone); the partial
    BitMEX sends when the book is subscribed again (the replay server's truth at that position) restores the
    book, GAP_BEFORE and resync_done, and it ends equal to the rebuild of every recorded message."""
    frames = _frames()
    inserted: dict[int, int] = {}
    lost = noticed = -1
    for i, frame in enumerate(frames):
        if not frame.payload.startswith(b'{"table":"orderBookL2"') or b'"symbol":"XBTUSD"' not in frame.payload:
            continue
        message = json.loads(frame.payload)
        if message["action"] == "insert" and len(message["data"]) == 1:
            inserted[message["data"][0]["id"]] = i
        elif message["action"] in ("update", "delete") and len(message["data"]) == 1 and \
                message["data"][0]["id"] in inserted:
            lost, noticed = inserted[message["data"][0]["id"]], i
            break
    replay, normalizer, out = BitmexReplay(frames), Bitmex(), Emitted()
    for i, frame in enumerate(frames):
        if frame.kind == "rest":
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, out)
            continue
        replay.observe(frame.payload)
        if i != lost:
            normalizer.on_ws(frame.payload, frame.ts_recv, out)
        if i == noticed + 3:
            message = json.dumps({"op": "subscribe", "args": ["orderBookL2:XBTUSD"]})
            _, partial = replay.on_client_message(message, set(), "realtime")
            normalizer.on_ws(partial.encode(), frame.ts_recv + 1, out)
    journal = [(r.symbol, r.event) for r in out.records if isinstance(r, FeedStatus)]
    assert journal == [("XBTUSD", "gap"), ("XBTUSD", "resync_start"), ("XBTUSD", "resync_done")]
    report = normalizer.book_report()
    assert report["XBTUSD"][1:] == (1, True)
    assert all(breaks == 0 and synced for s, (_, breaks, synced) in report.items() if s != "XBTUSD")
    partials = [(b.symbol, b.flags & Flag.GAP_BEFORE) for b in out.records
                if isinstance(b, BookDeltas) and b.flags & Flag.SNAPSHOT]
    assert partials[-1] == ("XBTUSD", int(Flag.GAP_BEFORE)) and len(partials) == 11
    bids, asks = _rebuild(_book_messages(frames))["XBTUSD"]
    book = normalizer.books["XBTUSD"].book
    assert (book.bids, book.asks) == (_base(normalizer, "XBTUSD", bids), _base(normalizer, "XBTUSD", asks))
    # nothing of XBTUSD's book between the gap and the partial
    gap, done = (r.ts_recv for r in out.records if isinstance(r, FeedStatus) and r.event in ("gap", "resync_done"))
    assert not [r for r in out.records if r.symbol == "XBTUSD" and gap <= r.ts_recv < done and (
        isinstance(r, BookDeltas) or (isinstance(r, Bbo) and r.flags & Flag.DERIVED))]
    assert not out.dead_letters and not out.snapshot_requests
