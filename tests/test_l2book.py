"""The compiled L2 book against plain Python: every parsed decimal equals float(text), INEXACT is
reported exactly when a decimal has more than 15 significant digits, and any sequence of messages
leaves the same book (levels, best prices, top N) as a dict per side."""

from __future__ import annotations

import heapq
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalize.book import L2Book
from normalize.decimals import MAX_EXACT_DIGITS, significant_digits
from normalize.records import pack_levels, unpack_levels
from tests.strategies import decimal_texts as decimals


def _json(levels: list[tuple[str, str]]) -> bytes:
    return json.dumps([list(level) for level in levels]).encode()


@settings(max_examples=500)
@given(prices=st.lists(decimals, min_size=1, max_size=8), sizes=st.lists(decimals, min_size=1, max_size=8),
       negative=st.booleans())
def test_decimals_parse_to_float_of_their_text(prices: list[str], sizes: list[str], negative: bool) -> None:
    prices = [("-" if negative else "") + p for p in prices]
    levels = list(zip(prices, sizes, strict=False))
    bids, asks, inexact = L2Book().apply_json(_json(levels), b"[]")
    assert asks == b""
    assert unpack_levels(bids) == [(float(p), float(q)) for p, q in levels]
    assert bids == pack_levels((float(p), float(q)) for p, q in levels)
    assert inexact == any(significant_digits(text) > MAX_EXACT_DIGITS for level in levels for text in level)


def test_bare_numbers_whitespace_and_precision_edges() -> None:
    book = L2Book()
    bids, asks, inexact = book.apply_json(
        b' [ [ 65432.1 , "0.001" ] ,\n["9007199254740993", "1"] ] ',
        b'[["0.1000000000000000055511151231257827", "123456789012345678901234567890"]]')
    assert unpack_levels(bids) == [(65432.1, 0.001), (9007199254740993.0, 1.0)]
    assert unpack_levels(asks) == [(0.1, 123456789012345678901234567890.0)]
    assert inexact
    assert book.apply_json(b'[["65432.100000000000","1.50000000000000000000"]]', b"[]")[2] is False


def test_sizes_of_zero_delete_and_the_book_reads_back() -> None:
    book = L2Book()
    book.apply_json(b'[["100.5","1"],["101","2"],["99","3"]]', b'[["102","4"],["103.25","5"]]')
    assert book.bbo() == (101.0, 2.0, 102.0, 4.0)
    assert book.top(2) == ([(101.0, 2.0), (100.5, 1.0)], [(102.0, 4.0), (103.25, 5.0)])
    bids, asks, _ = book.apply_json(b'[["101","0"],["100.5","0.000"]]', b'[["102","0"],["104","0"]]')
    assert (unpack_levels(bids), unpack_levels(asks)) == ([(101.0, 0.0), (100.5, 0.0)], [(102.0, 0.0), (104.0, 0.0)])
    assert book.bids == {99.0: 3.0} and book.asks == {103.25: 5.0}
    assert (book.best_bid, book.best_ask, len(book), book.crossed()) == (99.0, 103.25, 2, False)
    assert book.apply_levels([(104.0, 1.0)], []) == (pack_levels([(104.0, 1.0)]), b"")
    assert book.crossed()
    book.clear()
    assert book.bbo() == (None, None, None, None) and len(book) == 0 and book.top(5) == ([], [])


@pytest.mark.parametrize(("bids", "why"), [
    (b'[["1","2"]', "expected ',' or ']' at byte 10"),
    (b'[["1","2"],]', "expected a level '['"),
    (b'[["1"]]', "expected ',' after the price"),
    (b'[["1","2","3"]]', "a level must be [price, size]"),
    (b'[["x","2"]]', "expected a decimal at byte 3"),
    (b'[["1.","2"]] x', "trailing data"),
    (b'[["1","-2"]]', "negative size"),
    (b'[["1","2e"]]', "bad exponent"),
    (b'[["1","2e999"]]', "decimal out of range"),
    (b'[["1","NaN"]]', "expected a decimal"),
    (b'[["1,"2"]]', "bad decimal string"),
    (b'{"1":"2"}', "expected '['"),
    (b"", "expected '['"),
])
def test_malformed_levels_raise_and_leave_the_book_as_it_was(bids: bytes, why: str) -> None:
    book = L2Book()
    book.apply_json(b'[["100","1"]]', b'[["101","1"]]')
    with pytest.raises(ValueError, match="bid levels: " + why.replace("[", r"\[").replace("]", r"\]")):
        book.apply_json(bids, b'[["100","0"],["105","1"]]')
    assert (book.bids, book.asks) == ({100.0: 1.0}, {101.0: 1.0})


@pytest.mark.parametrize("levels", [[(1.0, float("nan"))], [(float("inf"), 1.0)], [(1.0, -1.0)], [(1.0,)],
                                    [(1.0, 2.0, 3.0)]])
def test_bad_python_levels_raise_and_change_nothing(levels: list[tuple[float, ...]]) -> None:
    book = L2Book()
    book.apply_levels([(100.0, 1.0)], [])
    with pytest.raises(ValueError, match="bid level 0"):
        book.apply_levels(levels, [(5.0, 1.0)])
    assert (book.bids, book.asks) == ({100.0: 1.0}, {})


prices = st.integers(1, 400).map(lambda ticks: ticks / 4)
sizes = st.one_of(st.just(0.0), st.integers(1, 50).map(float))
messages = st.lists(
    st.one_of(st.just("clear"),
              st.tuples(st.lists(st.tuples(prices, sizes), max_size=40), st.lists(st.tuples(prices, sizes),
                                                                                  max_size=40))),
    min_size=1, max_size=60)


@settings(max_examples=300)
@given(messages=messages, as_json=st.booleans())
def test_any_message_sequence_leaves_the_same_book_as_a_dict(messages: list, as_json: bool) -> None:
    book = L2Book()
    model: tuple[dict[float, float], dict[float, float]] = ({}, {})
    for message in messages:
        if message == "clear":
            book.clear()
            model[0].clear()
            model[1].clear()
            continue
        bids, asks = message
        if as_json:
            packed = book.apply_json(_json([(repr(p), repr(q)) for p, q in bids]),
                                     _json([(repr(p), repr(q)) for p, q in asks]))[:2]
        else:
            packed = book.apply_levels(bids, asks)
        assert packed == (pack_levels(bids), pack_levels(asks))
        for side, levels in zip(model, (bids, asks), strict=True):
            for price, size in levels:
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
        bid_side, ask_side = model
        best_bid = max(bid_side) if bid_side else None
        best_ask = min(ask_side) if ask_side else None
        assert book.bbo() == (best_bid, bid_side.get(best_bid), best_ask, ask_side.get(best_ask))
        assert (book.bids, book.asks, len(book)) == (bid_side, ask_side, len(bid_side) + len(ask_side))
        assert book.crossed() == (best_bid is not None and best_ask is not None and best_bid >= best_ask)
        assert book.top(7) == ([(p, bid_side[p]) for p in heapq.nlargest(7, bid_side)],
                               [(p, ask_side[p]) for p in heapq.nsmallest(7, ask_side)])


def test_a_deep_book_with_churn_keeps_its_best_levels() -> None:
    """Thousands of levels, the best deleted over and over (heap pops and rebuilds, table growth)."""
    book = L2Book()
    model: dict[float, float] = {}
    for round_ in range(200):
        adds = [(1000.0 + (round_ * 37 + i * 11) % 5000 / 10, float(i + 1)) for i in range(50)]
        best = sorted(model, reverse=True)[:5]
        deletes = [(price, 0.0) for price in best]
        book.apply_levels(adds + deletes, [])
        for price, size in adds + deletes:
            if size:
                model[price] = size
            else:
                model.pop(price, None)
        assert book.best_bid == max(model)
    assert book.bids == model and book.top(20)[0] == [(p, model[p]) for p in heapq.nlargest(20, model)]
