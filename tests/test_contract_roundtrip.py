"""Every record type survives codec, Parquet and Timescale unchanged, ns timestamps included."""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from normalize import codec
from normalize.arrow_schema import from_arrow, schema_for, to_arrow
from normalize.flags import Flag
from normalize.records import RECORD_TYPES, BookDelta, BookDeltas, Record, expand
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import file_metadata, filesystem_for, read_file, write_atomic
from storage.timescale_rows import copy_table, create_scratch_table, read_table
from tests.strategies import batches, packed_batches

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


ROW_ENCODINGS = [codec.Encoding.MSGPACK, codec.Encoding.ARROW]


@pytest.mark.parametrize("record_type", RECORD_TYPES)
@pytest.mark.parametrize("encoding", ROW_ENCODINGS)
def test_codec_identity(record_type: str, encoding: codec.Encoding) -> None:
    @SETTINGS
    @given(batches(record_type))
    def check(records: list[Record]) -> None:
        payload = codec.encode(records, encoding)
        assert codec.read_header(payload).record_type == record_type
        decoded_type, decoded = codec.decode(payload)
        assert decoded_type == record_type
        assert decoded == records
        assert codec.decode_arrow(payload)[1].equals(to_arrow(records))
        assert codec.decode_rows(payload) == (record_type, [msgspec.structs.astuple(r) for r in records])

    check()


@pytest.mark.parametrize("encoding", ROW_ENCODINGS)
def test_packed_book_messages_are_their_rows(encoding: codec.Encoding) -> None:
    """A packed message encodes PACKED and decodes to exactly the rows it stands for, in the
    same order, LAST on each message's final row; column-wise Arrow equals the rows' Arrow."""
    @SETTINGS
    @given(packed_batches())
    def check(messages: list[BookDeltas]) -> None:
        rows = expand(messages)  # type: ignore[arg-type]
        assert all(isinstance(r, BookDelta) for r in rows)
        assert sum(m.row_count() for m in messages) == len(rows)
        for m in messages:
            if m.row_count():
                assert [r.flags & Flag.LAST for r in m.rows()] == [0] * (m.row_count() - 1) + [int(Flag.LAST)] \
                    or m.flags & Flag.LAST
        assert to_arrow(messages).equals(to_arrow(rows) if rows else to_arrow([], "book_delta"))  # type: ignore[arg-type]
        payload = codec.encode(messages, encoding)  # type: ignore[arg-type]
        expected = codec.Encoding.PACKED if encoding is codec.Encoding.MSGPACK else codec.Encoding.ARROW
        assert codec.read_header(payload).encoding is expected
        assert codec.decode(payload) == ("book_delta", rows)
        assert codec.decode_rows(payload) == ("book_delta", [msgspec.structs.astuple(r) for r in rows])
        assert codec.decode_arrow(payload)[1].equals(to_arrow(messages))  # type: ignore[arg-type]

    check()


def test_many_envelopes_become_one_table_in_their_order() -> None:
    """The Parquet sink's path: parts of envelopes in every encoding, made columnar together, equal
    the rows of the envelopes one after the other (a run of one kind converted at once)."""
    @SETTINGS
    @given(packed_batches(), batches("book_delta"), packed_batches())
    def check(first: list[BookDeltas], plain: list[Record], last: list[BookDeltas]) -> None:
        envelopes = [codec.encode(group, encoding) for group, encoding in  # type: ignore[arg-type]
                     ((first, codec.Encoding.MSGPACK), (plain, codec.Encoding.MSGPACK), (plain, codec.Encoding.ARROW),
                      (first, codec.Encoding.MSGPACK), (last, codec.Encoding.MSGPACK)) if group]
        parts = [codec.decode_part(payload)[1] for payload in envelopes]
        expected = [row for payload in envelopes for row in codec.decode_rows(payload)[1]]
        assert sum(codec.part_rows(part) for part in parts) == len(expected)
        table = codec.parts_to_arrow("book_delta", parts)
        assert table.schema.equals(schema_for("book_delta")) and table.num_rows == len(expected)
        assert [msgspec.structs.astuple(r) for r in from_arrow(table, "book_delta")] == expected

    check()
    assert codec.parts_to_arrow("trade", []).equals(schema_for("trade").empty_table())


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_arrow_identity(record_type: str) -> None:
    @SETTINGS
    @given(batches(record_type))
    def check(records: list[Record]) -> None:
        table = to_arrow(records)
        assert table.schema.equals(schema_for(record_type))
        assert from_arrow(table, record_type) == records

    check()


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_parquet_identity(record_type: str, tmp_path: Path) -> None:
    filesystem, root = filesystem_for(str(tmp_path))
    counter = iter(range(10**6))

    @SETTINGS
    @given(batches(record_type))
    def check(records: list[Record]) -> None:
        table = to_arrow(records)
        path = f"{root}/{record_type}-{next(counter)}.parquet"
        write_atomic(filesystem, path, table, record_type, metadata={"ticklake.last_seq": "42"})
        back = read_file(filesystem, path)
        assert back.schema.equals(schema_for(record_type), check_metadata=False)
        assert sorted(from_arrow(back, record_type), key=repr) == sorted(records, key=repr)
        assert file_metadata(filesystem, path)["ticklake.last_seq"] == "42"

    check()
    assert not list(tmp_path.glob("*.tmp")), "temporary files must be renamed away"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_timescale_identity(record_type: str, pg_conn: psycopg.Connection) -> None:
    @SETTINGS
    @given(batches(record_type))
    def check(records: list[Record]) -> None:
        table = to_arrow(records)
        with pg_conn.transaction(force_rollback=True):
            create_scratch_table(pg_conn, record_type)
            with pg_conn.cursor() as cursor:
                assert copy_table(cursor, record_type, table) == len(records)
            back = read_table(pg_conn, record_type)
        assert sorted(from_arrow(back, record_type), key=repr) == sorted(records, key=repr)

    check()


def test_lake_layout_is_readable_by_polars_with_hive_columns(tmp_path: Path) -> None:
    from ticklake.selfcheck import example_records

    filesystem, root = filesystem_for(str(tmp_path))
    trade = next(r for r in example_records() if r.record_type == "trade")
    table = to_arrow([trade])
    for (venue, day), part in split_partitions(table).items():
        write_atomic(filesystem, f"{partition_path(root, 'trade', venue, day)}/p.parquet", part, "trade")
    frame = pl.read_parquet(f"{tmp_path}/trade/**/*.parquet", hive_partitioning=True)
    assert frame["venue"].to_list() == ["binance-usdm"]
    assert str(frame["date"][0]) == "2024-07-22"
    assert frame["ts_event"].cast(pl.Int64).to_list() == [trade.ts_event]
