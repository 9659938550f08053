"""`ticklake normalize hyperliquid` on the real capture, and `ticklake replay-server hyperliquid` +
`ticklake ingest --venue hyperliquid` as separate processes (the handler POSTs /info to the
replay server, which answers from the recorded bodies)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl

from ingest.capture_formats import read_capture
from tests.cli_replay import TICKLAKE, ingest_from_replay
from tests.hyperliquid_data import CAPTURE, META_FUNDING_CASSETTE

CAPTURES = [CAPTURE, META_FUNDING_CASSETTE]


def _expected_book_rows() -> int:
    """Rows of the first snapshot, then one per level that changed or left, snapshot to snapshot."""
    rows = 0
    previous: list[dict[str, str]] | None = None
    for frame in read_capture(CAPTURE):
        message = json.loads(frame.payload)
        if message["channel"] != "l2Book":
            continue
        sides = [{level["px"]: level["sz"] for level in side} for side in message["data"]["levels"]]
        if previous is None:
            rows += sum(map(len, sides))
        else:
            for old, new in zip(previous, sides, strict=True):
                rows += sum(old.get(px) != sz for px, sz in new.items()) + len(old.keys() - new.keys())
        previous = sides
    return rows


def test_normalize_the_capture_and_the_cassette(tmp_path: Path) -> None:
    result = subprocess.run([TICKLAKE, "normalize", "hyperliquid", *map(str, CAPTURES), "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "book BTC               46 diffs applied, 0 sequence breaks, in sync" in result.stdout
    assert "dead letters: 0" in result.stdout
    assert f"{'book_delta':<14}{_expected_book_rows():>10,} rows" in result.stdout
    trades = pl.read_parquet(f"{tmp_path}/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 64 and trades["trade_id"].n_unique() == 64
    assert set(trades["date"].cast(pl.String)) == {"2025-01-26"}
    first = trades.filter(pl.col("trade_id") == "121451470284048").row(0, named=True)
    assert (first["instrument"], first["price"], first["size"], first["side"]) == (
        "BTC-USDC-PERP", 105056.0, 0.00219, 1)
    deltas = pl.read_parquet(f"{tmp_path}/book_delta/**/*.parquet")
    assert deltas.height == _expected_book_rows()
    assert (deltas["flags"] & 512 == 512).all()
    funding = pl.read_parquet(f"{tmp_path}/funding/**/*.parquet", hive_partitioning=True)
    assert funding.height == 1038 and (funding["flags"] & 32 == 32).all()
    assert pl.read_parquet(f"{tmp_path}/instrument/**/*.parquet").height == 28


def test_ingest_against_the_replay_server(tmp_path: Path) -> None:
    result = ingest_from_replay("hyperliquid", CAPTURES, ["BTC"], tmp_path,
                                "--duration", "4", "--out", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    assert "trade                 64 rows" in result.stdout
    assert "instrument            28 rows" in result.stdout
    assert "funding            1,038 rows" in result.stdout
    assert "connects 1, disconnects 1, stale 0, queue overflows 0" in result.stdout
    assert "REST errors 0, dead letters 0" in result.stdout
    instruments = pl.read_parquet(f"{tmp_path}/lake/instrument/**/*.parquet")
    btc = instruments.filter(pl.col("symbol") == "BTC").row(0, named=True)
    assert (btc["instrument"], btc["quote"], btc["settle"], btc["tick_size"], btc["lot_size"]) == (
        "BTC-USDC-PERP", "USDC", "USDC", 0.1, 0.00001)
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet")
    assert trades["trade_id"].n_unique() == 64
    assert list((tmp_path / "home" / "capture" / "hyperliquid").glob("*/*.tlcap.zst"))
