"""The Timescale sink end to end with real servers: exact key sets, no duplicates after a crash
between commit and ack, poison envelopes dead-lettered, and PostgreSQL restarts survived."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import msgspec
import nats
import psycopg
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from ingest.publisher import BusConfig, Publisher
from normalize.records import Record
from storage.timescale_sink import SinkConfig, TimescaleSink
from tests.binance_data import CRYPTOFEED_RUN
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres


@pytest.fixture(scope="module")
def real_records() -> list[Record]:
    out, _ = normalize_frames("binance-usdm", read_frames(CRYPTOFEED_RUN))
    return [r for r in out.records if r.record_type in ("trade", "bbo", "book_delta", "instrument")]


def _relabel(records: list[Record]) -> tuple[str, list[Record]]:
    """A venue id of this test's own, so its rows are told apart in the shared database."""
    venue = f"test-{uuid.uuid4().hex[:8]}"
    return venue, [msgspec.structs.replace(r, venue=venue) for r in records]


def _db_keys(dsn: str, venue: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        rows = []
        for table in ("trade", "bbo", "book_delta", "instrument"):
            rows += [(table, *row) for row in conn.execute(
                f"SELECT instrument, ts_event, ts_recv, exch_seq, flags FROM {table} WHERE venue = %s", (venue,))]
        return sorted(rows)


def _keys(records: list[Record]) -> list[tuple[object, ...]]:
    return sorted((r.record_type, r.instrument, r.ts_event, r.ts_recv, r.exch_seq, r.flags) for r in records)


async def _publish(url: str, records: list[Record], spool: Path) -> None:
    publisher = Publisher(BusConfig(url, max_records=300), spool)
    await publisher.start()
    publisher.submit(records)
    await publisher.close()


async def _run_until(sink: TimescaleSink, url: str, timeout_s: float = 60, skipped: int = 0) -> None:
    """Run the sink until its consumer has nothing pending or unacknowledged (and it skipped
    `skipped` redeliveries): everything in the stream was committed and acknowledged."""
    client = await nats.connect(url)
    js = client.jetstream()
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline and not task.done():
        await asyncio.sleep(0.1)
        try:
            info = await js.consumer_info("TICKS", sink.config.consumer)
        except nats.js.errors.NotFoundError:
            continue
        if info.num_pending == 0 and info.num_ack_pending == 0 and sink.skipped >= skipped:
            break
    await client.close()
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_exact_key_set(bus: EmbeddedNats, postgres: EmbeddedPostgres, real_records: list[Record],
                             tmp_path: Path) -> None:
    venue, records = _relabel(real_records)
    await _publish(bus.url, records, tmp_path / "spool")
    sink = TimescaleSink(SinkConfig(bus.url, postgres.dsn, consumer=f"ts-{venue}"))
    await _run_until(sink, bus.url)
    assert _db_keys(postgres.dsn, venue) == _keys(records)
    assert sink.rows_written == len(records)


class _Crash(Exception):
    pass


class _CrashAfterCommit(TimescaleSink):
    """Dies between the commit and the acks, as a kill -9 there would."""

    async def _write(self, js, conn, messages) -> None:  # type: ignore[no-untyped-def]
        acks = [m.ack for m in messages]
        for m in messages:
            m.ack = _never  # type: ignore[method-assign]
        await super()._write(js, conn, messages)
        del acks
        raise _Crash("crash after commit")


async def _never() -> None:
    return None


async def test_crash_between_commit_and_ack_does_not_duplicate(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                               real_records: list[Record], tmp_path: Path) -> None:
    venue, records = _relabel(real_records)
    await _publish(bus.url, records, tmp_path / "spool")
    config = SinkConfig(bus.url, postgres.dsn, consumer=f"ts-{venue}", ack_wait_s=1.0, batch=64)
    crashing = _CrashAfterCommit(config)
    stop = asyncio.Event()
    with pytest.raises(_Crash):
        await asyncio.wait_for(crashing.run(stop), 30)
    assert crashing.rows_written > 0
    successor = TimescaleSink(config)
    await _run_until(successor, bus.url, skipped=64)  # redelivered after ack_wait
    assert successor.skipped == 64, "the redelivered, already committed batch was skipped"
    assert _db_keys(postgres.dsn, venue) == _keys(records)


async def test_poison_envelope_is_dead_lettered(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                real_records: list[Record], tmp_path: Path) -> None:
    venue, records = _relabel(real_records[:1000])
    await _publish(bus.url, records[:500], tmp_path / "spool")
    client = await nats.connect(bus.url)
    js = client.jetstream()
    await js.publish("ticks.trade.x.y", b"\x01\x01\x01not msgpack")
    await js.publish("ticks.trade.x.y", b"\x09\x01\x01wrong version")
    await client.close()
    await _publish(bus.url, records[500:], tmp_path / "spool2")
    sink = TimescaleSink(SinkConfig(bus.url, postgres.dsn, consumer=f"ts-{venue}"))
    await _run_until(sink, bus.url)
    assert sink.dead_letters == 2
    assert _db_keys(postgres.dsn, venue) == _keys(records)
    client = await nats.connect(bus.url)
    sub = await client.jetstream().pull_subscribe("deadletter.>", durable=None, stream="DEADLETTER")
    letters = await sub.fetch(2, timeout=5)
    reasons = sorted(m.headers["Ticklake-Reason"] for m in letters)
    await client.close()
    assert reasons[0].startswith("malformed trade msgpack body")
    assert reasons[1] == "unsupported wire version 9 (expected 1)"


async def test_postgres_restart_loses_nothing(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                              real_records: list[Record], tmp_path: Path) -> None:
    venue, records = _relabel(real_records)
    await _publish(bus.url, records, tmp_path / "spool")
    sink = TimescaleSink(SinkConfig(bus.url, postgres.dsn, consumer=f"ts-{venue}", batch=32, retry_s=0.2))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    while sink.rows_written == 0:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(postgres.kill)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(postgres.start)
    stop.set()
    await asyncio.wait_for(task, 60)
    await _run_until(TimescaleSink(sink.config), bus.url)
    assert _db_keys(postgres.dsn, venue) == _keys(records)
