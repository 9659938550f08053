"""Reading a day of the lake and writing derived outputs into it (the pipelines' only lake I/O).

Derived outputs are hive-partitioned like the ticks:
`<lake>/derived/<asset>/venue=<v>/date=<YYYY-MM-DD>/part-0.parquet`, one file per venue and day
(`venue=all` for a cross-venue table without a venue column), each written atomically (.tmp,
fsync, rename). Re-running a day replaces its files and removes
those of venues that no longer have rows, so a re-run leaves exactly what one run leaves.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from normalize.arrow_schema import conform, schema_for
from storage.lake_layout import partition_path
from storage.parquet_files import COMPRESSION, filesystem_for, parquet_files, venues_under, write_bytes_atomic
from storage.seal_manifest import partition_files

DERIVED = "derived"
PART = "part-0.parquet"
ALL_VENUES = "all"


def _read(filesystem: fs.FileSystem, paths: list[str], schema: pa.Schema | None) -> pl.DataFrame:
    """The files' rows, in `schema` when given (contract tables), else as written."""
    tables = [pq.read_table(path, filesystem=filesystem) for path in paths]
    if schema is not None:
        record_type = schema.metadata[b"ticklake.record_type"].decode()
        tables = [conform(table, record_type) for table in tables]
    if not tables:
        frame = pl.from_arrow(schema.empty_table()) if schema is not None else pl.DataFrame()
    else:
        frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)
    return frame


def partition_venues(lake_root: str, record_type: str, day: dt.date) -> list[str]:
    """Venues that have a folder for `day` under `record_type`."""
    filesystem, base = filesystem_for(lake_root)
    return [venue for venue in venues_under(filesystem, f"{base}/{record_type}")
            if filesystem.get_file_info(partition_path(base, record_type, venue, day)).type == fs.FileType.Directory]


def read_partition(lake_root: str, record_type: str, venue: str, day: dt.date) -> pl.DataFrame:
    """One venue's rows of a record type and UTC day, in the contract schema (possibly empty)."""
    filesystem, base = filesystem_for(lake_root)
    return _read(filesystem, partition_files(filesystem, base, record_type, venue, day), schema_for(record_type))


def read_day(lake_root: str, record_type: str, day: dt.date) -> pl.DataFrame:
    """Every venue's rows of one record type and UTC day, in the contract schema (possibly empty)."""
    frames = [read_partition(lake_root, record_type, venue, day)
              for venue in partition_venues(lake_root, record_type, day)]
    filesystem, _ = filesystem_for(lake_root)
    return pl.concat(frames) if frames else _read(filesystem, [], schema_for(record_type))


def derived_path(base: str, asset: str, venue: str, day: dt.date) -> str:
    return f"{partition_path(f'{base}/{DERIVED}', asset, venue, day)}/{PART}"


def read_derived(lake_root: str, asset: str, day: dt.date, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A derived asset's rows of one day, all venues, with the asset's `schema` (also when empty)."""
    filesystem, base = filesystem_for(lake_root)
    paths = [path for venue in venues_under(filesystem, f"{base}/{DERIVED}/{asset}")
             for path in parquet_files(filesystem, partition_path(f"{base}/{DERIVED}", asset, venue, day))]
    frame = _read(filesystem, paths, None)
    return frame.cast(pl.Schema(schema)) if paths else pl.DataFrame(schema=pl.Schema(schema))


def write_derived(lake_root: str, asset: str, day: dt.date, frame: pl.DataFrame) -> dict[str, int]:
    """Replace the day's files of `asset`, one per venue of `frame`; returns rows per venue."""
    filesystem, base = filesystem_for(lake_root)
    written: dict[str, int] = {}
    if frame.height:
        if "venue" not in frame.columns:  # a cross-venue table: one file under venue=all
            frame = frame.with_columns(pl.lit(ALL_VENUES).alias("venue"))
        for (venue,), part in frame.sort("venue").partition_by("venue", as_dict=True, maintain_order=True).items():
            buffer = io.BytesIO()
            pq.write_table(part.to_arrow(), buffer, compression=COMPRESSION)
            write_bytes_atomic(filesystem, derived_path(base, asset, str(venue), day), buffer.getvalue())
            written[str(venue)] = part.height
    for venue in venues_under(filesystem, f"{base}/{DERIVED}/{asset}"):
        stale = derived_path(base, asset, venue, day)
        if venue not in written and filesystem.get_file_info(stale).type == fs.FileType.File:
            filesystem.delete_file(stale)
    return written
