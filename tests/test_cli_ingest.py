"""`ticklake replay-server` and `ticklake ingest` as separate processes, as the README runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.binance_data import CRYPTOFEED_RUN
from ticklake.stack.ports import free_port, wait_listening

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
CAPTURES = CRYPTOFEED_RUN


def test_ingest_against_the_replay_server(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", *map(str, CAPTURES), "--port", str(port),
                               "--speed", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_listening(port, 20)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        env["TICKLAKE_HOME"] = str(tmp_path / "home")
        result = subprocess.run(
            [TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "SUSHIUSDT,AKROUSDT,KEEPUSDT,CTKUSDT",
             "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", "--duration", "4",
             "--out", str(tmp_path / "lake")],
            env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stderr
    assert "trade                 91 rows" in result.stdout
    assert "connects 1, disconnects 1, stale 0, queue overflows 0" in result.stdout
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 91 and trades["trade_id"].n_unique() == 91
    captures = list((tmp_path / "home" / "capture" / "binance-usdm").glob("*/*.tlcap.zst"))
    assert captures, "raw frames are captured under $TICKLAKE_HOME/capture"
