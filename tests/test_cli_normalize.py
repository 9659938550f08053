"""`ticklake normalize`: real captures -> Parquet in the lake layout, idempotent on re-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from ingest.venues.registry import NORMALIZERS
from tests.binance_data import CRYPTOFEED_RUN

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
CAPTURES = CRYPTOFEED_RUN


def _normalize(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TICKLAKE, "normalize", "binance-usdm", *map(str, CAPTURES), "--out", str(out), *extra],
                          capture_output=True, text=True, check=False, timeout=120)


def test_normalize_writes_the_lake_layout(tmp_path: Path) -> None:
    result = _normalize(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "book SUSHIUSDT        252 diffs applied, 0 sequence breaks, in sync" in result.stdout
    assert "dead letters: 0" in result.stdout
    trades = pl.read_parquet(f"{tmp_path}/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 91
    assert set(trades["date"].cast(pl.String)) == {"2021-07-22"}
    ctk = trades.filter(pl.col("trade_id") == "16599292").row(0, named=True)
    assert (ctk["instrument"], ctk["price"], ctk["size"], ctk["side"]) == ("CTK-USDT-PERP", 1.011, 10.0, 1)
    deltas = pl.read_parquet(f"{tmp_path}/book_delta/**/*.parquet")
    assert deltas.filter(pl.col("instrument") == "SUSHI-USDT-PERP")["ts_event"].is_sorted()

    again = _normalize(tmp_path)
    assert again.returncode == 0
    assert pl.read_parquet(f"{tmp_path}/trade/**/*.parquet").height == 91


def test_top_n_snapshots_on_a_grid(tmp_path: Path) -> None:
    result = _normalize(tmp_path, "--top-depth", "5", "--top-every", "2.5")
    assert result.returncode == 0, result.stderr
    tops = pl.read_parquet(f"{tmp_path}/book_top/**/*.parquet")
    per_snapshot = tops.group_by("instrument", "ts_recv").agg(pl.len(), pl.col("level").max(),
                                                             (pl.col("flags") & 2).sum().alias("last"))
    assert per_snapshot["len"].to_list() == [10] * per_snapshot.height
    assert set(per_snapshot["level"]) == {5} and set(per_snapshot["last"]) == {2}
    assert all(ts % 2_500_000_000 == 0 for ts in tops["ts_recv"].cast(pl.Int64))
    # 30 s of data: every book is snapshotted at every grid time after its REST snapshot
    assert per_snapshot.group_by("instrument").len()["len"].min() >= 10


def test_unknown_venue_and_missing_file(tmp_path: Path) -> None:
    bad = subprocess.run([TICKLAKE, "normalize", "nope", str(CAPTURES[0]), "--out", str(tmp_path)],
                         capture_output=True, text=True, check=False)
    known = ", ".join(NORMALIZERS)
    assert bad.returncode == 2 and bad.stderr.strip() == f"ticklake: unknown venue 'nope' (known: {known})"
    missing = subprocess.run([TICKLAKE, "normalize", "binance-usdm", str(tmp_path / "x.txt"), "--out",
                              str(tmp_path)], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "capture not found" in missing.stderr
