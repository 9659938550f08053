"""Writing and reading single lake files, locally or on object storage.

A file is written under a `.tmp` name that Polars and DuckDB do not pick up (they do read
names starting with a dot or underscore), flushed and fsynced, then renamed into place, so a
reader never sees half a file and a crash leaves only a .tmp to clean up.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from normalize.arrow_schema import schema_for

TMP_SUFFIX = ".tmp"
ROW_GROUP_ROWS = 256 * 1024
COMPRESSION = "zstd"


def filesystem_for(root: str) -> tuple[fs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a URL such as s3://bucket/prefix."""
    if "://" in root:
        return fs.FileSystem.from_uri(root)
    return fs.LocalFileSystem(), str(Path(root).absolute())


def sort_for_lake(table: pa.Table) -> pa.Table:
    """Lake order: by instrument then event time (halves single-instrument range reads)."""
    return table.sort_by([("instrument", "ascending"), ("ts_event", "ascending"), ("ts_recv", "ascending")])


def write_atomic(filesystem: fs.FileSystem, path: str, table: pa.Table, record_type: str,
                 metadata: dict[str, str] | None = None) -> None:
    """Write one sorted, zstd-compressed Parquet file atomically at `path`."""
    schema = schema_for(record_type)
    extra = {key.encode(): value.encode() for key, value in (metadata or {}).items()}
    schema = schema.with_metadata({**(schema.metadata or {}), **extra})
    table = sort_for_lake(table.select(schema.names).cast(schema))
    _replace(filesystem, path, lambda stream: pq.write_table(table, stream, compression=COMPRESSION,
                                                             row_group_size=ROW_GROUP_ROWS))


def write_bytes_atomic(filesystem: fs.FileSystem, path: str, data: bytes) -> None:
    """Replace the small file at `path` (a manifest, say) atomically."""
    _replace(filesystem, path, lambda stream: stream.write(data))


def _replace(filesystem: fs.FileSystem, path: str, write: Callable[[pa.NativeFile], object]) -> None:
    """Write through `write` to `path` + .tmp, make it durable, then rename it into place."""
    parent = path.rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    tmp = path + TMP_SUFFIX
    local = isinstance(filesystem, fs.LocalFileSystem)
    with filesystem.open_output_stream(tmp) as stream:
        write(stream)
    if local:
        fsync(tmp)
    filesystem.move(tmp, path)
    if local:
        fsync(parent)


def fsync(path: str) -> None:
    """Make a local file, or a folder's entries, durable (a rename is durable once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parquet_files(filesystem: fs.FileSystem, folder: str) -> list[str]:
    """The lake's files in `folder`, sorted (not `.tmp` ones, which are not the lake's yet)."""
    infos = filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == fs.FileType.File and i.base_name.endswith(".parquet"))


def venues_under(filesystem: fs.FileSystem, folder: str) -> list[str]:
    """Venues with a `venue=<v>/` folder in `folder` (a record type's or a derived asset's)."""
    infos = filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))
    return sorted(i.base_name.removeprefix("venue=") for i in infos
                  if i.type == fs.FileType.Directory and i.base_name.startswith("venue="))


def days_under(filesystem: fs.FileSystem, folder: str, venue: str) -> list[dt.date]:
    """UTC days with a `venue=<venue>/date=<d>/` folder in `folder`, sorted."""
    infos = filesystem.get_file_info(fs.FileSelector(f"{folder}/venue={venue}", allow_not_found=True))
    return sorted(dt.date.fromisoformat(i.base_name.removeprefix("date=")) for i in infos
                  if i.type == fs.FileType.Directory and i.base_name.startswith("date="))


def lake_partitions(lake_root: str, folder: str) -> list[tuple[str, dt.date]]:
    """(venue, day) of every `<folder>/venue=<v>/date=<d>/` directory of the lake (a record type's or
    `derived/<asset>`), listed without reading a file."""
    filesystem, base = filesystem_for(lake_root)
    return [(venue, day) for venue in venues_under(filesystem, f"{base}/{folder}")
            for day in days_under(filesystem, f"{base}/{folder}", venue)]


def read_file(filesystem: fs.FileSystem, path: str) -> pa.Table:
    return pq.read_table(path, filesystem=filesystem)


def file_metadata(filesystem: fs.FileSystem, path: str) -> dict[str, str]:
    with filesystem.open_input_file(path) as handle:
        raw = pq.read_schema(handle).metadata or {}
    return {key.decode(): value.decode() for key, value in raw.items()}
