"""Record keys as frames: what the Parquet sink, the day seal, backfills and the checks deduplicate on.

A record's key is its `key_columns` plus `flags & key_flags` (normalize.records): the same key in
TimescaleDB's unique index (storage.ddl.key_index_columns). Nulls equal nulls, as the index's
NULLS NOT DISTINCT has it.

Two rows with one key are two copies of one venue event (a redundant handler's, a redelivery, a
backfill) and must agree on everything the venue sent. `content_exprs` is that part: the key and
every venue value, without what differs between receivers (ts_recv, the connection, the send time
that a REST copy lacks, flag bits outside the key). More distinct contents than distinct keys
means two events share a key: the seal refuses to merge them rather than lose one.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl
import pyarrow as pa

from normalize.records import RECORD_CLASSES

KEY_FLAGS = "key_flags"
"""Name of the key's flag-bits column in key frames."""
RECEIVER_COLUMNS = ("ts_recv", "connection_id", "ts_exch", "flags")
"""What may differ between two copies of one venue event (unless the key holds it)."""
OBSERVATIONS = ("feed_status", "book_top")
"""Record types that are a handler's own observations (its journal, samples of its book), not venue
events: two handlers' rows are two events, and no content check applies."""
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def stored_key_columns(record_type: str) -> list[str]:
    """The columns a key is computed from (read these from a file to get its keys)."""
    cls = RECORD_CLASSES[record_type]
    return [*cls.key_columns, "flags"] if cls.key_flags else list(cls.key_columns)


def key_exprs(record_type: str) -> list[pl.Expr]:
    cls = RECORD_CLASSES[record_type]
    exprs = [pl.col(name) for name in cls.key_columns]
    if cls.key_flags:
        exprs.append((pl.col("flags") & cls.key_flags).alias(KEY_FLAGS))
    return exprs


def key_names(record_type: str) -> list[str]:
    cls = RECORD_CLASSES[record_type]
    return [*cls.key_columns, KEY_FLAGS] if cls.key_flags else list(cls.key_columns)


def keys_of(frame: Frame, record_type: str) -> Frame:
    """The key of every row, as columns named by `key_names`."""
    return frame.select(key_exprs(record_type))


def first_per_key(frame: Frame, record_type: str) -> Frame:
    """The first row of each key, in the frame's order."""
    return frame.filter(pl.struct(key_exprs(record_type)).is_first_distinct())


def once_per_key(table: pa.Table, record_type: str) -> pa.Table:
    """An Arrow table with each key once (the first copy), in its schema."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    once = first_per_key(frame, record_type)
    return table if once.height == table.num_rows else once.to_arrow().cast(table.schema)


def without_keys(frame: pl.DataFrame, record_type: str, known: pl.DataFrame) -> pl.DataFrame:
    """Rows whose key is not among `known` (a frame of keys, as `keys_of` gives), in order."""
    if known.is_empty() or frame.is_empty():
        return frame
    names = key_names(record_type)
    temporary = [f"__key{i}" for i in range(len(names))]
    keyed = frame.with_columns(expr.alias(name) for expr, name in zip(key_exprs(record_type), temporary, strict=True))
    return keyed.join(known.select(names).rename(dict(zip(names, temporary, strict=True))), on=temporary,
                      how="anti", nulls_equal=True, maintain_order="left").drop(temporary)


def content_exprs(record_type: str, columns: list[str]) -> list[pl.Expr]:
    """The key and the venue's values of a frame with these columns (see the module docstring)."""
    keys = set(RECORD_CLASSES[record_type].key_columns)
    return [*key_exprs(record_type),
            *(pl.col(c) for c in columns if c not in keys and c not in RECEIVER_COLUMNS)]


def key_collisions(frame: pl.DataFrame, record_type: str) -> pl.DataFrame:
    """Keys that rows of the frame share while disagreeing on a venue value: distinct events under
    one key (empty for the handler's own observations, which are never compared)."""
    if record_type in OBSERVATIONS or frame.is_empty():
        return frame.head(0)
    distinct = frame.select(content_exprs(record_type, frame.columns)).unique()
    names = key_names(record_type)
    return distinct.filter(pl.len().over(names) > 1).sort(names, nulls_last=True)
