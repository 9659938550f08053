"""Aged-out and recreated streams: a sink that comes back to a stream that no longer holds messages
it had not written, or to another stream under the same name, journals a `bus_gap` naming what was
lost (stream sequences, bus times), counts it, and carries on with what the stream holds. Both sinks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import polars as pl
import psycopg
import pytest
from prometheus_client import REGISTRY

from ingest.publisher import BusConfig, Publisher
from normalize.records import Record
from storage.parquet_sink import ParquetSink, ParquetSinkConfig
from storage.sink_consumer import BUS_VENUE, JetStreamSink
from storage.timescale_sink import SinkConfig, TimescaleSink
from tests.sink_data import binance_records, drained, relabel, row_count
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

SHORT_LIVED = {"max_age_s": 1.5, "duplicate_window_s": 1.0}


async def _publish(url: str, records: list[Record], spool: Path, **limits: float) -> None:
    publisher = Publisher(BusConfig(url, max_records=300, **limits), spool)  # type: ignore[arg-type]
    await publisher.start()
    publisher.submit(records)
    await publisher.close()


async def _stream_range(url: str) -> tuple[int, int]:
    client = await nats.connect(url)
    try:
        state = (await client.jetstream().stream_info("TICKS")).state
        return state.first_seq, state.last_seq
    finally:
        await client.close()


def _sink(kind: str, bus: EmbeddedNats, dsn: str, lake: Path, consumer: str) -> JetStreamSink:
    if kind == "timescale":
        return TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=dsn, consumer=consumer))
    return ParquetSink(ParquetSinkConfig(nats_url=bus.url, lake=str(lake), consumer=consumer, flush_age_s=0.5))


async def _drain(sink: JetStreamSink, url: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        await drained(url, sink.settings.consumer, task, 60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _rows(kind: str, dsn: str, lake: Path, venue: str) -> int:
    """Rows of `venue` the sink stored (trade, bbo, book_delta, instrument)."""
    if kind == "timescale":
        with psycopg.connect(dsn) as conn:
            return sum(conn.execute(f"SELECT count(*) FROM {t} WHERE venue = %s", (venue,)).fetchone()[0]  # type: ignore[index]
                       for t in ("trade", "bbo", "book_delta", "instrument"))
    return sum(pl.scan_parquet(f"{lake}/{t}/venue={venue}/**/*.parquet").select(pl.len()).collect().item()
               for t in ("trade", "bbo", "book_delta", "instrument") if list(lake.glob(f"{t}/venue={venue}")))


def _gap_rows(kind: str, dsn: str, lake: Path, consumer: str) -> list[tuple[object, ...]]:
    if kind == "timescale":
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT seq_from, seq_to, ts_event, ts_exch, detail FROM feed_status WHERE venue = %s "
                                "AND event = 'bus_gap' AND connection_id = %s ORDER BY seq_from",
                                (BUS_VENUE, consumer)).fetchall()
    files = list(lake.glob(f"feed_status/venue={BUS_VENUE}/*/{consumer}-busgap-*.parquet"))
    if not files:
        return []
    frame = pl.read_parquet(files).sort("seq_from")
    return [(r["seq_from"], r["seq_to"], r["ts_event"], r["ts_exch"], r["detail"]) for r in frame.iter_rows(named=True)]


@pytest.mark.parametrize("kind", ["timescale", "parquet"])
async def test_messages_expired_while_the_sink_was_away_are_a_journaled_gap(
        kind: str, bus: EmbeddedNats, postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (venue_a, first), (venue_b, lost), (venue_c, later) = (relabel(binance_records()[i::3]) for i in range(3))
    consumer = f"{kind}-aged-{venue_a}"
    await _publish(bus.url, first, tmp_path / "spool", **SHORT_LIVED)
    sink = _sink(kind, bus, postgres.dsn, lake, consumer)
    await _drain(sink, bus.url)
    written_through, written_time = sink.last_seq, sink.last_time_ns
    await _publish(bus.url, lost, tmp_path / "spool2", **SHORT_LIVED)
    lost_range = await _stream_range(bus.url)
    await asyncio.sleep(2.5)  # the sink is away longer than the stream keeps messages
    await _publish(bus.url, later, tmp_path / "spool3", **SHORT_LIVED)
    again = _sink(kind, bus, postgres.dsn, lake, consumer)
    await _drain(again, bus.url)
    [gap] = again.bus_gaps
    assert (gap.seq_from, gap.seq_to) == (written_through + 1, lost_range[1])
    assert gap.time_from_ns == written_time and gap.time_to_ns > written_time
    [(seq_from, seq_to, ts_event, ts_exch, detail)] = _gap_rows(kind, postgres.dsn, lake, consumer)
    assert (seq_from, seq_to) == (gap.seq_from, gap.seq_to)
    assert "expired before this consumer wrote them" in detail and "ticklake backfill" in str(detail)
    def ns(value: object) -> int:  # the lake's timestamp[ns] comes back as a datetime
        return value if isinstance(value, int) else int(value.timestamp() * 1e9)  # type: ignore[attr-defined]

    # the lake hands back microseconds: equal to them
    assert abs(ns(ts_event) - written_time) < 2000 and abs(ns(ts_exch) - gap.time_to_ns) < 2000
    assert REGISTRY.get_sample_value("ticklake_sink_bus_gap_messages_total", {"consumer": consumer}) == (
        gap.seq_to - gap.seq_from + 1)
    # what was written before and what came after are all there; the lost messages are not
    assert _rows(kind, postgres.dsn, lake, venue_a) == row_count(first)
    assert _rows(kind, postgres.dsn, lake, venue_c) == row_count(later)
    assert _rows(kind, postgres.dsn, lake, venue_b) == 0
    # a third start finds nothing new to journal
    third = _sink(kind, bus, postgres.dsn, lake, consumer)
    await _drain(third, bus.url)
    assert not third.bus_gaps and len(_gap_rows(kind, postgres.dsn, lake, consumer)) == 1


@pytest.mark.parametrize("kind", ["timescale", "parquet"])
@pytest.mark.parametrize("longer", [True, False], ids=["longer", "shorter"])
async def test_a_recreated_stream_is_recognised_whatever_its_length(
        kind: str, longer: bool, bus: EmbeddedNats, postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """The stream is deleted and created again (or the sink is pointed at another bus with the
    same stream name): its sequences start at 1 again. Longer than the old offset or shorter, every
    message of the new stream is written, and the gap is journaled."""
    lake = tmp_path / "lake"
    venue, records = relabel(binance_records())
    newer_venue, newer = relabel(binance_records())
    consumer = f"{kind}-recreated-{venue}"
    await _publish(bus.url, records[: len(records) // 2], tmp_path / "spool")
    sink = _sink(kind, bus, postgres.dsn, lake, consumer)
    await _drain(sink, bus.url)
    client = await nats.connect(bus.url)
    await client.jetstream().delete_stream("TICKS")
    await client.close()
    published = newer if longer else newer[:10]
    await _publish(bus.url, published, tmp_path / "spool2")
    assert ((await _stream_range(bus.url))[1] > sink.last_seq) == longer
    again = _sink(kind, bus, postgres.dsn, lake, consumer)
    await _drain(again, bus.url)
    [gap] = again.bus_gaps
    assert gap.seq_from == sink.last_seq + 1 and gap.seq_to is None
    assert "is not the one this consumer's offset belongs to" in gap.reason
    assert _rows(kind, postgres.dsn, lake, newer_venue) == row_count(published)
    assert len(_gap_rows(kind, postgres.dsn, lake, consumer)) == 1
