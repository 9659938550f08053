"""A host clock far off from the venue's: a synthetic venue whose market clock runs an hour behind ours
(`--start` an hour ago) is one `clock_skew` warning and journal row, not one per frame."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from pathlib import Path

import polars as pl

from tests.cli_replay import TICKLAKE
from ticklake.stack.ports import free_port, wait_listening


def test_a_clock_an_hour_off_is_one_line_and_one_journal_row(tmp_path: Path) -> None:
    port = free_port()
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC",
                               "--rate", "trades=50,book=100", "--duration", "0", "--start", start, "--port",
                               str(port), "--clients", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env["TICKLAKE_HOME"] = str(tmp_path / "home")
    try:
        assert wait_listening(port, 20)
        result = subprocess.run([TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT", "--ws-url",
                                 f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", "--no-capture",
                                 "--duration", "15", "--out", str(tmp_path / "lake")], env=env, capture_output=True,
                                text=True, timeout=90, check=False)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in output, output[-3000:]
    lines = [line for line in output.splitlines() if "clock_skew" in line]
    assert len(lines) == 1 and "clock is about 3,6" in lines[0] and "s ahead of the venue's" in lines[0], output
    journal = pl.read_parquet(f"{tmp_path}/lake/feed_status/**/*.parquet", hive_partitioning=False)
    assert journal.filter(pl.col("event") == "clock_skew").height == 1
    assert journal.filter(pl.col("event") == "clock_ok").height == 0
