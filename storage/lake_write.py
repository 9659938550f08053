"""Writing a batch of contract records into the lake layout, one file per partition."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from normalize.arrow_schema import to_arrow
from normalize.records import Record
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import filesystem_for, write_atomic
from storage.record_keys import once_per_key


def group_by_type(records: Iterable[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.record_type].append(record)
    return dict(groups)


def write_records(root: str, records: Iterable[Record], part_name: str,
                  metadata: dict[str, str] | None = None) -> dict[str, int]:
    """Write records as `<root>/<type>/venue=<v>/date=<d>/<part_name>.parquet`; rows per type.

    Each key once (storage.record_keys: the first copy), as the sinks store them. A file of the
    same name is replaced atomically, so re-running the same batch is idempotent.
    """
    filesystem, base = filesystem_for(root)
    written: dict[str, int] = {}
    for record_type, group in group_by_type(records).items():
        table = once_per_key(to_arrow(group), record_type)  # packed book messages are one record of many rows
        for (venue, day), part in split_partitions(table).items():
            path = f"{partition_path(base, record_type, venue, day)}/{part_name}.parquet"
            write_atomic(filesystem, path, part, record_type, metadata)
        written[record_type] = table.num_rows
    return written
