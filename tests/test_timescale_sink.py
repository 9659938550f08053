"""The Timescale sink end to end with real servers: exact key sets, no duplicates after a crash
between commit and ack, poison envelopes dead-lettered, and PostgreSQL restarts survived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from prometheus_client import REGISTRY

from storage.timescale_sink import SinkConfig, TimescaleSink
from tests.sink_data import (
    binance_records,
    db_keys,
    publish,
    record_keys,
    relabel,
    row_count,
    run_until_drained,
    stream_last_seq,
)
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres


async def test_exact_key_set(bus: EmbeddedNats, postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    sink = TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=postgres.dsn, consumer=f"ts-{venue}"))
    await run_until_drained(sink, bus.url)
    assert db_keys(postgres.dsn, venue) == record_keys(records)
    assert sink.rows_written == row_count(records)
    stream_last = await stream_last_seq(bus.url)
    assert sink.last_seq == stream_last
    labels = {"consumer": sink.config.consumer}
    assert REGISTRY.get_sample_value("ticklake_sink_rows_written_total", labels) == row_count(records)
    assert REGISTRY.get_sample_value("ticklake_sink_last_seq", labels) == stream_last
    assert REGISTRY.get_sample_value("ticklake_sink_pending_messages", labels) == 0
    # every message's bus-to-durable time observed once, none of them negative or absurd
    assert REGISTRY.get_sample_value("ticklake_sink_bus_to_durable_seconds_count", labels) == stream_last
    assert 0 < REGISTRY.get_sample_value("ticklake_sink_bus_to_durable_seconds_sum", labels) < 60 * stream_last
    assert sink.oldest_unacked_s == 0, "everything held was acknowledged"
    assert REGISTRY.get_sample_value("ticklake_sink_oldest_unacked_timestamp_seconds", labels) == 0


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
                                                               tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    config = SinkConfig(nats_url=bus.url, pg_dsn=postgres.dsn, consumer=f"ts-{venue}", ack_wait_s=1.0, batch=64)
    crashing = _CrashAfterCommit(config)
    stop = asyncio.Event()
    with pytest.raises(_Crash):
        await asyncio.wait_for(crashing.run(stop), 30)
    assert crashing.rows_written > 0
    successor = TimescaleSink(config)
    await run_until_drained(successor, bus.url)
    assert successor.skipped == 0, "the successor starts after the committed offset: the batch is not delivered again"
    assert crashing.rows_written + successor.rows_written == row_count(records)
    assert db_keys(postgres.dsn, venue) == record_keys(records)


async def test_poison_envelope_is_dead_lettered(bus: EmbeddedNats, postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    venue, records = relabel(binance_records()[:1000])
    await publish(bus.url, records[:500], tmp_path / "spool")
    client = await nats.connect(bus.url)
    js = client.jetstream()
    await js.publish("ticks.trade.x.y", b"\x01\x01\x01not msgpack")
    await js.publish("ticks.trade.x.y", b"\x09\x01\x01wrong version")
    await client.close()
    await publish(bus.url, records[500:], tmp_path / "spool2")
    sink = TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=postgres.dsn, consumer=f"ts-{venue}"))
    await run_until_drained(sink, bus.url)
    assert sink.dead_letters == 2
    assert db_keys(postgres.dsn, venue) == record_keys(records)
    client = await nats.connect(bus.url)
    sub = await client.jetstream().pull_subscribe("deadletter.>", durable=None, stream="DEADLETTER")
    letters = await sub.fetch(2, timeout=5)
    reasons = sorted(m.headers["Ticklake-Reason"] for m in letters)
    await client.close()
    assert reasons[0].startswith("malformed trade msgpack body")
    assert reasons[1] == "unsupported wire version 9 (expected 1)"


async def test_postgres_restart_loses_nothing(bus: EmbeddedNats, postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    sink = TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=postgres.dsn, consumer=f"ts-{venue}", batch=32,
                                    retry_s=0.2))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    while sink.rows_written == 0:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(postgres.kill)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(postgres.start)
    stop.set()
    await asyncio.wait_for(task, 60)
    assert sink.write_retries > 0, "a batch was retried while PostgreSQL was down"
    await run_until_drained(TimescaleSink(sink.config), bus.url)
    assert db_keys(postgres.dsn, venue) == record_keys(records)




class _StoppedDuringFetch(TimescaleSink):
    """SIGTERM arriving while a fetch is answered: `stop` is set as the batch comes back."""

    def __init__(self, config: SinkConfig, stop: asyncio.Event) -> None:
        super().__init__(config)
        self.stop = stop

    async def _fetch(self, subscription, batch, timeout_s):  # type: ignore[no-untyped-def]
        messages = await super()._fetch(subscription, batch, timeout_s)
        if messages:
            self.stop.set()
        return messages


async def test_a_batch_fetched_as_the_sink_stops_is_written(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                            tmp_path: Path) -> None:
    """The shutdown's wait counts a delivered batch as taken: the sink must write it, not hand it back."""
    venue, records = relabel(binance_records()[:500])
    await publish(bus.url, records, tmp_path / "spool")
    config = SinkConfig(nats_url=bus.url, pg_dsn=postgres.dsn, consumer=f"ts-{venue}", batch=64)
    stop = asyncio.Event()
    sink = _StoppedDuringFetch(config, stop)
    await asyncio.wait_for(sink.run(stop), 30)
    assert sink.last_seq > 0 and sink.rows_written > 0, "the batch in hand was written and committed"
    client = await nats.connect(bus.url)
    info = await client.jetstream().consumer_info("TICKS", config.consumer)
    await client.close()
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == sink.last_seq
    await run_until_drained(TimescaleSink(config), bus.url)
    assert db_keys(postgres.dsn, venue) == record_keys(records)
