"""`ticklake sink parquet` and `ticklake sink timescale` as separate processes, as docs/bus-and-sinks.md runs
them: a clean stop on SIGTERM flushes what is buffered, and a `kill -9` at a random moment followed
by a restart leaves nothing missing and nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import psycopg

from ingest.publisher import BusConfig, Publisher
from normalize.records import Record
from storage.parquet_sink import MANIFEST_DIR
from tests.sink_data import (
    assert_lake_equals,
    binance_records,
    db_keys,
    publish,
    read_local,
    record_keys,
    relabel,
    row_count,
    stream_last_seq,
)
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
KILLS = 3


def _env(home: Path, nats_url: str, pg_dsn: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(home), TICKLAKE_NATS_URL=nats_url)
    if pg_dsn:
        env["TICKLAKE_PG_DSN"] = pg_dsn
    return env


@dataclass
class Sink:
    """A `ticklake sink ...` process whose output goes to files, readable while it runs."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, env: dict[str, str], out: Path, kind: str, *args: str) -> Sink:
        out.mkdir(parents=True, exist_ok=True)
        stdout, stderr = out / "stdout", out / "stderr"
        with stdout.open("wb") as o, stderr.open("wb") as e:
            process = subprocess.Popen([TICKLAKE, "sink", kind, *args], env=env, stdout=o, stderr=e)
        return cls(process, stdout, stderr)

    async def wait_for(self, what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
        """Poll until `check` holds; fail at once if the sink died."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await check():
            assert self.process.poll() is None, f"sink exited waiting for {what}: {self.stderr.read_text()}"
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    async def stop(self) -> str:
        """SIGTERM; the sink must finish by itself and exit 0. Returns what it printed."""
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, 60)
        assert code == 0, self.stderr.read_text()
        return self.stdout.read_text()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


async def _consumer_state(url: str, consumer: str) -> tuple[int, int, int] | None:
    """(last delivered stream sequence, pending, unacknowledged); None before the consumer exists."""
    client = await nats.connect(url)
    try:
        info = await client.jetstream().consumer_info("TICKS", consumer)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await client.close()
    return info.delivered.stream_seq or 0, info.num_pending or 0, info.num_ack_pending or 0


async def test_sigterm_flushes_the_buffer_and_prints_a_summary(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    consumer, lake, port = f"pq-{venue}", tmp_path / "lake", free_port()
    sink = Sink.start(_env(tmp_path / "home", bus.url), tmp_path / "out", "parquet", "--consumer", consumer,
                      "--filter", f"ticks.*.{venue}.>", "--lake", str(lake), "--flush-age", "600",
                      "--metrics-port", str(port))
    try:
        async def waiting_for_stream() -> bool:
            return "stream TICKS does not exist yet" in sink.stderr.read_text()

        await sink.wait_for("the sink to wait for the stream", waiting_for_stream)
        await publish(bus.url, records, tmp_path / "spool")
        messages = await stream_last_seq(bus.url)

        def scrape() -> str:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()

        async def all_buffered() -> bool:  # delivered by the server, and taken by the sink (not still in flight)
            return (await _consumer_state(bus.url, consumer) == (messages, 0, messages)
                    and f'ticklake_sink_oldest_unacked_timestamp_seconds{{consumer="{consumer}"}}' in scrape())

        await sink.wait_for("every message to be buffered", all_buffered)
        scraped = scrape()
        assert f'ticklake_sink_last_seq{{consumer="{consumer}"}} 0.0' in scraped, "buffered, nothing durable yet"
        # what the alert rules watch: the buffer's age, the lag, the lake's disk
        oldest = float(re.search(rf'ticklake_sink_oldest_unacked_timestamp_seconds{{consumer="{consumer}"}} (\S+)',
                                 scraped).group(1))  # type: ignore[union-attr]
        assert time.time() - 120 < oldest <= time.time(), "the first buffered message's bus time"
        assert f'ticklake_sink_pending_messages{{consumer="{consumer}"}} 0.0' in scraped, "all delivered"
        assert f'ticklake_disk_free_bytes{{path="{lake}",role="lake"}}' in scraped
        assert not lake.exists()
    finally:
        stdout = await sink.stop()
    files = sorted(lake.glob("*/venue=*/date=*/*.parquet"))
    # the three derived BBOs of REST snapshots repeat those of the diffs they match (same key)
    assert stdout.strip() == (f"consumer {consumer}: {row_count(records):,} rows written, {len(files)} files, "
                              f"3 duplicates dropped, 0 skipped, 0 dead letters, 0 write retries, last seq {messages}")
    assert {f.name for f in files} == {f"{consumer}-{1:012d}-{messages:012d}.parquet"}, "one flush, at the stop"
    assert json.loads((lake / MANIFEST_DIR / f"{consumer}.json").read_text())["last_seq"] == messages
    assert_lake_equals(read_local(lake), records)


async def _trickle(url: str, records: list[Record], spool: Path, chunks: int = 20, pause_s: float = 0.05) -> None:
    """Publish in chunks with pauses: records keep arriving for at least `chunks` x `pause_s`."""
    publisher = Publisher(BusConfig(url, max_records=300), spool)
    await publisher.start()
    try:
        size = -(-len(records) // chunks)
        for start in range(0, len(records), size):
            publisher.submit(records[start:start + size])
            await publisher.flush()
            await asyncio.sleep(pause_s)
    finally:
        await publisher.close()


async def _kill_mid_run_and_restart(url: str, kind: str, env: dict[str, str], venue: str, records: list[Record],
                                    args: list[str], tmp_path: Path, durable: Callable[[], Awaitable[bool]]) -> None:
    """Publish a first chunk, start the sink, and once its first write is durable (`durable`
    tells) trickle the rest in while a `kill -9` lands at a random moment; then restart it and
    let it catch up. Only its own venue's subjects are consumed (the filter), so each round sees
    only its records in the shared stream."""
    consumer = f"{kind}-{venue}"
    common = ["--consumer", consumer, "--filter", f"ticks.*.{venue}.>", "--ack-wait", "1.5", *args]
    head = len(records) // 20
    await publish(url, records[:head], tmp_path / f"spool-{venue}-head")
    first = Sink.start(env, tmp_path / f"out-{venue}-1", kind, *common)
    try:
        await first.wait_for("a first durable write", durable)
        trickle = asyncio.create_task(_trickle(url, records[head:], tmp_path / f"spool-{venue}"))
        delay = random.uniform(0.05, 0.6)
        await asyncio.sleep(delay)
    finally:
        first.kill()
    assert not trickle.done(), f"killed {delay:.2f} s into the trickle, while records were still arriving"
    await trickle
    second = Sink.start(env, tmp_path / f"out-{venue}-2", kind, *common)
    try:
        async def caught_up() -> bool:
            state = await _consumer_state(url, consumer)
            return state is not None and state[1] == state[2] == 0

        await second.wait_for("the restarted sink to catch up", caught_up)
    finally:
        await second.stop()


async def test_parquet_sink_killed_mid_run_loses_and_duplicates_nothing(bus: EmbeddedNats, tmp_path: Path) -> None:
    env = _env(tmp_path / "home", bus.url)
    for _ in range(KILLS):
        venue, records = relabel(binance_records())
        lake = tmp_path / f"lake-{venue}"
        manifest = lake / MANIFEST_DIR / f"parquet-{venue}.json"

        async def flushed(manifest: Path = manifest) -> bool:
            return manifest.exists()

        # Two messages a fetch and a flush after each: many small flushes for the kill to land in.
        await _kill_mid_run_and_restart(bus.url, "parquet", env, venue, records,
                                        ["--lake", str(lake), "--batch", "2", "--flush-rows", "1"], tmp_path, flushed)
        assert_lake_equals(read_local(lake), records)
        assert not list(lake.rglob("*.tmp"))


async def test_timescale_sink_killed_mid_run_loses_and_duplicates_nothing(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                                          tmp_path: Path) -> None:
    env = _env(tmp_path / "home", bus.url, postgres.dsn)
    for _ in range(KILLS):
        venue, records = relabel(binance_records())

        async def committed(consumer: str = f"timescale-{venue}") -> bool:
            with psycopg.connect(postgres.dsn) as conn:
                row = conn.execute("SELECT 1 FROM ticklake_sink_offsets WHERE consumer = %s", (consumer,)).fetchone()
            return row is not None

        await _kill_mid_run_and_restart(bus.url, "timescale", env, venue, records, ["--batch", "2"], tmp_path,
                                        committed)
        assert db_keys(postgres.dsn, venue) == record_keys(records)
