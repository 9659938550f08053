"""Day-seal (compaction) throughput on real book deltas, against a naive one-shot rewrite.

The real Binance BTCUSDT depth@0ms session of 2024-08-08 (445k book_delta rows, 6 minutes) is
cycled backwards in time within the day to `--rows` rows with distinct keys, written as a sink would
(files of `--file-rows` rows, sorted, zstd) plus `--duplicate` of them written again
(re-deliveries), then sealed by `pipelines.seal.seal_partition`. The baseline reads every file,
deduplicates, sorts and writes one file with polars, with no batching, no verification and no
atomic swap. Rates are input rows per second. Run: `python -m benchmarks.bench_compaction
[--rows N] [--file-rows N] [--duplicate F]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
from pyarrow import fs

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.records import RECORD_CLASSES
from pipelines.seal import seal_partition
from storage.lake_layout import partition_path
from storage.parquet_files import write_atomic
from ticklake.recordings import RECORDINGS

CAPTURE = (RECORDINGS / "binance_usdm"
           / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz")
DAY = dt.date(2024, 8, 8)
VENUE = "binance-usdm"


def real_deltas() -> pa.Table:
    emitted, _ = normalize_frames(VENUE, read_frames([CAPTURE]))
    table = to_arrow([r for r in emitted.records if r.record_type == "book_delta"])
    day_start = (DAY - dt.date(1970, 1, 1)).days * 86_400 * 10**9
    days = pl.from_arrow(table).filter(pl.col("ts_event").dt.epoch("ns") < day_start + 86_400 * 10**9)
    assert isinstance(days, pl.DataFrame)
    return days.to_arrow()


def cycled(base: pa.Table, rows: int) -> pl.DataFrame:
    """`rows` rows: copies of the session shifted back by whole session spans (distinct keys, same day)."""
    frame = pl.from_arrow(base)
    assert isinstance(frame, pl.DataFrame)
    span = int(frame["ts_event"].dt.epoch("ns").max() - frame["ts_event"].dt.epoch("ns").min()) + 1
    copies = []
    for k in range(-(-rows // frame.height)):
        shift = pl.duration(nanoseconds=k * span)
        copies.append(frame.with_columns(pl.col("ts_event") - shift, pl.col("ts_recv") - shift))
    return pl.concat(copies).head(rows)


def write_like_a_sink(root: str, frame: pl.DataFrame, file_rows: int, duplicate: float) -> int:
    filesystem, base = fs.LocalFileSystem(), root
    folder = partition_path(base, "book_delta", VENUE, DAY)
    files = 0
    for index, start in enumerate(range(0, frame.height, file_rows)):
        write_atomic(filesystem, f"{folder}/parquet-{index:06d}.parquet", frame.slice(start, file_rows).to_arrow(),
                     "book_delta")
        files += 1
    redelivered = frame.slice(frame.height // 3, int(frame.height * duplicate))
    if redelivered.height:
        write_atomic(filesystem, f"{folder}/redelivered.parquet", redelivered.to_arrow(), "book_delta")
        files += 1
    return files


def naive(root: str, out: Path) -> float:
    folder = partition_path(root, "book_delta", VENUE, DAY)
    start = time.perf_counter()
    frame = pl.read_parquet(f"{folder}/*.parquet")
    keys = list(RECORD_CLASSES["book_delta"].key_columns)
    frame = frame.unique(subset=keys, keep="first", maintain_order=True).sort(["instrument", "ts_event", "ts_recv"],
                                                                            maintain_order=True)
    frame.write_parquet(out / "naive.parquet", compression="zstd")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--file-rows", type=int, default=50_000, help="rows per sink file")
    parser.add_argument("--duplicate", type=float, default=0.1, help="fraction of rows written twice")
    args = parser.parse_args()
    frame = cycled(real_deltas(), args.rows)
    scratch = Path(tempfile.mkdtemp(prefix="bench-compaction-"))
    try:
        root = str(scratch / "lake")
        files = write_like_a_sink(root, frame, args.file_rows, args.duplicate)
        baseline = naive(root, scratch)
        result = seal_partition(root, "book_delta", VENUE, DAY)
        assert result is not None and result.rows_after == frame.height
        print(f"book_delta {DAY}: {result.rows_before:,} rows in {files} files -> {result.rows_after:,} rows in "
              f"{result.files_after} files ({result.duplicates_removed:,} duplicates removed)")
        print(f"{'variant':<34}{'seconds':>9}{'rows/s':>12}")
        print(f"{'naive (read, unique, sort, write)':<34}{baseline:>9.2f}{result.rows_before / baseline:>12,.0f}")
        print(f"{'seal_partition (verified, atomic)':<34}{result.seconds:>9.2f}{result.rows_per_second:>12,.0f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
