"""`ticklake normalize bybit` and `ticklake replay-server bybit` + `ticklake ingest --venue bybit`
as separate processes, on the real ob500 capture (which has no receive times: played flat out)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl

from tests.bybit_data import OB500, TRADES
from tests.cli_replay import TICKLAKE, ingest_from_replay


def _levels() -> int:
    return sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in map(json.loads, OB500.read_bytes().splitlines()))


def test_normalize_writes_the_lake(tmp_path: Path) -> None:
    result = subprocess.run([TICKLAKE, "normalize", "bybit", str(OB500), str(TRADES), "--out", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "book XRPUSDT           49 diffs applied, 0 sequence breaks, in sync" in result.stdout
    assert "dead letters: 0" in result.stdout
    deltas = pl.read_parquet(f"{tmp_path}/book_delta/**/*.parquet", hive_partitioning=True)
    assert deltas.height == _levels()
    assert set(deltas["date"].cast(pl.String)) == {"2024-12-01"} and set(deltas["instrument"]) == {"XRP-USDT-PERP"}
    assert deltas["exch_seq"].min() == 20254869 and deltas["exch_seq"].max() == 20254918
    trades = pl.read_parquet(f"{tmp_path}/trade/**/*.parquet").sort("trade_id")
    assert trades["trade_id"].to_list() == sorted(["0cbf2330-952d-5d03-a462-4bf826c867af",
                                                   "912e56de-9ed6-5f4f-9421-f0ff5a42d84a",
                                                   "cb558b74-cf72-5157-b53b-93944db336ad",
                                                   "4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f"])


def test_ingest_against_the_replay_server(tmp_path: Path) -> None:
    result = ingest_from_replay("bybit", [OB500, TRADES], ["XRPUSDT", "LTCUSDT"], tmp_path,
                                "--duration", "3", "--out", str(tmp_path / "lake"), speed="0")
    assert result.returncode == 0, result.stderr
    assert "bbo                   50 rows" in result.stdout
    assert "trade                  1 rows" in result.stdout
    assert ("connects 1, disconnects 1, stale 0, queue overflows 0\n"
            "snapshots 0, trade backfills 0, REST errors 0, dead letters 0") in result.stdout
    deltas = pl.read_parquet(f"{tmp_path}/lake/book_delta/**/*.parquet")
    assert deltas.height == _levels()
    trade = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet").row(0, named=True)
    assert (trade["instrument"], trade["price"], trade["size"], trade["side"]) == ("LTC-USDT-PERP", 94.53, 0.4, 1)
    assert list((tmp_path / "home" / "capture" / "bybit").glob("*/*.tlcap.zst"))
