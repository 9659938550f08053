"""Hypothesis strategies for contract records, derived from the same Arrow schema as everything else."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import strategies as st

from normalize.arrow_schema import schema_for
from normalize.records import RECORD_CLASSES, Record

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
