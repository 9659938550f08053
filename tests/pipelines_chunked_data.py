"""The sample lake of tests/pipelines_data.py as a live sink leaves it: many small files per partition,
overlapping and re-delivered, so that compaction has work to do and deduplication something to prove.

Every capture group of `PARTS` goes through the real code path (`ingest.offline.normalize_frames`,
then `storage.lake_write.write_records`), but its records are written in `CHUNKS` consecutive
pieces (`<part>.chunk<i>.parquet`) that overlap by `OVERLAP` records, and the middle piece is
written once more (`<part>.redelivered.parquet`), as a sink re-delivery would. The Binance
hftbacktest session misses one depth frame (the replay server's `--skip`), so 2024-08-08 has a
real sequence gap in its feed_status journal. `truth(record_type)` is what the sealed lake must
hold: each record once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from normalize.arrow_schema import schema_for, to_arrow
from normalize.records import Record
from storage.lake_write import group_by_type, write_records
from storage.record_keys import first_per_key
from tests.pipelines_data import PARTS

CHUNKS = 3
OVERLAP = 5
GAP_PART = "binance-hftbacktest"
GAP_AFTER_FRAME = 60_000
"""The first depth frame at or after this playback index is dropped."""


def _frames(part: str) -> list[Frame]:
    frames = list(read_frames(PARTS[part][1]))
    if part == GAP_PART:
        skip = next(i for i in range(GAP_AFTER_FRAME, len(frames)) if b"depthUpdate" in frames[i].payload)
        del frames[skip]
    return frames


@cache
def part_records(part: str) -> tuple[Record, ...]:
    """One capture group normalized (cached for the session: the lake is rebuilt per module)."""
    emitted, _ = normalize_frames(PARTS[part][0], _frames(part))
    return tuple(emitted.records)


def build_chunked_lake(root: Path) -> Path:
    for part in PARTS:
        records = list(part_records(part))
        size = -(-len(records) // CHUNKS)
        for index in range(CHUNKS):
            chunk = records[max(0, index * size - OVERLAP):(index + 1) * size]
            write_records(str(root), chunk, f"{part}.chunk{index}")
        write_records(str(root), records[size:2 * size], f"{part}.redelivered")
    return root


def truth(record_type: str) -> pl.DataFrame:
    """Every record of `record_type` once, as normalized, each key once (the first copy; with the
    lake's `date` column)."""
    tables = [to_arrow(group) for part in PARTS
              for kind, group in group_by_type(part_records(part)).items() if kind == record_type]
    frame = pl.concat([pl.from_arrow(table) for table in tables or [schema_for(record_type).empty_table()]])
    assert isinstance(frame, pl.DataFrame)
    return first_per_key(frame, record_type).with_columns(pl.col("ts_event").dt.date().alias("date"))
