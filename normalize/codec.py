"""The wire codec: one envelope per bus message, holding a batch of records of one type.

Layout: version byte | encoding byte | record-type code byte | body.

Two encodings are implemented and benchmarked (benchmarks/bench_codec.py):
* MSGPACK: msgspec msgpack of the records as arrays (field order of the Struct). The default:
  it encodes records straight from the handlers' Structs without building Arrow arrays.
* ARROW: an Arrow IPC stream of one record batch; decodes without copying for columnar sinks.
* PACKED: msgspec msgpack of packed book messages (BookDeltas: common fields once, then the
  levels), what book handlers emit; decodes to book_delta rows or straight to Arrow columns.

Decoding validates the header and raises CodecError with a reason a dead-letter record can
carry; it never returns partially decoded data.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import groupby

import msgspec
import pyarrow as pa

from normalize.arrow_schema import from_arrow, packed_to_arrow, plain_rows, rows_to_arrow, schema_for, to_arrow
from normalize.records import LEVEL_BYTES, RECORD_CLASSES, RECORD_TYPES, BookDeltas, Record, expand

WIRE_VERSION = 1

TYPE_CODES: dict[str, int] = {name: code for code, name in enumerate(RECORD_TYPES, start=1)}
_TYPES_BY_CODE: dict[int, str] = {code: name for name, code in TYPE_CODES.items()}


class Encoding(enum.IntEnum):
    MSGPACK = 1
    ARROW = 2
    PACKED = 3


class CodecError(ValueError):
    """An envelope that cannot be decoded; the message is the dead-letter reason."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    encoding: Encoding
    record_type: str


_encoder = msgspec.msgpack.Encoder()
_packed = msgspec.msgpack.Decoder(list[BookDeltas])


@cache
def _decoder(record_type: str) -> msgspec.msgpack.Decoder[list[Record]]:
    return msgspec.msgpack.Decoder(list[RECORD_CLASSES[record_type]])  # type: ignore[valid-type]


def encode(records: Sequence[Record], encoding: Encoding = Encoding.MSGPACK) -> bytes:
    """Encode a non-empty batch of records of one type. A batch of packed book messages is
    encoded PACKED when MSGPACK is asked for."""
    if not records:
        raise ValueError("an envelope holds at least one record")
    record_type = records[0].record_type
    if encoding is not Encoding.ARROW and (encoding is Encoding.PACKED or type(records[0]) is BookDeltas):
        if not all(type(r) is BookDeltas for r in records):
            raise ValueError("a PACKED envelope holds only BookDeltas")
        encoding = Encoding.PACKED
    header = bytes((WIRE_VERSION, encoding, TYPE_CODES[record_type]))
    if encoding is not Encoding.ARROW:
        return header + _encoder.encode(records)
    return header + _arrow_body(to_arrow(records))


def _arrow_body(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_header(payload: bytes) -> Header:
    """Validate and parse the three header bytes."""
    if len(payload) < 4:
        raise CodecError(f"envelope too short ({len(payload)} bytes)")
    version, encoding, code = payload[0], payload[1], payload[2]
    if version != WIRE_VERSION:
        raise CodecError(f"unsupported wire version {version} (expected {WIRE_VERSION})")
    try:
        enc = Encoding(encoding)
    except ValueError:
        raise CodecError(f"unknown encoding {encoding}") from None
    if code not in _TYPES_BY_CODE:
        raise CodecError(f"unknown record type code {code}")
    return Header(version, enc, _TYPES_BY_CODE[code])


def decode(payload: bytes) -> tuple[str, list[Record]]:
    """Envelope -> (record type, records)."""
    header = read_header(payload)
    body = memoryview(payload)[3:]
    if header.encoding is Encoding.MSGPACK:
        try:
            return header.record_type, _decoder(header.record_type).decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"malformed {header.record_type} msgpack body: {exc}") from None
    if header.encoding is Encoding.PACKED:
        return header.record_type, expand(_read_packed(header.record_type, body))  # type: ignore[arg-type]
    return header.record_type, from_arrow(_read_arrow(header.record_type, body), header.record_type)


@cache
def _row_decoder(record_type: str) -> msgspec.msgpack.Decoder[list[tuple[object, ...]]]:
    """Rows straight to tuples in contract column order, validated by the field annotations."""
    cls = RECORD_CLASSES[record_type]
    hints = typing.get_type_hints(cls, include_extras=True)
    row = tuple.__class_getitem__(tuple(hints[name] for name in cls.__struct_fields__))  # type: ignore[attr-defined]
    return msgspec.msgpack.Decoder(list[row])  # type: ignore[valid-type]


def decode_rows(payload: bytes) -> tuple[str, list[tuple[object, ...]]]:
    """Envelope -> (record type, rows as tuples in contract column order, timestamps as int ns).

    For row writers such as binary COPY: a msgpack or packed body becomes tuples without Struct
    or Arrow objects in between (about three times cheaper than decode_arrow then to_pylist),
    validated just the same.
    """
    header = read_header(payload)
    body = memoryview(payload)[3:]
    if header.encoding is Encoding.MSGPACK:
        try:
            return header.record_type, _row_decoder(header.record_type).decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"malformed {header.record_type} msgpack body: {exc}") from None
    if header.encoding is Encoding.PACKED:
        return header.record_type, [row for m in _read_packed(header.record_type, body) for row in m.row_tuples()]
    return header.record_type, plain_rows(_read_arrow(header.record_type, body))


def _read_packed(record_type: str, body: memoryview) -> list[BookDeltas]:
    if record_type != "book_delta":
        raise CodecError(f"PACKED encoding holds book_delta, not {record_type}")
    try:
        messages = _packed.decode(body)
    except msgspec.DecodeError as exc:
        raise CodecError(f"malformed book_delta PACKED body: {exc}") from None
    for m in messages:
        for native, levels in ((m.bids_native, m.bids), (m.asks_native, m.asks)):
            if len(levels) % LEVEL_BYTES:
                raise CodecError(f"malformed book_delta PACKED body: {len(levels)} bytes of levels, not whole levels")
            if native is not None and len(native) != len(levels) // LEVEL_BYTES:
                raise CodecError("malformed book_delta PACKED body: size_native not aligned with the levels")
    return messages


Part: typing.TypeAlias = list[tuple[object, ...]] | list[BookDeltas] | pa.Table
"""A decoded, validated envelope body not yet made columnar: rows in contract column order
(MSGPACK), packed book messages (PACKED) or the Arrow table (ARROW)."""


def decode_part(payload: bytes) -> tuple[str, Part]:
    """Envelope -> (record type, its Part): validated as decode_rows validates, so parts_to_arrow
    cannot fail on it. A columnar sink keeps the parts of many envelopes and builds its Arrow
    arrays once for all of them: building them per envelope took about half of the Parquet sink's
    CPU (benchmarks/soak.py, profiled)."""
    header = read_header(payload)
    body = memoryview(payload)[3:]
    if header.encoding is Encoding.ARROW:
        return header.record_type, _read_arrow(header.record_type, body)
    if header.encoding is Encoding.PACKED:
        return header.record_type, _read_packed(header.record_type, body)
    return decode_rows(payload)


def part_rows(part: Part) -> int:
    if isinstance(part, pa.Table):
        return int(part.num_rows)
    if _kind(part) == "packed":
        return sum(m.row_count() for m in typing.cast(list[BookDeltas], part))
    return len(part)


def _kind(part: Part) -> str:
    if isinstance(part, pa.Table):
        return "arrow"
    return "packed" if part and type(part[0]) is BookDeltas else "rows"


def parts_to_arrow(record_type: str, parts: Sequence[Part]) -> pa.Table:
    """Parts of one record type -> one Arrow table, rows in the parts' order (consecutive parts of
    one kind are converted together)."""
    tables: list[pa.Table] = []
    for kind, run in groupby((part for part in parts if part_rows(part)), key=_kind):
        group = list(run)
        if kind == "arrow":
            tables.extend(group)
        elif kind == "packed":
            tables.append(packed_to_arrow([m for part in group for m in typing.cast(list[BookDeltas], part)]))
        else:
            rows = [row for part in group for row in typing.cast(list[tuple[object, ...]], part)]
            tables.append(rows_to_arrow(rows, record_type))
    if not tables:
        return schema_for(record_type).empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def decode_arrow(payload: bytes) -> tuple[str, pa.Table]:
    """Envelope -> (record type, Arrow table with the contract schema)."""
    record_type, part = decode_part(payload)
    return record_type, parts_to_arrow(record_type, [part])


def _read_arrow(record_type: str, body: memoryview) -> pa.Table:
    try:
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except pa.ArrowInvalid as exc:
        raise CodecError(f"malformed {record_type} Arrow body: {exc}") from None
    expected = schema_for(record_type)
    if not table.schema.equals(expected, check_metadata=False):
        raise CodecError(f"{record_type} Arrow body does not match the contract schema")
    return table
