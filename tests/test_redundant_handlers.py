"""Two handlers on the same feed (A/B, two hosts: here two processes with homes of their own), one
bus, both sinks: every venue event once in TimescaleDB and in the lake, also when handler A is
killed (SIGKILL) in the middle and started again later.

The replay server plays the real 6-minute BTCUSDT session to both connections from one cursor, as
a venue sends the same frames to every client; each handler takes its own REST snapshot. Trades
are compared with an offline normalization of the capture, book diffs with a single handler's
(every non-snapshot row from the earliest snapshot on, once)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psycopg
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.flags import Flag
from normalize.records import BookDelta, Trade, expand
from tests.binance_data import BTCUSDT_SESSION, CRYPTOFEED_EXCHANGE_INFO
from tests.cli_replay import TICKLAKE, wait_played
from tests.pg_databases import private_database
from tests.waiting import wait_for
from ticklake.run_all import wait_caught_up
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

CAPTURES = [CRYPTOFEED_EXCHANGE_INFO, BTCUSDT_SESSION]
CHANNELS = "trade,depth@0ms,bookTicker"
"""What the session recorded: all three on /public, so each handler opens one connection."""
SPEED = "15"
TRADES = 21_313
"""Trades in the recorded session."""


def _env(home: Path, bus: EmbeddedNats, dsn: str, lake: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(home), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=dsn, TICKLAKE_LAKE=str(lake))
    return env


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)


def _ingest(port: int, env: dict[str, str]) -> list[str]:
    return [TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTCUSDT", "--channels", CHANNELS,
            "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}"]


def _stored_trades(dsn: str) -> pl.DataFrame:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT trade_id, ts_event, price, size, side FROM trade WHERE venue = 'binance-usdm' "
                            "AND instrument = 'BTC-USDT-PERP'").fetchall()
    return pl.DataFrame(rows, schema=["trade_id", "ts_event", "price", "size", "side"], orient="row")


def _stored_diffs(dsn: str) -> pl.DataFrame:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT exch_seq, side, price, size FROM book_delta WHERE venue = 'binance-usdm' "
                            "AND flags & 1 = 0").fetchall()
        snapshots = conn.execute("SELECT min(exch_seq) FROM book_delta WHERE venue = 'binance-usdm' "
                                 "AND flags & 1 = 1").fetchone()
    assert snapshots is not None
    frame = pl.DataFrame(rows, schema=["exch_seq", "side", "price", "size"], orient="row")
    return frame.with_columns(pl.lit(snapshots[0]).alias("first_snapshot"))


def _stored_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM trade WHERE venue = 'binance-usdm'").fetchone()
    return 0 if row is None else int(row[0])


def _lake(lake: Path, record_type: str) -> pl.DataFrame:
    return pl.read_parquet(f"{lake}/{record_type}/**/*.parquet", hive_partitioning=False)


def _run(tmp_path: Path, bus: EmbeddedNats, dsn: str, kill_a_after_s: float | None) -> None:
    lake = tmp_path / "lake"
    port = free_port()
    server_env = _env(tmp_path / "server", bus, dsn, lake)
    env_a, env_b = (_env(tmp_path / name, bus, dsn, lake) for name in ("a", "b"))
    sink_env = _env(tmp_path / "sinks", bus, dsn, lake)
    with (_process([TICKLAKE, "replay-server", "binance-usdm", *map(str, CAPTURES), "--port", str(port), "--speed",
                    SPEED, "--clients", "2"], server_env, tmp_path / "server.log"),
          _process([TICKLAKE, "sink", "timescale"], sink_env, tmp_path / "timescale.log"),
          _process([TICKLAKE, "sink", "parquet", "--flush-age", "2"], sink_env, tmp_path / "parquet.log")):
        assert wait_listening(port, 20)
        with _process(_ingest(port, env_b), env_b, tmp_path / "b.log"):
            handler_a = subprocess.Popen(_ingest(port, env_a), env=env_a, stdout=(tmp_path / "a.log").open("wb"),
                                         stderr=subprocess.STDOUT)
            if kill_a_after_s is not None:
                time.sleep(kill_a_after_s)
                handler_a.send_signal(signal.SIGKILL)
                handler_a.wait(10)
                time.sleep(2)
                handler_a = subprocess.Popen(_ingest(port, env_a), env=env_a,
                                             stdout=(tmp_path / "a2.log").open("wb"), stderr=subprocess.STDOUT)
            wait_played(port)
            # a loaded machine's handlers read the tail seconds after the server wrote it: stop them
            # once their trades are stored (a lost one times out here)
            wait_for(lambda: _stored_count(dsn) >= TRADES, 120, "every trade stored", every_s=0.5)
            handler_a.send_signal(signal.SIGTERM)
            assert handler_a.wait(60) == 0, (tmp_path / "a.log").read_text()
        assert wait_caught_up(bus.url, 120), "the sinks did not take the rest of the stream"
    for name in ("b", "timescale", "parquet"):
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text(), name
    # both handlers published everything they received: each sink saw the second copies and dropped them
    for sink in ("timescale", "parquet"):
        log = (tmp_path / f"{sink}.log").read_text()
        summary = re.search(r"([\d,]+) rows written.* ([\d,]+) duplicates dropped", log)
        assert summary is not None, sink
        written, dropped = (int(group.replace(",", "")) for group in summary.groups())
        assert dropped > TRADES if kill_a_after_s is None else dropped > 5_000, (sink, written, dropped)


@pytest.fixture(scope="module")
def offline() -> tuple[pl.DataFrame, pl.DataFrame]:
    out, _ = normalize_frames("binance-usdm", read_frames(CAPTURES))
    trades = pl.DataFrame([(t.trade_id, t.ts_event, t.price, t.size, t.side) for t in out.records
                           if isinstance(t, Trade)], schema=["trade_id", "ts_event", "price", "size", "side"],
                          orient="row")
    diffs = pl.DataFrame([(r.exch_seq, r.side, r.price, r.size) for r in expand(out.records)
                          if isinstance(r, BookDelta) and not r.flags & Flag.SNAPSHOT],
                         schema=["exch_seq", "side", "price", "size"], orient="row")
    return trades, diffs


def _assert_exactly_once(tmp_path: Path, dsn: str, offline: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    trades, diffs = offline
    assert trades.height == TRADES
    stored = _stored_trades(dsn)
    assert stored.height == stored["trade_id"].n_unique(), "a trade stored twice"
    assert stored.sort("trade_id").equals(trades.sort("trade_id")), "trades missing or different"
    lake_trades = _lake(tmp_path / "lake", "trade")
    assert lake_trades.height == TRADES and lake_trades["trade_id"].n_unique() == TRADES
    stored_diffs = _stored_diffs(dsn)
    since = stored_diffs["first_snapshot"][0]
    expected = diffs.filter(pl.col("exch_seq") > since).sort(["exch_seq", "side", "price"])
    got = stored_diffs.drop("first_snapshot").sort(["exch_seq", "side", "price"])
    assert got.height == expected.height and got.equals(expected), "book diffs differ from one handler's"
    lake_diffs = _lake(tmp_path / "lake", "book_delta").filter((pl.col("flags") & 1) == 0)
    assert lake_diffs.height == got.height


def test_two_handlers_store_every_event_once(tmp_path: Path, bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                             offline: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    with private_database(postgres, "ticklake_ab") as dsn:
        _run(tmp_path, bus, dsn, kill_a_after_s=None)
        _assert_exactly_once(tmp_path, dsn, offline)


def test_a_handler_killed_and_restarted_loses_and_doubles_nothing(
        tmp_path: Path, bus: EmbeddedNats, postgres: EmbeddedPostgres,
        offline: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    with private_database(postgres, "ticklake_ab_kill") as dsn:
        _run(tmp_path, bus, dsn, kill_a_after_s=random.uniform(4.0, 12.0))
        _assert_exactly_once(tmp_path, dsn, offline)
