"""1m OHLCV bars from 10M trades: `pipelines.bars.time_bars` against plain polars `group_by_dynamic` and
DuckDB SQL, on the same Parquet files, in one run.

Data: the real Binance USD-M trades of ticklake/recordings (BTCUSDT and ETHUSDT `@trade`, the last 6 minutes of
2024-08-08 from the two hftbacktest captures: 35,389 trades), normalized by the real normalizer and cycled
to N rows: copy k is shifted by k times the capture's span (so the series continues in time, about a day
for 10M) and gets trade_id + k * 10^12. The rows are written into a lake under a temp dir by the lake's own
writer (`storage.parquet_files.write_atomic`: sorted by instrument and time, zstd), one file per UTC day
as the day seal leaves them, or with `--files-per-day K` in K pieces of consecutive receive time per day
as the live sink leaves them (each piece sorted on its own: the input is then not in trade order and
time_bars sorts).

Variants, all computing the same columns (open, high, low, close, volume, notional, vwap, trades,
buy_volume, sell_volume, first_ts, last_ts per venue, instrument and minute):
* in memory (the frame read once beforehand): time_bars; polars group_by_dynamic (first/last in row
  order: correct only because the files are sorted, and no tie-break); DuckDB over the same Arrow data
  (arg_min/arg_max by ts_event, ties arbitrary).
* from the files (read included for everyone): `pl.read_parquet(glob, hive_partitioning=True, columns=...)`
  + time_bars; time_bars of `pl.scan_parquet(glob, hive_partitioning=True)` (a LazyFrame: trade_id is read
  only when trades tie in time, which in these files they never do); the same read + group_by_dynamic;
  DuckDB `read_parquet(glob, hive_partitioning = true)` with the aggregation in SQL; and DuckDB with
  time_bars' exact order (arg_min over (ts_event, ts_recv, id length, id)).

Each variant runs `--repeat` times, interleaved with the others (the machine is shared: ratios within a
run count); the minimum and median are printed with rates and the ratio of the minimum to time_bars' on
the same input (in memory: time_bars on the frame; files: time_bars of the scan), above 1 = slower. The results are
compared with time_bars' (open/high/low/close/trades exactly, sums to 1e-9 relative). Run:
`python -m benchmarks.bench_bars [--trades N] [--files-per-day K] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from benchmarks.versus import interleaved
from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.records import Trade
from pipelines.bars import BAR_SCHEMA, time_bars
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import filesystem_for, write_atomic
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "binance_usdm"
CAPTURES = [DATA / f"ws_depth0ms+trade+bookTicker+rest_snapshot.{symbol}_20240808.hftbacktest.gz"
            for symbol in ("btcusdt", "ethusdt")]
COLUMNS = ["venue", "instrument", "ts_event", "ts_recv", "trade_id", "price", "size", "side"]
EVERY = "1m"
NS_PER_MINUTE = 60_000_000_000
REFERENCE = {"in memory": "in memory: time_bars", "files": "files: scan (LazyFrame) + time_bars"}
"""The time_bars variant each row's ratio is taken against: the same input, our fastest way to read it."""


def real_trades() -> pl.DataFrame:
    trades = []
    for path in CAPTURES:
        out, _ = normalize_frames("binance-usdm", read_capture(path))
        trades += [r for r in out.records if type(r) is Trade]
    frame = pl.from_arrow(to_arrow(trades))
    assert isinstance(frame, pl.DataFrame)
    return frame


def cycled(base: pl.DataFrame, rows: int) -> pl.DataFrame:
    """`base` repeated to `rows` rows, copy k shifted by k spans in time and by k * 10^12 in trade id."""
    captured_ns: int = base.select((pl.col("ts_event").max() - pl.col("ts_event").min()).dt.total_nanoseconds()).item()
    span_ns = captured_ns // 10**9 * 10**9 + 10**9
    copies = -(-rows // base.height)
    frame = pl.concat([base] * copies).head(rows)
    copy = pl.int_range(pl.len(), dtype=pl.Int64) // base.height
    ts = pl.Datetime("ns", "UTC")
    return frame.with_columns(
        (pl.col("ts_event").cast(pl.Int64) + copy * span_ns).cast(ts).alias("ts_event"),
        (pl.col("ts_recv").cast(pl.Int64) + copy * span_ns).cast(ts).alias("ts_recv"),
        (pl.col("ts_exch").cast(pl.Int64) + copy * span_ns).cast(ts).alias("ts_exch"),
        (pl.col("trade_id").cast(pl.Int64) + copy * 10**12).cast(pl.String).alias("trade_id"),
    )


def write_lake(root: Path, trades: pl.DataFrame, files_per_day: int) -> int:
    """The trades as lake files (the lake's writer); returns the number of files."""
    filesystem, base = filesystem_for(str(root))
    table = trades.sort("ts_recv").to_arrow()
    files = 0
    for (venue, day), part in split_partitions(table).items():
        size = -(-part.num_rows // files_per_day)
        for piece in range(files_per_day):
            chunk: pa.Table = part.slice(piece * size, size)
            path = f"{partition_path(base, 'trade', venue, day)}/bench-{piece:03d}.parquet"
            write_atomic(filesystem, path, chunk, "trade")
            files += 1
    return files


def polars_dynamic(trades: pl.DataFrame) -> pl.DataFrame:
    """The plain polars way: group_by_dynamic, first/last in row order."""
    size, side = pl.col("size"), pl.col("side")
    return (trades.group_by_dynamic("ts_event", every=EVERY, group_by=["venue", "instrument"], label="left")
            .agg(pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
                 pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
                 size.sum().alias("volume"), (pl.col("price") * size).sum().alias("notional"),
                 pl.len().cast(pl.Int64).alias("trades"),
                 pl.when(side == 1).then(size).otherwise(0.0).sum().alias("buy_volume"),
                 pl.when(side == -1).then(size).otherwise(0.0).sum().alias("sell_volume"),
                 pl.col("ts_event").first().alias("first_ts"), pl.col("ts_event").last().alias("last_ts"))
            .rename({"ts_event": "ts"})
            .with_columns((pl.col("notional") / pl.col("volume")).alias("vwap")))


def duckdb_sql(source: str, exact: bool = False) -> str:
    """Minute bars in SQL: the bucket is the epoch floor of ts_event; open/close by arg_min/arg_max of
    ts_event (ties arbitrary) or, `exact`, of (ts_event, ts_recv, id length, id) as time_bars orders."""
    key = "(epoch_ns(ts_event), epoch_ns(ts_recv), length(trade_id), trade_id)" if exact else "ts_event"
    return f"""
        SELECT venue, instrument, epoch_ns(ts_event) // {NS_PER_MINUTE} * {NS_PER_MINUTE} AS ts,
               arg_min(price, {key}) AS open, max(price) AS high, min(price) AS low,
               arg_max(price, {key}) AS close, sum(size) AS volume, sum(price * size) AS notional,
               sum(price * size) / sum(size) AS vwap, count(*) AS trades,
               coalesce(sum(size) FILTER (WHERE side = 1), 0) AS buy_volume,
               coalesce(sum(size) FILTER (WHERE side = -1), 0) AS sell_volume,
               min(ts_event) AS first_ts, max(ts_event) AS last_ts
        FROM {source} GROUP BY ALL"""


def as_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """A variant's result in time_bars' columns, types and order."""
    if frame.schema["ts"] == pl.Int64:
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    columns = [pl.col(name).cast(dtype) for name, dtype in BAR_SCHEMA.items()]
    return frame.select(columns).sort("venue", "instrument", "ts")


def differences(expected: pl.DataFrame, got: pl.DataFrame) -> str:
    """'same' or what differs (prices and counts exactly, sums to 1e-9 relative, times to the microsecond)."""
    if got.height != expected.height:
        return f"{got.height} bars, expected {expected.height}"
    notes = []
    for name in ("open", "high", "low", "close", "trades"):
        if not got[name].equals(expected[name]):
            notes.append(f"{name}: {(got[name] != expected[name]).sum()} differ")
    for name in ("volume", "notional", "vwap", "buy_volume", "sell_volume"):
        if ((got[name] - expected[name]).abs() > 1e-9 * expected[name].abs().clip(1.0)).any():
            notes.append(f"{name} differs")
    for name in ("first_ts", "last_ts"):
        if not got[name].dt.truncate("1us").equals(expected[name].dt.truncate("1us")):
            notes.append(f"{name} differs")
    return "same" if not notes else "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--files-per-day", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-bars-") as tmp:
        root = Path(tmp)
        trades = cycled(real_trades(), args.trades)
        files = write_lake(root, trades, args.files_per_day)
        del trades
        glob = f"{root}/trade/**/*.parquet"
        size_mb = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e6
        print(f"{args.trades:,} trades in {files} Parquet files ({size_mb:.0f} MB), 1m bars, "
              f"{args.repeat} interleaved runs each")

        frame = pl.read_parquet(glob, hive_partitioning=True, columns=COLUMNS)
        arrow = frame.to_arrow()
        con = duckdb.connect()
        con.register("trades_mem", arrow)
        source = f"read_parquet('{glob}', hive_partitioning = true)"
        read = lambda: pl.read_parquet(glob, hive_partitioning=True, columns=COLUMNS)  # noqa: E731
        variants: dict[str, Callable[[], pl.DataFrame]] = {
            "in memory: time_bars": lambda: time_bars(frame, EVERY),
            "in memory: polars group_by_dynamic": lambda: polars_dynamic(frame),
            "in memory: duckdb SQL (arg_min by ts)": lambda: con.sql(duckdb_sql("trades_mem")).pl(),
            "files: read_parquet + time_bars": lambda: time_bars(read(), EVERY),
            "files: scan (LazyFrame) + time_bars": lambda: time_bars(pl.scan_parquet(glob, hive_partitioning=True),
                                                                     EVERY),
            "files: read_parquet + group_by_dynamic": lambda: polars_dynamic(read()),
            "files: duckdb SQL (arg_min by ts)": lambda: con.sql(duckdb_sql(source)).pl(),
            "files: duckdb SQL (exact trade order)": lambda: con.sql(duckdb_sql(source, exact=True)).pl(),
        }
        times, results = interleaved(variants, args.repeat)

        reference = results["in memory: time_bars"]
        print(f"{'variant':42s} {'min s':>7s} {'median s':>9s} {'M trades/s':>11s} {'/ time_bars':>12s}  result")
        for name, spent in times.items():
            mine = min(times[REFERENCE["files" if name.startswith("files") else "in memory"]])
            best = min(spent)
            print(f"{name:42s} {best:7.3f} {statistics.median(spent):9.3f} {args.trades / best / 1e6:11.1f} "
                  f"{best / mine:12.2f}  {differences(reference, as_bars(results[name]))}")


if __name__ == "__main__":
    main()
