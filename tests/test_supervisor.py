"""`ticklake run --config`: a synthetic venue through the supervised handler, bus and both sinks; a
handler and a sink killed with SIGKILL are restarted, journaled and shown by the health endpoint, and
every trade lands once in each store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import polars as pl
import psycopg

from tests.cli_replay import TICKLAKE, replay_progress, wait_played
from tests.waiting import wait_for
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

RATE = 100
"""Trades a second over both instruments."""
MARKET_S = 18


def health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        document: dict[str, object] = json.loads(response.read())
    return document


def children(port: int) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in health(port)["children"]}  # type: ignore[attr-defined, index]


def write_config(path: Path, venue_port: int, health_port: int, extra: str = "") -> Path:
    path.write_text(f"""\
[supervisor]
health_port = {health_port}
restart_backoff_s = 0.5
catch_up_s = 30

[schedule]
pipelines = false
retention = false

[sinks.parquet]
flush_age_s = 1

[[feed]]
venue = "binance-usdm"
instruments = ["BTC-USDT-PERP", "ETH-USDT-PERP"]
channels = ["trades", "book", "bbo"]
ws_url = "ws://127.0.0.1:{venue_port}"
rest_url = "http://127.0.0.1:{venue_port}"
clock = "recorded"
{extra}""")
    return path


def stack_env(tmp_path: Path, bus: EmbeddedNats, postgres: EmbeddedPostgres) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=postgres.dsn,
               TICKLAKE_LAKE=str(tmp_path / "lake"))
    return env


def test_killed_children_are_restarted_journaled_and_lose_nothing_downstream(
        tmp_path: Path, bus: EmbeddedNats, postgres: EmbeddedPostgres) -> None:
    venue_port, health_port, truth = free_port(), free_port(), tmp_path / "truth.json"
    started_ns = time.time_ns()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC,ETH",
                               "--rate", f"trades={RATE},book=200", "--duration", str(MARKET_S), "--port",
                               str(venue_port), "--clients", "2", "--truth", str(truth)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = write_config(tmp_path / "feeds.toml", venue_port, health_port)
    supervisor = subprocess.Popen([TICKLAKE, "run", "--config", str(config)], env=stack_env(tmp_path, bus, postgres),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_listening(venue_port, 20) and wait_listening(health_port, 30)
        names = ("ingest-binance-usdm", "sink-timescale", "sink-parquet", "live-bars", "schedule")
        wait_for(lambda: all(children(health_port)[n]["running"] for n in names), 30, "every child running")
        # the market starts when the handler's two connections subscribe, which a loaded machine takes long to
        wait_for(lambda: replay_progress(venue_port)["played"] > 0, 90, "the market started")
        time.sleep(5)
        for name in ("ingest-binance-usdm", "sink-timescale"):
            pid = children(health_port)[name]["pid"]
            assert isinstance(pid, int)
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda name=name, pid=pid: children(health_port)[name]["running"]  # type: ignore[misc, arg-type]
                     and children(health_port)[name]["pid"] != pid, 20, f"{name} restarted")
            time.sleep(3)
        state = children(health_port)
        for name in ("ingest-binance-usdm", "sink-timescale"):
            assert state[name]["restarts"] == 1 and state[name]["last_exit_code"] == -signal.SIGKILL, state[name]
        assert state["sink-parquet"]["restarts"] == 0 and state["sink-parquet"]["last_exit_code"] is None
        document = health(health_port)
        assert document["status"] == "ok" and isinstance(document["behind"]["timescale_pending"], int)  # type: ignore[index]
        wait_played(venue_port, MARKET_S + 60)
        time.sleep(4)  # the last frames through the handler and the sinks
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=90)
    except (AssertionError, OSError) as exc:
        supervisor.kill()
        raise AssertionError(f"{exc}; the supervisor said: {supervisor.communicate()[0]}") from exc
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    assert supervisor.returncode == 0, output
    assert "Traceback" not in output

    with psycopg.connect(postgres.dsn) as conn:
        journal = conn.execute("SELECT connection_id, detail FROM feed_status WHERE event = 'child_restart' "
                               "AND ts_recv >= %s ORDER BY ts_recv", (started_ns,)).fetchall()
        db_trades = [row[0] for row in conn.execute(
            "SELECT instrument || '/' || trade_id FROM trade WHERE venue = 'binance-usdm' AND ts_event >= %s",
            (started_ns - 10**9,)).fetchall()]
    assert [row[0] for row in journal] == ["supervisor:ingest-binance-usdm", "supervisor:sink-timescale"]
    assert all(f"exited with -{int(signal.SIGKILL)}" in row[1] for row in journal)
    lake = pl.read_parquet(f"{tmp_path / 'lake'}/trade/**/*.parquet", hive_partitioning=False)
    lake_trades = (lake["instrument"] + "/" + lake["trade_id"]).to_list()
    generated = {f"{t[0].replace('USDT', '-USDT-PERP')}/{t[1]}"
                 for t in json.loads(truth.read_text())["trades"]}
    assert len(db_trades) == len(set(db_trades)) and len(lake_trades) == len(set(lake_trades))  # once each
    assert set(db_trades) == set(lake_trades) <= generated  # the sink's kill lost and doubled nothing
    # what the handler's SIGKILL lost: frames it held unpublished, and the market while it restarted
    assert len(generated) - len(db_trades) <= RATE * 4, (len(generated), len(db_trades))


def _synthetic(port: int, instruments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", instruments,
                             "--rate", "trades=20,book=40", "--duration", "0", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_new_listing_restarts_only_that_feeds_child(tmp_path: Path, bus: EmbeddedNats,
                                                      postgres: EmbeddedPostgres) -> None:
    """`instruments = "all"`: the venue lists a fourth perpetual (the synthetic venue on the same port is
    replaced by one listing XRP too); the feed's child is restarted with it, the sinks are not."""
    venue_port, health_port = free_port(), free_port()
    started_ns = time.time_ns()
    server = _synthetic(venue_port, "BTC,ETH,SOL")
    config = write_config(tmp_path / "feeds.toml", venue_port, health_port).read_text()
    config = config.replace('instruments = ["BTC-USDT-PERP", "ETH-USDT-PERP"]', 'instruments = "all"')
    config = config.replace("catch_up_s = 30", "catch_up_s = 30\nrefresh_s = 2")
    (tmp_path / "feeds.toml").write_text(config)
    assert wait_listening(venue_port, 20)
    supervisor = subprocess.Popen([TICKLAKE, "run", "--config", str(tmp_path / "feeds.toml")],
                                  env=stack_env(tmp_path, bus, postgres), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_listening(health_port, 30)
        wait_for(lambda: all(c["running"] for c in children(health_port).values()), 30, "every child running")
        handler_log = tmp_path / "home" / "logs" / "ingest-binance-usdm.log"
        wait_for(lambda: handler_log.exists() and "connect: market" in handler_log.read_text(), 60,
                 "the handler connected (it read the instrument list)")
        before = {name: c["pid"] for name, c in children(health_port).items()}
        server.terminate()
        server.wait(10)
        server = _synthetic(venue_port, "BTC,ETH,SOL,XRP")
        assert wait_listening(venue_port, 20)
        feed = "ingest-binance-usdm"
        wait_for(lambda: children(health_port)[feed]["pid"] not in (None, before[feed]), 30, "its child restarted")
        assert children(health_port)[feed]["restarts"] == 0  # a new child for the new list, not a crash's restart
        after = {name: c["pid"] for name, c in children(health_port).items()}
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=90)
    except (AssertionError, OSError) as exc:
        supervisor.kill()
        raise AssertionError(f"{exc}; the supervisor said: {supervisor.communicate()[0]}") from exc
    finally:
        server.terminate()
        server.wait(10)
    assert all(after[name] == before[name] for name in ("sink-timescale", "sink-parquet", "schedule"))
    assert supervisor.returncode == 0, output
    with psycopg.connect(postgres.dsn) as conn:
        rows = conn.execute("SELECT detail FROM feed_status WHERE event = 'instruments_changed' AND ts_recv >= %s",
                            (started_ns,)).fetchall()
    assert [row[0] for row in rows] == ["binance-usdm: listed XRPUSDT, delisted none; children restarted"], output
