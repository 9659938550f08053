"""Hypothesis strategies for contract records, derived from the same Arrow schema as everything else, and
for decimal text as venues quote it."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import strategies as st

from normalize.arrow_schema import schema_for
from normalize.records import RECORD_CLASSES, BookDeltas, Record, pack_levels

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)


def _value(arrow_type: pa.DataType) -> st.SearchStrategy[object]:
    if pa.types.is_timestamp(arrow_type):
        return st.integers(0, 4_102_444_800 * 10**9)  # through 2100: lake partitions need real dates
    if pa.types.is_int64(arrow_type):
        return st.integers(-(2**63), 2**63 - 1)
    if pa.types.is_int32(arrow_type):
        return st.integers(-(2**31), 2**31 - 1)
    if pa.types.is_int8(arrow_type):
        return st.integers(-128, 127)
    if pa.types.is_float64(arrow_type):
        return st.floats(allow_nan=False, allow_infinity=False)
    if pa.types.is_string(arrow_type):
        return _TEXT
    if pa.types.is_boolean(arrow_type):
        return st.booleans()
    raise TypeError(arrow_type)


def records(record_type: str) -> st.SearchStrategy[Record]:
    fields = {}
    for field in schema_for(record_type):
        value = _value(field.type)
        fields[field.name] = st.one_of(st.none(), value) if field.nullable else value
    return st.builds(RECORD_CLASSES[record_type], **fields)


def batches(record_type: str) -> st.SearchStrategy[list[Record]]:
    return st.lists(records(record_type), min_size=1, max_size=20)


_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_LEVELS = st.lists(st.tuples(_FLOAT, _FLOAT), max_size=8)


@st.composite
def packed_book_messages(draw: st.DrawFn) -> BookDeltas:
    """A BookDeltas, with size_native lists aligned to the levels on some of them."""
    head = {f.name: draw(st.one_of(st.none(), _value(f.type)) if f.nullable else _value(f.type))
            for f in schema_for("book_delta") if f.name in BookDeltas.__struct_fields__}
    bids, asks = draw(_LEVELS), draw(_LEVELS)
    native = draw(st.booleans())
    return BookDeltas(**head, bids=pack_levels(bids), asks=pack_levels(asks),
                      bids_native=draw(st.lists(_FLOAT, min_size=len(bids), max_size=len(bids))) if native else None,
                      asks_native=draw(st.lists(_FLOAT, min_size=len(asks), max_size=len(asks))) if native else None)


def packed_batches() -> st.SearchStrategy[list[BookDeltas]]:
    return st.lists(packed_book_messages(), min_size=1, max_size=10)


_DIGITS = st.text("0123456789", min_size=1, max_size=24)
_PLAIN_DECIMALS = st.builds(lambda whole, fraction: whole + ("." + fraction if fraction else ""),
                            _DIGITS, st.one_of(st.just(""), _DIGITS))
decimal_texts = st.one_of(
    _PLAIN_DECIMALS,
    st.builds(lambda mantissa, exponent: f"{mantissa}e{exponent}", _PLAIN_DECIMALS, st.integers(-30, 30)),
    st.floats(min_value=1e-12, max_value=1e12).map(repr))
"""Unsigned decimals: plain, with an exponent, and float reprs; up to 48 digits, leading zeros too."""
