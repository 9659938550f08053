"""Arrow schemas derived from the record Structs, and conversion between records and Arrow.

Every other representation (wire codec, Parquet, Timescale DDL) starts from `schema_for`.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Sequence
from functools import cache
from itertools import accumulate, chain, repeat

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from normalize.flags import LAST
from normalize.records import LEVEL_BYTES, RECORD_CLASSES, ArrowType, BookDeltas, Record

_PLAIN_TYPES: dict[type, pa.DataType] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bool: pa.bool_(),
}


def _arrow_type(annotation: object) -> tuple[pa.DataType, bool]:
    """Map one field annotation to (Arrow type, nullable)."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported union annotation {annotation!r}")
        nullable = True
        annotation = members[0]
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, ArrowType):
                return extra.arrow_type, nullable
        annotation = base
    if annotation in _PLAIN_TYPES:
        return _PLAIN_TYPES[annotation], nullable  # type: ignore[index]
    raise TypeError(f"no Arrow type for annotation {annotation!r}")


@cache
def schema_for(record_type: str) -> pa.Schema:
    """The Arrow schema of one record type, in Struct field order.

    The schema metadata names the record type, so a Parquet file or IPC stream says what it holds.
    """
    cls = RECORD_CLASSES[record_type]
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for name in cls.__struct_fields__:
        arrow_type, nullable = _arrow_type(hints[name])
        fields.append(pa.field(name, arrow_type, nullable=nullable))
    return pa.schema(fields, metadata={b"ticklake.record_type": record_type.encode()})


@cache
def _getter(record_type: str) -> operator.attrgetter[tuple[object, ...]]:
    return operator.attrgetter(*RECORD_CLASSES[record_type].__struct_fields__)


def to_arrow(records: Sequence[Record], record_type: str | None = None) -> pa.Table:
    """Records of one type -> Arrow table with the contract schema.

    `record_type` is only needed for an empty sequence. Packed book messages (BookDeltas) become
    their rows, column-wise.
    """
    if not records:
        if record_type is None:
            raise ValueError("record_type is required for an empty sequence")
        return schema_for(record_type).empty_table()
    packed = [r for r in records if type(r) is BookDeltas]
    if packed:
        plain = [r for r in records if type(r) is not BookDeltas]
        tables = [packed_to_arrow(packed)]
        return pa.concat_tables([*tables, to_arrow(plain)] if plain else tables)
    record_type = records[0].record_type
    return rows_to_arrow(list(map(_getter(record_type), records)), record_type)


def rows_to_arrow(rows: Sequence[tuple[object, ...]], record_type: str) -> pa.Table:
    """Rows in contract column order (timestamps as int ns) -> Arrow table, one array per column."""
    schema = schema_for(record_type)
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def packed_to_arrow(messages: Sequence[BookDeltas]) -> pa.Table:
    """Packed book messages -> book_delta rows, column by column: the levels' bytes are joined and
    read as two float64 columns, with no Python object per level."""
    schema = schema_for("book_delta")
    bid_counts = [len(m.bids) // LEVEL_BYTES for m in messages]
    ask_counts = [len(m.asks) // LEVEL_BYTES for m in messages]
    counts = [b + a for b, a in zip(bid_counts, ask_counts, strict=True)]
    rows = sum(counts)
    index = pa.array(list(chain.from_iterable(repeat(i, c) for i, c in enumerate(counts))), pa.int64())
    head = {name: pa.array([getattr(m, name) for m in messages], schema.field(name).type).take(index)
            for name in ("venue", "symbol", "instrument", "ts_event", "ts_recv", "ts_exch", "exch_seq")}
    flags = list(chain.from_iterable(repeat(m.flags, c) for m, c in zip(messages, counts, strict=True)))
    for end, count in zip(accumulate(counts), counts, strict=True):
        if count:
            flags[end - 1] |= LAST
    levels = pa.py_buffer(b"".join(chain.from_iterable((m.bids, m.asks) for m in messages)))
    pairs = pa.FixedSizeListArray.from_arrays(pa.Array.from_buffers(pa.float64(), 2 * rows, [None, levels]), 2)
    sides = chain.from_iterable(chain(repeat(1, b), repeat(-1, a)) for b, a in zip(bid_counts, ask_counts, strict=True))
    if any(m.bids_native is not None or m.asks_native is not None for m in messages):
        native = pa.array(list(chain.from_iterable(
            chain(m.bids_native or repeat(None, b), m.asks_native or repeat(None, a))
            for m, b, a in zip(messages, bid_counts, ask_counts, strict=True))), pa.float64())
    else:
        native = pa.nulls(rows, pa.float64())
    columns = {**head, "flags": pa.array(flags, pa.int32()), "side": pa.array(list(sides), pa.int8()),
               "price": pc.list_element(pairs, 0), "size": pc.list_element(pairs, 1), "size_native": native}
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def plain_rows(table: pa.Table) -> list[tuple[object, ...]]:
    """Rows as tuples in the table's column order, timestamps as int64 nanoseconds (the records'
    representation, and what binary COPY of a bigint column takes)."""
    columns = [
        (column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column).to_pylist()
        for column in table.columns
    ]
    return list(zip(*columns, strict=True))


def from_arrow(table: pa.Table, record_type: str) -> list[Record]:
    """Arrow table (contract schema, any column order) -> records of `record_type`."""
    cls = RECORD_CLASSES[record_type]
    rows = plain_rows(table.select(list(cls.__struct_fields__)))
    return msgspec.convert(rows, list[cls])  # type: ignore[valid-type]


def conform(table: pa.Table, record_type: str) -> pa.Table:
    """The table in the record type's schema and column order. A column the contract gained after a
    file was written (Trade.trade_type, say) comes back null: files written before keep their
    meaning, and every reader sees one schema."""
    schema = schema_for(record_type)
    names = set(table.column_names)
    return pa.Table.from_arrays(
        [table.column(f.name).cast(f.type) if f.name in names else pa.nulls(table.num_rows, f.type) for f in schema],
        schema=schema)
