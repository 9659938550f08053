"""A 1-day, 1-instrument trade query through the query API against reading one sorted file directly.

Data: the real Binance USD-M BTCUSDT and ETHUSDT trades of ticklake/recordings, cycled to N rows as in
bench_bars (copies shifted in time and trade id), written into a lake as the live sink leaves it
(4 files a day) and sealed by the pipelines' own seal (sorted, deduplicated files of at most 1M rows
and a seal manifest). The baseline is the same day's rows in one file sorted by (instrument, ts_event)
read with polars and filtered to the instrument: the fastest plain read there is.

Variants, interleaved, `--repeat` times each; minimum and median, rows/s and the ratio to the baseline:
* baseline: `pl.scan_parquet(file).filter(instrument == X).collect()`;
* query API with a database configured: reads the seal manifest for the watermark and the sealed files
  (the day is below the watermark, so TimescaleDB is not asked; the DSN is never connected);
* query API over the lake alone (`Query(lake)`).
The results must equal the baseline's rows. Run: `python -m benchmarks.bench_query [--trades N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from benchmarks.bench_bars import cycled, real_trades, write_lake
from benchmarks.versus import interleaved
from pipelines.seal import seal_partition
from storage.parquet_files import filesystem_for, write_atomic
from storage.query import Query, to_ns

VENUE = "binance-usdm"
INSTRUMENT = "BTC-USDT-PERP"
DAY = dt.date(2024, 8, 9)
UNUSED_DSN = "postgresql://nobody@127.0.0.1:1/never-connected"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trades", type=int, default=6_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        root = Path(tmp)
        trades = cycled(real_trades(), args.trades)
        write_lake(root / "lake", trades, files_per_day=4)
        sealed = seal_partition(str(root / "lake"), "trade", VENUE, DAY)
        assert sealed is not None
        day = trades.filter(pl.col("ts_event").dt.date() == DAY)
        filesystem, base = filesystem_for(str(root))
        single = f"{base}/single/day.parquet"
        write_atomic(filesystem, single, day.to_arrow(), "trade")
        del trades
        rows = day.filter(pl.col("instrument") == INSTRUMENT).height
        print(f"{day.height:,} trades on {DAY} ({rows:,} of {INSTRUMENT}); sealed into {sealed.files_after} files; "
              f"{args.repeat} interleaved runs each")
        start, end = to_ns(DAY), to_ns(DAY + dt.timedelta(days=1))
        with_db, lake_only = Query(str(root / "lake"), UNUSED_DSN), Query(str(root / "lake"))
        variants: dict[str, Callable[[], pl.DataFrame]] = {
            "one sorted file, polars scan + filter": lambda: pl.scan_parquet(single).filter(
                pl.col("instrument") == INSTRUMENT).collect(),
            "query API (database configured)": lambda: with_db.trades(VENUE, INSTRUMENT, start, end),
            "query API (lake only)": lambda: lake_only.trades(VENUE, INSTRUMENT, start, end),
        }
        times, results = interleaved(variants, args.repeat)
        baseline_name = next(iter(variants))
        baseline = results[baseline_name]
        best = min(times[baseline_name])
        print(f"{'variant':<40}{'min ms':>9}{'median ms':>11}{'M rows/s':>10}{'/ file':>8}  result")
        for name, samples in times.items():
            fastest = min(samples)
            same = results[name].sort(baseline.columns).equals(baseline.sort(baseline.columns))
            print(f"{name:<40}{fastest * 1e3:>9.1f}{statistics.median(samples) * 1e3:>11.1f}"
                  f"{rows / fastest / 1e6:>10.1f}{fastest / best:>8.2f}  {'same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
