"""Backpressure: TimescaleDB goes away while a handler ingests a real capture flat out. The
handler keeps up (no queue overflow, everything acknowledged by the bus), JetStream holds the
backlog, and when the database is back the sink drains it: every trade lands, once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.records import Trade
from tests.binance_data import DATA
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
CAPTURE = DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"
CONSUMER = "backpressure-timescale"


def _trade_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT trade_id FROM trade WHERE venue = 'binance-usdm' "
                            "AND instrument = 'BTC-USDT-PERP'").fetchall()
    return sorted(row[0] for row in rows)


def test_database_outage_under_load_loses_nothing(tmp_path: Path, bus: EmbeddedNats,
                                                  postgres: EmbeddedPostgres) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=postgres.dsn)
    expected = sorted(r.trade_id for r in normalize_frames("binance-usdm", read_frames([CAPTURE]))[0].records
                      if isinstance(r, Trade))
    sink_log = (tmp_path / "sink.out").open("w+")
    sink = subprocess.Popen([TICKLAKE, "sink", "timescale", "--consumer", CONSUMER, "--filter",
                             "ticks.*.binance-usdm.>"], env=env, stdout=sink_log,
                            stderr=subprocess.STDOUT, text=True)
    port = free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", str(CAPTURE), "--port", str(port),
                               "--speed", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # the sink passed its start checks and waits for the stream
        while "does not exist yet" not in (tmp_path / "sink.out").read_text():
            assert sink.poll() is None and time.monotonic() < deadline, (tmp_path / "sink.out").read_text()
            time.sleep(0.1)
        postgres.stop()
        try:
            assert wait_listening(port, 20)
            ingest = subprocess.run(
                [TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT",
                 "--channels", "trade,depth@0ms", "--ws-url",
                 f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", "--duration", "12"],
                env=env, capture_output=True, text=True, timeout=120, check=False)
        finally:
            postgres.start()
        assert ingest.returncode == 0, ingest.stderr
        assert "queue overflows 0" in ingest.stdout
        acknowledged = int(re.search(r"bus \(([\d,]+) records acknowledged", ingest.stdout)[1].replace(",", ""))
        assert re.search(r"^trade +21,313 rows$", ingest.stdout, re.MULTILINE), ingest.stdout
        assert acknowledged > 100_000 and "left in the spool" not in ingest.stdout
        deadline = time.monotonic() + 90
        while _trade_ids(postgres.dsn) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _trade_ids(postgres.dsn) == expected, (tmp_path / "sink.out").read_text()[-3000:]
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(60) == 0, (tmp_path / "sink.out").read_text()[-3000:]
        out = (tmp_path / "sink.out").read_text()
        retries = int(re.search(r"([\d,]+) write retries", out)[1].replace(",", ""))
        written = int(re.search(rf"consumer {CONSUMER}: ([\d,]+) rows written", out)[1].replace(",", ""))
        duplicates = int(re.search(r"([\d,]+) duplicates dropped", out)[1].replace(",", ""))
        assert retries >= 1, "the sink saw the database go away"
        # every acknowledged row written, but the derived BBO of the REST snapshot, which repeats
        # the one of the diff it matches (one key)
        assert (written, duplicates) == (acknowledged - 1, 1)
    finally:
        server.terminate()
        server.wait(10)
        if sink.poll() is None:
            sink.kill()
        with psycopg.connect(postgres.dsn) as conn:
            conn.execute("DELETE FROM ticklake_sink_offsets WHERE consumer = %s", (CONSUMER,))
