"""A full disk under the captures (a 256 KiB tmpfs mounted on $TICKLAKE_HOME/capture, then grown): one warning and
one `capture_failed` journal row, no traceback, every frame still normalized and stored, and
`capture_resumed` once space is back. Needs root to mount the tmpfs, as the test machines and CI run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from tests.cli_replay import TICKLAKE
from ticklake.run_all import wait_caught_up
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening


@pytest.fixture
def tiny_capture_disk(tmp_path: Path) -> Path:
    mount = tmp_path / "home" / "capture"
    mount.mkdir(parents=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                            text=True, check=False)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def _generated_up_to(truth: Path, stored: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every trade the venue generated up to each symbol's last one stored (it runs on after the handler
    stops); by id, which counts up per symbol, not by time: trades of one millisecond fall either side."""
    last: dict[str, int] = {}
    for symbol, trade_id in stored:
        last[symbol] = max(last.get(symbol, -1), int(trade_id))
    return {(t[0], t[1]) for t in json.loads(truth.read_text())["trades"] if int(t[1]) <= last.get(t[0], -1)}


def test_a_full_capture_disk_is_one_line_and_a_journal_row(tmp_path: Path, tiny_capture_disk: Path) -> None:
    port, truth = free_port(), tmp_path / "truth.json"
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC,ETH",
                               "--rate", "trades=300,book=1500", "--duration", "0", "--port", str(port), "--clients",
                               "2", "--truth", str(truth)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env["TICKLAKE_HOME"] = str(tmp_path / "home")
    try:
        assert wait_listening(port, 20)
        ingest = subprocess.Popen([TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT,ETHUSDT",
                                   "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
                                   "--clock", "recorded", "--out", str(tmp_path / "lake")], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60  # the disk fills within seconds, later on a loaded machine
        while shutil.disk_usage(tiny_capture_disk).free > 64 * 1024:
            assert ingest.poll() is None and time.monotonic() < deadline, "the capture disk did not fill"
            time.sleep(0.2)
        time.sleep(3)  # the next flushes (every second) find no space
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_capture_disk)], check=True)
        time.sleep(6)  # space is back: the next try (every 5 s) captures again
        ingest.send_signal(signal.SIGTERM)
        output, _ = ingest.communicate(timeout=60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    assert ingest.returncode == 0, output
    assert "Traceback" not in output
    assert output.count("capture_failed") == 1 and "No space left on device" in output, output[-3000:]
    assert output.count("capture_resumed") == 1, output[-3000:]
    journal = pl.read_parquet(f"{tmp_path}/lake/feed_status/**/*.parquet", hive_partitioning=False)
    assert journal.filter(pl.col("event") == "capture_failed").height == 1
    assert journal.filter(pl.col("event") == "capture_resumed").height == 1
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=False)
    stored = set(zip(trades["symbol"], trades["trade_id"], strict=True))
    generated = _generated_up_to(truth, stored)
    assert stored == generated and len(stored) == trades.height > 1000  # nothing lost but the capture
    assert any(tiny_capture_disk.rglob("*-part*.tlcap.zst"))  # captured again, in a new part file


def test_a_full_spool_disk_holds_envelopes_in_memory_and_loses_none(tmp_path: Path, bus: EmbeddedNats) -> None:
    """The bus away and the spool's disk (a 64 KiB tmpfs) full: one warning, a `spool_full` row, and every
    trade on the bus once it is back."""
    spool = tmp_path / "home" / "spool"
    spool.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(spool)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    port, truth = free_port(), tmp_path / "truth.json"
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC,ETH",
                               "--rate", "trades=300,book=1500", "--duration", "0", "--port", str(port), "--clients",
                               "2", "--truth", str(truth)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_NATS_URL=bus.url)
    try:
        assert wait_listening(port, 20)
        ingest = subprocess.Popen([TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT,ETHUSDT",
                                   "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
                                   "--clock", "recorded", "--no-capture"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        bus.stop()
        time.sleep(6)  # 64 KiB of spool fills in about a second
        bus.start()
        time.sleep(12)  # the reconnect backoff finds it, the spool drains
        ingest.send_signal(signal.SIGTERM)
        output, _ = ingest.communicate(timeout=60)
        sink = subprocess.Popen([TICKLAKE, "sink", "parquet", "--lake", str(tmp_path / "lake"), "--flush-age", "1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_caught_up(bus.url, 60, consumers=("parquet",))
        sink.send_signal(signal.SIGTERM)
        sink.wait(60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        subprocess.run(["umount", str(spool)], check=False)
    assert ingest.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert output.count("spool: No space left on device") == 1 and "left in the spool" not in output, output[-3000:]
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=False)
    journal = pl.read_parquet(f"{tmp_path}/lake/feed_status/**/*.parquet", hive_partitioning=False)
    assert journal.filter(pl.col("event") == "spool_full").height == 1
    stored = set(zip(trades["symbol"], trades["trade_id"], strict=True))
    assert stored == _generated_up_to(truth, stored) and trades.height == len(stored)
