"""Both sinks as processes while records keep arriving and the servers under them go away:
several rounds, at random moments, of nats-server and PostgreSQL being stopped and started again.
Afterwards TimescaleDB and the Parquet lake each hold every published row exactly once."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import nats

from ingest.publisher import BusConfig, Publisher
from tests.sink_data import assert_lake_equals, binance_records, db_keys, drained, read_local, record_keys, relabel
from tests.test_cli_sink import Sink, _env
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

ROUNDS = 4


async def _publish_slowly(publisher: Publisher, records: list, chunks: int) -> None:
    step = len(records) // chunks + 1
    for start in range(0, len(records), step):
        publisher.submit(records[start:start + step])
        await asyncio.sleep(0.15)


async def _consumer_exists(url: str, consumer: str) -> bool:
    client = await nats.connect(url)
    try:
        await client.jetstream().consumer_info("TICKS", consumer)
        return True
    except nats.js.errors.NotFoundError:
        return False
    finally:
        await client.close()


async def _outages(bus: EmbeddedNats, postgres: EmbeddedPostgres, rng: random.Random) -> list[str]:
    """ROUNDS outages, alternating servers in a random order, each at a random moment for a
    random while."""
    done = []
    for server in rng.sample(["nats", "postgres"] * (ROUNDS // 2), ROUNDS):
        await asyncio.sleep(rng.uniform(0.2, 1.2))
        target = bus if server == "nats" else postgres
        await asyncio.to_thread(target.stop)
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        await asyncio.to_thread(target.start)
        done.append(server)
    return done


async def test_servers_restarting_at_random_lose_and_duplicate_nothing(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                                      tmp_path: Path) -> None:
    rng = random.Random()
    venue, records = relabel(binance_records())
    lake = tmp_path / "lake"
    env = _env(tmp_path / "home", bus.url, postgres.dsn)
    common = ["--filter", f"ticks.*.{venue}.>", "--ack-wait", "2", "--batch", "8"]
    publisher = Publisher(BusConfig(bus.url, max_records=200), tmp_path / "spool")
    await publisher.start()
    timescale = Sink.start(env, tmp_path / "out-ts", "timescale", "--consumer", f"ts-{venue}", *common)
    parquet = Sink.start(env, tmp_path / "out-pq", "parquet", "--consumer", f"pq-{venue}", "--lake", str(lake),
                         "--flush-rows", "2000", "--flush-age", "1", *common)
    try:
        for consumer, sink in ((f"ts-{venue}", timescale), (f"pq-{venue}", parquet)):
            # past their start-up checks (a server down at start is a configuration error to them)
            await sink.wait_for("its consumer", lambda consumer=consumer: _consumer_exists(bus.url, consumer))
        feeding = asyncio.create_task(_publish_slowly(publisher, records, chunks=40))
        outages = await _outages(bus, postgres, rng)
        await feeding
        await publisher.close()
        assert sorted(outages) == ["nats", "nats", "postgres", "postgres"]
        assert publisher.spool.depth == 0 and publisher.acked_records > 0
        for consumer, sink in ((f"ts-{venue}", timescale), (f"pq-{venue}", parquet)):
            assert sink.process.poll() is None, sink.stderr.read_text()[-2000:]
            await drained(bus.url, consumer, timeout_s=120)
    finally:
        summaries = [await sink.stop() for sink in (timescale, parquet)]
    assert db_keys(postgres.dsn, venue) == record_keys(records)
    assert_lake_equals(read_local(lake), records)
    assert all("0 dead letters" in summary for summary in summaries), summaries
