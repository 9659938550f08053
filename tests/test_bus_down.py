"""A bus that goes away: a handler and a sink log one line per reconnect attempt, with backoff, never a
traceback, count the attempts in a Prometheus counter, and lose nothing once the bus is back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.cli_replay import TICKLAKE
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

DOWN_S = 12


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_lost_bus_costs_one_line_per_attempt_with_backoff(tmp_path: Path, bus: EmbeddedNats,
                                                            postgres: EmbeddedPostgres) -> None:
    venue_port, ingest_metrics, sink_metrics = free_port(), free_port(), free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC,ETH",
                               "--rate", "trades=200,book=400", "--duration", "0", "--port", str(venue_port),
                               "--clients", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=postgres.dsn)
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest", "sink")}
    with logs["ingest"].open("w") as ingest_out, logs["sink"].open("w") as sink_out:
        assert wait_listening(venue_port, 20)
        ingest = subprocess.Popen([TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT,ETHUSDT",
                                   "--ws-url", f"ws://127.0.0.1:{venue_port}", "--rest-url",
                                   f"http://127.0.0.1:{venue_port}", "--no-capture", "--metrics-port",
                                   str(ingest_metrics)], env=env, stdout=ingest_out, stderr=subprocess.STDOUT)
        sink = subprocess.Popen([TICKLAKE, "sink", "timescale", "--consumer", "bus-down", "--metrics-port",
                                 str(sink_metrics)], env=env, stdout=sink_out, stderr=subprocess.STDOUT)
        try:
            assert wait_listening(ingest_metrics, 30) and wait_listening(sink_metrics, 30)
            time.sleep(4)
            before = {name: len(_lines(path)) for name, path in logs.items()}
            bus.stop()
            time.sleep(DOWN_S)
            during = {name: _lines(path)[before[name]:] for name, path in logs.items()}
            bus.start()
            time.sleep(12)  # the backoff's next attempt (at most 10 s) finds it
            attempts = _metric(ingest_metrics, "ticklake_bus_connection_errors_total")
        finally:
            for process in (ingest, sink):
                process.send_signal(signal.SIGTERM)
            ingest.wait(60)
            sink.wait(60)
            server.terminate()
            server.wait(10)
    for name, lines in during.items():
        # about log2(12 s / 0.2 s) + 1 attempts, each one line; nats-py's own pace would be 60
        assert 3 <= len(lines) <= 12, (name, lines)
        assert sum("attempt" in line for line in lines) >= 3, (name, lines)
    for path in logs.values():
        assert "Traceback" not in path.read_text()
    assert attempts >= 3
    ingest_text = logs["ingest"].read_text()
    assert "back after" in ingest_text and "envelopes left in the spool" not in ingest_text, ingest_text[-2000:]
