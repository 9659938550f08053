"""`ticklake run` as docs/bus-and-sinks.md runs it: recorded Binance frames through the live handler, the
bus and both sinks; afterwards TimescaleDB and the Parquet lake hold the same rows, every trade
exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import psycopg

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.records import Trade
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.cli_replay import TICKLAKE, wait_played
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

TABLES = ("trade", "book_delta", "bbo", "instrument", "feed_status")


def _timescale(dsn: str, table: str, instruments: list[str], since_ns: int) -> pl.DataFrame:
    """This run's rows (other tests share the database): received since it started; the contract's columns
    (not `time`, the hypertables' own)."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(f"SELECT * FROM {table} WHERE venue = 'binance-usdm' AND ts_recv >= %s "
                              "AND (instrument = ANY(%s) OR instrument = '')", (since_ns, instruments))
        names = [c.name for c in cursor.description or []]
        return pl.DataFrame(cursor.fetchall(), schema=names, orient="row").drop("time")


def _lake(root: Path, table: str, instruments: list[str]) -> pl.DataFrame:
    """The run's own lake holds only this run's rows."""
    frame = pl.read_parquet(f"{root}/{table}/**/*.parquet", hive_partitioning=False)
    frame = frame.filter(pl.col("instrument").is_in([*instruments, ""]))
    times = [c for c in frame.columns if c.startswith("ts_") or c.endswith("_ts")]
    return frame.with_columns(pl.col(c).cast(pl.Int64) for c in times)


def test_run_lands_the_same_rows_in_timescale_and_the_lake(tmp_path: Path, bus: EmbeddedNats,
                                                          postgres: EmbeddedPostgres) -> None:
    started_ns = time.time_ns()
    port = free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", *map(str, CRYPTOFEED_RUN), "--port",
                               str(port), "--speed", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=postgres.dsn,
               TICKLAKE_LAKE=str(tmp_path / "lake"))
    try:
        assert wait_listening(port, 20)
        # Stopped once the server has written every frame (as the demo does), not after a fixed time:
        # a loaded machine may take seconds just to start the handler.
        run = subprocess.Popen(
            [TICKLAKE, "run", "--venue", "binance-usdm", "--symbols", ",".join(CRYPTOFEED_SYMBOLS),
             "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_played(port)
        time.sleep(1)  # the handler reads the last frames from its socket
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=180)
        result = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "consumer timescale:" in result.stdout and "consumer parquet:" in result.stdout
    offline, _ = normalize_frames("binance-usdm", read_frames(CRYPTOFEED_RUN))
    instruments = sorted({r.instrument for r in offline.records if isinstance(r, Trade)})
    trades = _timescale(postgres.dsn, "trade", instruments, started_ns)
    assert sorted(trades["trade_id"]) == sorted(r.trade_id for r in offline.records if isinstance(r, Trade))
    for table in TABLES:
        db = _timescale(postgres.dsn, table, instruments, started_ns)
        lake = _lake(tmp_path / "lake", table, instruments).select(db.columns)
        assert db.height > 0, table
        assert db.sort(db.columns).equals(lake.cast(dict(db.schema)).sort(db.columns)), table


def test_nothing_is_pending_when_no_handler_ever_created_the_stream(bus: EmbeddedNats) -> None:
    """`ticklake run` stopped before any handler published must not wait its whole catch-up for sinks
    that have nothing to read."""
    import asyncio

    from ticklake.run_all import pending

    assert asyncio.run(pending(bus.url, ("timescale", "parquet"), stream="NEVER_CREATED")) == 0


def test_the_timescale_sinks_unacknowledged_messages_are_pending(bus: EmbeddedNats) -> None:
    """Delivered is not written for the Timescale sink (it acknowledges each batch once committed), so the
    shutdown waits for its acknowledgements; the lake sink's unacknowledged messages are its buffer, written
    on stop, so only its undelivered ones count."""
    import asyncio

    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

    from ticklake.run_all import pending

    async def scenario() -> list[int]:
        client = await nats.connect(bus.url)
        js = client.jetstream()
        await js.add_stream(StreamConfig(name="PENDING_TEST", subjects=["pendingtest.>"]))
        for i in range(10):
            await js.publish("pendingtest.x", str(i).encode())
        counts = []
        for name in ("timescale", "parquet"):
            await js.add_consumer("PENDING_TEST", ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT))
            counts.append(await pending(bus.url, [name], stream="PENDING_TEST"))
            held = await (await js.pull_subscribe_bind(durable=name, stream="PENDING_TEST")).fetch(4, timeout=5)
            counts.append(await pending(bus.url, [name], stream="PENDING_TEST"))
            await held[0].ack_sync()
            counts.append(await pending(bus.url, [name], stream="PENDING_TEST"))
        await js.delete_stream("PENDING_TEST")
        await client.close()
        return counts

    assert asyncio.run(scenario()) == [10, 10, 9, 10, 6, 6]
