"""The publisher against a real nats-server: every record lands exactly once, re-publishes are
deduplicated by Msg-Id, and records survive the bus going away (spool, then drain)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import nats
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from ingest.publisher import Batcher, BusConfig, Publisher, ensure_stream
from normalize.records import Record, Trade
from tests.binance_data import DATA
from tests.bus_data import stream_records
from ticklake.stack.nats import EmbeddedNats

HFT = DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    out, _ = normalize_frames("binance-usdm", read_frames([HFT]))
    return [r for r in out.records if r.record_type in ("trade", "bbo")][:40_000]


def _key(record: Record) -> tuple[object, ...]:
    return (record.record_type, record.venue, record.instrument, record.ts_event, record.ts_recv,
            getattr(record, "trade_id", None), record.exch_seq, record.flags)


async def test_every_record_once_and_republish_is_deduplicated(bus: EmbeddedNats, records: list[Record],
                                                              tmp_path: Path) -> None:
    publisher = Publisher(BusConfig(bus.url, max_records=500), tmp_path / "spool")
    await publisher.start()
    publisher.submit(records)
    await publisher.flush()
    assert publisher.acked_records == len(records)
    # a second handler publishing the same content (other receive times would differ in ts_recv
    # only; here the identical envelopes) is dropped by the server's duplicate window
    again = Publisher(BusConfig(bus.url, max_records=500), tmp_path / "spool2")
    await again.start()
    again.submit(records)
    await again.close()
    await publisher.close()
    stored = await stream_records(bus.url)
    assert sorted(map(_key, stored)) == sorted(map(_key, records))


async def test_bus_outage_spools_and_drains_without_loss(bus: EmbeddedNats, records: list[Record],
                                                         tmp_path: Path) -> None:
    publisher = Publisher(BusConfig(bus.url, max_records=200, ack_timeout_s=1.0), tmp_path / "spool")
    await publisher.start()
    third = len(records) // 3
    publisher.submit(records[:third])
    await publisher.flush()
    bus.stop()
    await asyncio.sleep(0.5)
    publisher.submit(records[third: 2 * third])
    await publisher.flush()
    assert publisher.spool.depth > 0, "with the bus away, envelopes go to the spool"
    bus.start()
    publisher.submit(records[2 * third:])
    await publisher.drain_spool_when_connected(timeout_s=30)
    await publisher.close()
    assert publisher.spool.depth == 0
    stored = await stream_records(bus.url)
    assert len(stored) == len(records)
    assert sorted(map(_key, stored)) == sorted(map(_key, records))


async def test_the_stream_takes_the_configured_limits(bus: EmbeddedNats) -> None:
    """No byte limit unless one is set (JetStream reserves it on disk and refuses more than the store
    holds: a fixed default would stop ticklake on a small disk); a set one is applied to the
    existing stream."""
    client = await nats.connect(bus.url)
    js = client.jetstream()
    try:
        await ensure_stream(js, BusConfig(bus.url))
        assert (await js.stream_info("TICKS")).config.max_bytes == -1
        await ensure_stream(js, BusConfig(bus.url, max_bytes=2**30, max_age_s=3600, duplicate_window_s=60))
        config = (await js.stream_info("TICKS")).config
        assert (config.max_bytes, config.max_age) == (2**30, 3600)
    finally:
        await client.close()


def test_envelopes_close_in_the_order_they_opened_once_due() -> None:
    batcher = Batcher("ticks", max_records=500)
    trade = Trade("v", "A", "A", 1, 1, None, None, 0, 1.0, 1.0, 1, "1")
    for now, instrument in ((0.0, "A"), (0.004, "B"), (0.02, "C")):
        batcher.add([msgspec.structs.replace(trade, instrument=instrument)], now)
    assert batcher.due(0.009, 0.01) == []
    assert [e.subject for e in batcher.due(0.015, 0.01)] == ["ticks.trade.v.A", "ticks.trade.v.B"]
    batcher.add([trade], 0.021)  # A opens again, after C
    assert [e.subject for e in batcher.due(0.05, 0.01)] == ["ticks.trade.v.C", "ticks.trade.v.A"]
    assert batcher.open == {}
