"""The compiled TextBook (OKX's book) against plain Python: any sequence of messages leaves the same
book as a dict of (size, "price:size" text) per side; its checksum is OKX's, on the real capture's
books and on crafted ones with fewer than 25 levels on a side; its contract conversion equals
Contract.to_base bit for bit over every level and trade of the real OKX captures (whole,
fractional and inverse contracts); malformed levels raise and change nothing."""

from __future__ import annotations

import gc
import json
import zlib
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.capture_formats import read_capture
from normalize.book import TextBook
from normalize.decimals import MAX_EXACT_DIGITS, significant_digits
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import BookDeltas, Level, pack_levels, unpack_levels
from normalize.venues.okx import Okx
from normalize.venues.okx.book_sync import CHECKSUM_DEPTH
from normalize.venues.okx.instruments import Contract, InstrumentMaster
from tests.okx_data import CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS, DATA
from tests.strategies import decimal_texts

Side = dict[float, tuple[float, str]]
"""price -> (size, the venue's "price:size")."""


def reference_checksum(bids: list[str], asks: list[str]) -> int:
    """OKX's checksum of "price:size" texts, best first, written out plainly."""
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        parts += bids[i:i + 1] + asks[i:i + 1]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


class Model:
    """The book in plain Python, as the SortedBook it replaces kept it."""

    def __init__(self, contract: Contract | None = None) -> None:
        self.contract = contract
        self.bids: Side = {}
        self.asks: Side = {}

    def apply(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> tuple[Any, ...]:
        published: list[list[Level]] = []
        natives: list[list[float]] = []
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            out: list[Level] = []
            native: list[float] = []
            for px, sz in levels:
                price, size = float(px), float(sz)
                native.append(size)
                if size and self.contract is not None:
                    size = self.contract.to_base(size, price, sz)
                out.append((price, size))
                if size:
                    side[price] = (size, f"{px}:{sz}")
                else:
                    side.pop(price, None)
            published.append(out)
            natives.append(native)
        if self.contract is None:
            return pack_levels(published[0]), pack_levels(published[1]), None, None
        return pack_levels(published[0]), pack_levels(published[1]), natives[0], natives[1]

    def best(self, depth: int) -> tuple[list[float], list[float]]:
        return sorted(self.bids, reverse=True)[:depth], sorted(self.asks)[:depth]

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        bids, asks = self.best(depth)
        return [(p, self.bids[p][0]) for p in bids], [(p, self.asks[p][0]) for p in asks]

    def top_text(self, depth: int) -> tuple[list[str], list[str]]:
        bids, asks = self.best(depth)
        return [self.bids[p][1] for p in bids], [self.asks[p][1] for p in asks]


def _json(levels: Sequence[Sequence[str]]) -> bytes:
    return json.dumps([list(level) for level in levels]).encode()


def assert_same(book: TextBook, model: Model) -> None:
    bids, asks = model.best(1)
    bid = bids[0] if bids else None
    ask = asks[0] if asks else None
    assert book.bbo() == (bid, model.bids[bid][0] if bid is not None else None,
                          ask, model.asks[ask][0] if ask is not None else None)
    assert (book.best_bid, book.best_ask) == (bid, ask)
    assert book.crossed() == (bid is not None and ask is not None and bid >= ask)
    assert book.bids == {p: s for p, (s, _) in model.bids.items()}
    assert book.asks == {p: s for p, (s, _) in model.asks.items()}
    assert len(book) == len(model.bids) + len(model.asks)
    assert book.top(7) == model.top(7)
    assert book.top_text(40) == model.top_text(40)
    assert book.checksum(CHECKSUM_DEPTH) == reference_checksum(*model.top_text(CHECKSUM_DEPTH))


# -- any message sequence ----------------------------------------------------------------------
_TICKS = st.integers(1, 400)
prices = st.one_of(  # one price in several spellings: the level's text is the last one sent
    _TICKS.map(lambda t: repr(t / 4)), _TICKS.map(lambda t: f"{t / 4:.4f}"), _TICKS.map(lambda t: f"{t * 25}e-2"))
sizes = st.one_of(st.sampled_from(["0", "0.000"]), st.integers(1, 10**6).map(str),
                  st.builds(lambda units, places: str(Decimal(units).scaleb(-places)), st.integers(1, 10**9),
                            st.integers(1, 12)),
                  decimal_texts)
side_levels = st.lists(st.tuples(prices, sizes), max_size=30)
messages = st.lists(st.one_of(st.just("clear"), st.tuples(side_levels, side_levels)), min_size=1, max_size=40)
contracts = st.one_of(st.none(), st.sampled_from([
    Contract.of(False, Decimal("0.01")), Contract.of(False, Decimal("0.1")), Contract.of(False, Decimal("100")),
    Contract.of(True, Decimal("10")), Contract.of(True, Decimal("100")), Contract.of(False, Decimal("1e20")),
    Contract.of(False, Decimal("1e-21"))]))


@settings(max_examples=300, deadline=None)
@given(messages=messages, contract=contracts, extra=st.booleans())
def test_any_message_sequence_leaves_the_model_book(messages: list[Any], contract: Contract | None,
                                                    extra: bool) -> None:
    book, model = TextBook(contract), Model(contract)
    for message in messages:
        if message == "clear":
            book.clear()
            model = Model(contract)
        else:
            bids, asks = message
            tail = ("0", "3") if extra else ()  # OKX's [px, sz, "0", orders]
            result = book.apply_json(_json([(*level, *tail) for level in bids]),
                                     _json([(*level, *tail) for level in asks]))
            expected = model.apply(bids, asks)
            assert result[:4] == expected
            assert result[4] == any(significant_digits(text) > MAX_EXACT_DIGITS for level in bids + asks
                                    for text in level)
        assert_same(book, model)


def test_a_deep_book_with_churn_keeps_its_levels_and_text() -> None:
    """400 levels a side, sizes rewritten with texts of changing length (in place, appended and the
    arena compacted), the best levels deleted and re-created, prices in two spellings."""
    book, model = TextBook(), Model()
    for round_ in range(300):
        bids = [(f"{1000 - (round_ * 7 + i * 13) % 400}" + (".0" if i % 3 else ""),
                 "0" if i % 5 == 0 else str(Decimal(i + round_).scaleb(-(i + round_) % 9))) for i in range(40)]
        asks = [(f"{1001 + (round_ * 11 + i * 17) % 400}", "0" if i % 4 == 0 else str(round_ * 1000 + i))
                for i in range(40)]
        result = book.apply_json(_json(bids), _json(asks))
        assert result[:4] == model.apply(bids, asks)
        if round_ % 50 == 0:
            assert_same(book, model)
    assert_same(book, model)
    assert len(model.bids) > 300 and len(model.asks) > 300


# -- the checksum ------------------------------------------------------------------------------
def _book_messages() -> Iterator[dict[str, Any]]:
    for frame in read_capture(CRYPTOFEED_WS):
        if frame.payload.startswith(b'{"arg":{"channel":"books"'):
            yield json.loads(frame.payload)


def test_every_checksum_of_the_capture_on_the_bare_book() -> None:
    books: dict[str, TextBook] = {}
    models: dict[str, Model] = {}
    checked = 0
    for message in _book_messages():
        symbol = message["arg"]["instId"]
        if message["action"] == "snapshot":
            books[symbol], models[symbol] = TextBook(), Model()
        for data in message["data"]:
            books[symbol].apply_json(_json(data["bids"]), _json(data["asks"]))
            models[symbol].apply([tuple(level[:2]) for level in data["bids"]],
                                 [tuple(level[:2]) for level in data["asks"]])
            assert books[symbol].checksum(CHECKSUM_DEPTH) == data["checksum"]
            assert reference_checksum(*books[symbol].top_text(CHECKSUM_DEPTH)) == data["checksum"]
            checked += 1
    assert checked == 290
    for symbol, book in books.items():
        assert_same(book, models[symbol])


def _real_levels() -> tuple[list[list[str]], list[list[str]]]:
    """The BTC-USDT snapshot's levels, best first."""
    snapshot = next(m for m in _book_messages() if m["arg"]["instId"] == "BTC-USDT")["data"][0]
    return snapshot["bids"], snapshot["asks"]


@pytest.mark.parametrize(("n_bids", "n_asks"), [(30, 3), (3, 30), (25, 24), (0, 7), (7, 0), (1, 0), (0, 0),
                                                 (400, 400)])
def test_the_checksum_of_books_with_fewer_than_25_levels_a_side(n_bids: int, n_asks: int) -> None:
    """Interleaved while both sides have levels, then the longer side's rest; the empty book's
    text is empty (CRC32 0)."""
    bids, asks = _real_levels()
    book = TextBook()
    book.apply_json(_json(bids[:n_bids][::-1]), _json(asks[:n_asks][::-1]))  # any order: the book sorts
    texts = ([":".join(level[:2]) for level in bids[:min(n_bids, 25)]],
             [":".join(level[:2]) for level in asks[:min(n_asks, 25)]])
    assert book.top_text(25) == texts
    assert book.checksum(25) == reference_checksum(*texts)
    if n_bids and n_asks and max(n_bids, n_asks) > 25:
        assert book.checksum(n_bids + n_asks) == reference_checksum(*book.top_text(n_bids + n_asks))
    assert book.checksum(0) == 0
    if not n_bids and not n_asks:
        assert book.checksum(25) == 0


def test_a_level_is_checksummed_in_the_text_last_sent_for_its_price() -> None:
    book = TextBook()
    book.apply_json(b'[["100.50","1.0","0","1"]]', b'[["101","2","0","1"]]')
    assert book.top_text(25) == (["100.50:1.0"], ["101:2"])
    book.apply_json(b'[["100.5","1.00000000","0","1"]]', b"[]")
    assert book.top_text(25) == (["100.5:1.00000000"], ["101:2"])
    assert book.checksum(25) == reference_checksum(["100.5:1.00000000"], ["101:2"])


# -- contracts ---------------------------------------------------------------------------------
def _master() -> InstrumentMaster:
    master = InstrumentMaster()
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        master.load(frame.payload, frame.ts_recv)
    return master


def _capture_levels() -> list[tuple[str, str]]:
    """(price, size) texts of every book level, bbo-tbt level and trade of the OKX captures."""
    levels: list[tuple[str, str]] = []
    payloads = [f.payload for f in read_capture(CRYPTOFEED_WS)]
    payloads += [f.payload for path in sorted(DATA.glob("*.jsonl")) for f in read_capture(path)]
    for payload in payloads:
        message = json.loads(payload)
        channel = message.get("arg", {}).get("channel", "")
        for data in message.get("data", []) if isinstance(message.get("data"), list) else []:
            if channel.startswith(("books", "bbo")):
                levels += [(level[0], level[1]) for level in data["bids"] + data["asks"]]
            elif channel.startswith("trades"):
                levels.append((data["px"], data["sz"]))
    return levels


def test_contract_sizes_equal_to_base_bit_for_bit_over_the_captures() -> None:
    """Every contract of the instruments capture (linear and inverse, 0.0001 to 10^9 a contract)
    and a few beyond (10^20, 10^-21), over every level and trade text of the OKX captures: whole
    contracts (the derivatives' sizes) and fractional ones (spot sizes read as contracts)."""
    contracts = {spec.contract for spec in _master().specs.values() if spec.contract is not None}
    contracts |= {Contract.of(False, Decimal("1e20")), Contract.of(True, Decimal("1e-21")),
                  Contract.of(False, Decimal("0.3"))}
    assert len(contracts) >= 15 and any(c.inverse for c in contracts)
    levels = _capture_levels()
    fractional = [sz for _, sz in levels if not float(sz).is_integer()]
    assert len(levels) > 8000 and len(fractional) > 2000
    for contract in sorted(contracts, key=repr):
        bids, _, natives, _, _ = TextBook(contract).apply_json(_json(levels), b"[]")
        expected = [(float(px), contract.to_base(float(sz), float(px), sz) if float(sz) else float(sz))
                    for px, sz in levels]
        assert bids == pack_levels(expected), contract  # the same bits
        assert natives == [float(sz) for _, sz in levels]


@settings(max_examples=500)
@given(size=decimal_texts, price=st.sampled_from(["30243.5", "5.148", "0.0001234", "1e5"]),
       contract=contracts.filter(lambda c: c is not None))
def test_any_size_text_converts_as_to_base(size: str, price: str, contract: Contract) -> None:
    """Exponent text, more than 22 decimals and products beyond 2^53 are to_base's own (called from
    C); the rest is computed in C: the same bits either way."""
    bids = TextBook(contract).apply_json(_json([(price, size)]), b"[]")[0]
    native = float(size)
    expected = contract.to_base(native, float(price), size) if native else native
    assert unpack_levels(bids) == [(float(price), expected)]
    assert bids == pack_levels([(float(price), expected)])


def test_an_inverse_contract_at_price_0_raises_and_changes_nothing() -> None:
    book = TextBook(Contract.of(True, Decimal("100")))
    book.apply_json(b'[["100","1"]]', b"[]")
    with pytest.raises(ZeroDivisionError, match="ask levels: contracts of an inverse instrument at price 0"):
        book.apply_json(b'[["101","1"]]', b'[["0","2"]]')
    assert book.top_text(5) == (["100:1"], [])
    book.apply_json(b'[["101","0"]]', b'[["0","0"]]')  # deleting at 0 converts nothing


class _Fractional:
    """A contract-like object whose num is not an int: fractional sizes go to its to_base."""

    inverse = False
    num = 1.0
    scale = 1

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, str]] = []
        self.book: TextBook | None = None

    def to_base(self, native: float, price: float, text: str = "") -> float:
        self.calls.append((native, price, text))
        if self.book is not None:
            self.book.apply_json(b"[]", b"[]")  # not allowed while a message is applied
        if text == "6.5":
            raise ArithmeticError("no")
        return native * 2


def test_to_base_is_called_with_the_level_text_and_its_errors_change_nothing() -> None:
    contract = _Fractional()
    book = TextBook(contract)
    assert unpack_levels(book.apply_json(b'[["10","1.50","0","1"],["11","3"]]', b"[]")[0]) == [(10.0, 3.0),
                                                                                            (11.0, 3.0)]
    assert contract.calls == [(1.5, 10.0, "1.50")]
    with pytest.raises(ArithmeticError, match="no"):
        book.apply_json(b'[["12","1"]]', b'[["13", 6.5]]')
    assert book.top_text(5) == (["11:3", "10:1.50"], [])
    contract.book = book  # to_base reaching back into the book: refused, and the cycle is collected
    with pytest.raises(RuntimeError, match="called again while applying"):
        book.apply_json(b'[["12","2.5"]]', b"[]")
    assert book.top_text(5) == (["11:3", "10:1.50"], [])
    del book, contract
    gc.collect()


# -- malformed input ---------------------------------------------------------------------------
@pytest.mark.parametrize(("bids", "why"), [
    (b'[["1","2","0","3"]', "expected ',' or ']' at byte 18"),
    (b'[["1","2",["0"]]]', "a level's fields after the size must be strings or numbers"),
    (b'[["1","2",{}]]', "a level's fields after the size must be strings or numbers"),
    (b'[["1","2","0]]', "unterminated string"),
    (b'[["1","2","0" "3"]]', "expected ',' or ']' after a level's field"),
    (b'[["1"]]', "expected ',' after the price"),
    (b'[["x","2"]]', "expected a decimal at byte 3"),
    (b'[["1","-2"]]', "negative size"),
    (b'[["1","2e999"]]', "decimal out of range"),
    (b'[["1","NaN"]]', "expected a decimal"),
    (b'{"1":"2"}', "expected '['"),
    (b'[["1","2"]] x', "trailing data"),
    (b"", "expected '['"),
])
def test_malformed_levels_raise_and_leave_the_book_as_it_was(bids: bytes, why: str) -> None:
    book = TextBook(Contract.of(False, Decimal("0.1")))
    book.apply_json(b'[["100","1"]]', b'[["101","1"]]')
    with pytest.raises(ValueError, match="bid levels: " + why.replace("[", r"\[").replace("]", r"\]")):
        book.apply_json(bids, b'[["100","0"],["105","1"]]')
    assert book.top_text(5) == (["100:1"], ["101:1"]) and (book.bids, book.asks) == ({100.0: 0.1}, {101.0: 0.1})


def test_fields_after_the_size_are_any_scalars() -> None:
    book = TextBook()
    bids, asks, *_ = book.apply_json(b' [ ["1.5" , "2" , "a\\"]b" , 3 , true , null , -1.5e3 ] ] ', b"[[2, 3]]")
    assert (unpack_levels(bids), unpack_levels(asks)) == ([(1.5, 2.0)], [(2.0, 3.0)])
    assert book.top_text(1) == (["1.5:2"], ["2:3"])  # a bare number's text is its token


def test_books_normalize_with_inexact_decimals_flagged() -> None:
    """The book reports a level decimal of more than 15 significant digits: INEXACT on the
    book_delta and its derived BBO."""
    normalizer, out = Okx(), Emitted()
    frame = (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":'
             b'[["30001.123456789012","1","0","1"]],"bids":[["30000","2","0","1"]],"ts":"1","checksum":0}]}')
    normalizer.on_ws(frame, 5, out)
    deltas, bbo = out.records
    assert isinstance(deltas, BookDeltas) and deltas.flags & Flag.INEXACT and bbo.flags & Flag.INEXACT
    assert deltas.levels() == ([(30000.0, 2.0)], [(30001.123456789012, 1.0)])


def test_odd_construction_and_arguments() -> None:
    with pytest.raises(ValueError, match="depth must be >= 0"):
        TextBook().checksum(-1)
    with pytest.raises(AttributeError):
        TextBook(contract=object())  # type: ignore[arg-type]
    bare = TextBook.__new__(TextBook)  # never initialized: an empty book without a contract
    assert bare.checksum(25) == 0 and bare.top_text(3) == ([], [])
    assert bare.apply_json(b'[["1","2"]]', b"[]")[2:] == (None, None, False) and bare.top_text(3) == (["1:2"], [])
    book = TextBook(Contract.of(False, Decimal("0.1")))
    book.apply_json(b'[["1","2"]]', b"[]")
    book.__init__()  # type: ignore[misc]  # re-initialized: empty, and no contract any more
    assert len(book) == 0 and book.apply_json(b'[["1","2"]]', b"[]")[2] is None
