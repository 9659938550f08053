"""`ticklake normalize okx` on the real capture, and `ticklake replay-server okx` + `ticklake ingest
--venue okx` as separate processes, as docs/ingest.md runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import polars as pl

from tests.cli_replay import TICKLAKE, ingest_from_replay
from tests.okx_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS


def test_normalize_writes_the_lake_layout(tmp_path: Path) -> None:
    result = subprocess.run([TICKLAKE, "normalize", "okx", *map(str, CRYPTOFEED_RUN), "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    for line in ("trade                 74 rows", "book_delta         8,264 rows", "instrument           783 rows",
                 "book BTC-USD-220527      98 diffs applied, 0 sequence breaks, in sync",
                 "book BTC-USDT          97 diffs applied, 0 sequence breaks, in sync",
                 "gap journal: 0 feed_status events", "dead letters: 0"):
        assert line in result.stdout, result.stdout
    trades = pl.read_parquet(f"{tmp_path}/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 74 and set(trades["date"].cast(pl.String)) == {"2022-05-13"}
    uni = trades.filter(pl.col("trade_id") == "12883020").row(0, named=True)
    assert (uni["instrument"], uni["price"], uni["size"], uni["size_native"], uni["side"]) == (
        "UNI-USD-PERP", 5.123, 1000 / 5.123, 100.0, -1)
    deltas = pl.read_parquet(f"{tmp_path}/book_delta/**/*.parquet")
    future = deltas.filter(pl.col("instrument") == "BTC-USD-20220527")
    assert future["size_native"].null_count() == 0 and future["ts_event"].is_sorted()
    assert deltas.filter(pl.col("instrument") == "BTC-USDT")["size_native"].null_count() == deltas.filter(
        pl.col("instrument") == "BTC-USDT").height


def test_ingest_against_the_replay_server(tmp_path: Path) -> None:
    result = ingest_from_replay("okx", CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS, tmp_path,
                                "--duration", "4", "--out", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    assert "trade                 74 rows" in result.stdout, result.stdout
    assert "connects 1, disconnects 1, stale 0, queue overflows 0" in result.stdout
    assert "REST errors 0, dead letters 0" in result.stdout
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 74 and trades["trade_id"].n_unique() == 74
    deltas = pl.read_parquet(f"{tmp_path}/lake/book_delta/**/*.parquet")
    assert set(deltas["instrument"]) == {"BTC-USD-20220527", "UNI-USD-PERP", "BTC-USDT"}
    assert list((tmp_path / "home" / "capture" / "okx").glob("*/*.tlcap.zst"))
