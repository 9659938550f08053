"""The Parquet sink end to end with a real nats-server and real records: the lake holds exactly
the published rows (values, schema, order, partitions, file metadata against the manifest), and
stays exact across a crash before the manifest, a crash between manifest and acks, poison
envelopes, a nats-server restart, and on S3 (a local moto server) across an S3 outage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from pyarrow import fs

from normalize.arrow_schema import schema_for
from storage.lake_layout import NS_PER_DAY, day_of
from storage.parquet_files import filesystem_for
from storage.parquet_sink import MANIFEST_DIR, ManifestBehind, ParquetSink, ParquetSinkConfig, parse_file_name
from tests.sink_data import (
    SINK_TYPES,
    assert_lake_equals,
    binance_records,
    drained,
    publish,
    read_local,
    relabel,
    row_count,
    run_until_drained,
    stream_last_seq,
)
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port


def _lake_files(lake: Path, record_type: str) -> list[Path]:
    return sorted((lake / record_type).glob("venue=*/date=*/*.parquet"))


def _manifest(lake: Path, consumer: str) -> dict[str, Any]:
    return json.loads((lake / MANIFEST_DIR / f"{consumer}.json").read_text())


def _config(url: str, lake: Path | str, venue: str, **overrides: Any) -> ParquetSinkConfig:
    settings: dict[str, Any] = {"consumer": f"pq-{venue}", "flush_rows": 4000, "flush_age_s": 0.3, "ack_wait_s": 2.0,
                                "retry_s": 0.2, **overrides}
    return ParquetSinkConfig(nats_url=url, lake=str(lake), **settings)


def _parsed(path: Path | str) -> tuple[str, int, int]:
    parsed = parse_file_name(Path(path).name)
    assert parsed is not None, path
    return parsed


async def test_published_records_land_exactly_once(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    # Every other trade a day later: trade envelopes then straddle midnight and must be split.
    trades = [i for i, r in enumerate(records) if r.record_type == "trade"]
    for i in trades[1::2]:
        records[i] = msgspec.structs.replace(records[i], ts_event=records[i].ts_event + NS_PER_DAY)
    await publish(bus.url, records, tmp_path / "spool")
    lake = tmp_path / "lake"
    sink = ParquetSink(_config(bus.url, lake, venue, batch=16, flush_rows=2000))
    await run_until_drained(sink, bus.url)

    assert_lake_equals(read_local(lake), records)
    stream_last = await stream_last_seq(bus.url)
    manifest = _manifest(lake, sink.config.consumer)
    assert manifest["last_seq"] == stream_last == sink.last_seq
    files = {t: _lake_files(lake, t) for t in SINK_TYPES}
    assert sum(map(len, files.values())) == sink.files_written
    flushes = {_parsed(path)[1:] for paths in files.values() for path in paths}
    assert len(flushes) >= 3, "flush_rows=2000 spreads the 13k rows over several flushes"
    folders = {(t, p.parent.name) for t, paths in files.items() for p in paths}
    assert folders == {(r.record_type, f"date={day_of(r.ts_event)}") for r in records}
    assert {day for t, day in folders if t == "trade"} == {"date=2021-07-22", "date=2021-07-23"}
    last_flush = set()
    for record_type, paths in files.items():
        for path in paths:
            metadata = pq.read_schema(path).metadata
            consumer, first_seq, last_seq = _parsed(path)
            assert metadata[b"ticklake.consumer"].decode() == consumer == sink.config.consumer
            assert int(metadata[b"ticklake.first_seq"]) == first_seq <= last_seq == int(metadata[b"ticklake.last_seq"])
            assert last_seq <= stream_last
            if last_seq == stream_last:
                last_flush.add(str(path.relative_to(lake)))
            table = pq.read_table(path)
            assert table.schema.equals(schema_for(record_type), check_metadata=False)
            assert table.schema.field("ts_event").type == pa.timestamp("ns", tz="UTC")
            keys = list(zip(table.column("instrument").to_pylist(),
                            table.column("ts_event").cast(pa.int64()).to_pylist(), strict=True))
            assert keys == sorted(keys), f"{path} is not sorted by (instrument, ts_event)"
            assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert set(manifest["files"]) == last_flush
    assert not list(lake.rglob("*.tmp"))

    labels = {"consumer": sink.config.consumer}
    assert sink.rows_written == row_count(records)
    assert REGISTRY.get_sample_value("ticklake_sink_rows_written_total", labels) == row_count(records)
    assert REGISTRY.get_sample_value("ticklake_sink_files_written_total", labels) == sink.files_written
    assert REGISTRY.get_sample_value("ticklake_sink_last_seq", labels) == stream_last
    # every message's bus-to-durable time observed once, none of them negative or absurd
    assert REGISTRY.get_sample_value("ticklake_sink_bus_to_durable_seconds_count", labels) == stream_last
    assert 0 < REGISTRY.get_sample_value("ticklake_sink_bus_to_durable_seconds_sum", labels) < 60 * stream_last
    assert sink.skipped == sink.dead_letters == 0


class _Crash(Exception):
    pass


class _CrashBeforeManifest(ParquetSink):
    """Dies after writing a flush's files and before its manifest (the second flush's: so the
    manifest already records progress, and most messages are not delivered yet), as a kill -9
    there would."""

    def __init__(self, config: ParquetSinkConfig) -> None:
        super().__init__(config)
        self.manifests = 0
        self.orphans: list[str] = []

    def _write_manifest(self, last_seq: int, files: list[str]) -> None:
        self.manifests += 1
        if self.manifests == 2:
            self.orphans = files
            raise _Crash("crash before the manifest")
        super()._write_manifest(last_seq, files)


async def test_crash_before_manifest_rewrites_without_duplicates(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    lake = tmp_path / "lake"
    crashing = _CrashBeforeManifest(_config(bus.url, lake, venue, batch=8, flush_rows=1))
    with pytest.raises(_Crash):
        await asyncio.wait_for(crashing.run(asyncio.Event()), 30)
    assert crashing.orphans and all((lake / p).exists() for p in crashing.orphans)
    committed = _manifest(lake, crashing.config.consumer)["last_seq"]
    assert committed == crashing.last_seq > 0
    assert all(_parsed(p)[1] > committed for p in crashing.orphans)

    # A flush after every fetch of at most 4 messages: the rewritten files get other names, so the
    # orphans' absence below shows they were deleted, not overwritten. The successor is handed
    # the unfinished flush's messages before the newer, never delivered ones.
    successor = ParquetSink(_config(bus.url, lake, venue, batch=4, flush_rows=1))
    await run_until_drained(successor, bus.url)
    assert not any((lake / p).exists() for p in crashing.orphans)
    assert successor.skipped == 0
    assert crashing.rows_written + successor.rows_written == row_count(records)
    assert_lake_equals(read_local(lake), records)


class _CrashBeforeAck(ParquetSink):
    """Dies after the manifest and before acknowledging the flush's messages."""

    unacked = 0

    async def _acknowledge(self, messages: list[Msg]) -> None:
        self.unacked = len(messages)
        raise _Crash("crash before the acks")


async def test_crash_between_manifest_and_ack_writes_nothing_twice(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    lake = tmp_path / "lake"
    config = _config(bus.url, lake, venue, batch=64, flush_rows=3000, ack_wait_s=1.0)
    crashing = _CrashBeforeAck(config)
    with pytest.raises(_Crash):
        await asyncio.wait_for(crashing.run(asyncio.Event()), 30)
    assert crashing.unacked > 0 and crashing.rows_written >= 3000
    assert _manifest(lake, config.consumer)["last_seq"] == crashing.last_seq

    successor = ParquetSink(config)
    await run_until_drained(successor, bus.url)
    assert successor.skipped == 0, "the successor starts after the manifest: the flush is not delivered again"
    assert crashing.rows_written + successor.rows_written == row_count(records)
    assert_lake_equals(read_local(lake), records)


class _LosesADelivery(ParquetSink):
    """Its subscription drops the 5th message it receives, as a connection lost mid-delivery would
    (the server redelivers it only after the ack wait, behind newer messages)."""

    async def _subscribe(self, js: JetStreamContext, stop: asyncio.Event, max_ack_pending: int,
                         previous: JetStreamContext.PullSubscription | None = None
                         ) -> JetStreamContext.PullSubscription | None:
        subscription = await super()._subscribe(js, stop, max_ack_pending, previous)
        if subscription is not None and previous is None:
            fetch, received = subscription.fetch, 0

            async def lossy_fetch(batch: int, timeout: float) -> list[Msg]:
                nonlocal received
                messages = await fetch(batch, timeout=timeout)
                kept = [m for i, m in enumerate(messages, start=received + 1) if i != 5]
                received += len(messages)
                return kept

            subscription.fetch = lossy_fetch  # type: ignore[method-assign,assignment]
        return subscription


async def test_a_delivery_lost_in_flight_is_not_skipped_later(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    await publish(bus.url, records, tmp_path / "spool")
    lake = tmp_path / "lake"
    sink = _LosesADelivery(_config(bus.url, lake, venue, batch=4, flush_rows=1, ack_wait_s=1.0))
    await run_until_drained(sink, bus.url)
    assert sink.resyncs == 1, "the missing delivery was noticed by the next one"
    assert_lake_equals(read_local(lake), records)


async def test_a_lost_manifest_stops_the_sink_instead_of_deleting(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records()[::7])
    await publish(bus.url, records, tmp_path / "spool")
    lake = tmp_path / "lake"
    config = _config(bus.url, lake, venue)
    await run_until_drained(ParquetSink(config), bus.url)
    files = sorted(lake.glob("*/venue=*/date=*/*.parquet"))
    (lake / MANIFEST_DIR / f"{config.consumer}.json").unlink()
    with pytest.raises(ManifestBehind, match="acknowledged messages up to"):
        await asyncio.wait_for(ParquetSink(config).run(asyncio.Event()), 30)
    assert sorted(lake.glob("*/venue=*/date=*/*.parquet")) == files
    assert_lake_equals(read_local(lake), records)


async def test_poison_envelope_is_dead_lettered(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records()[::7])  # a sample holding every type
    half = len(records) // 2
    await publish(bus.url, records[:half], tmp_path / "spool")
    client = await nats.connect(bus.url)
    js = client.jetstream()
    await js.publish(f"ticks.trade.{venue}.x", b"\x01\x01\x01not msgpack")
    await js.publish(f"ticks.bbo.{venue}.x", b"\x01\x02\x03not arrow")
    await client.close()
    await publish(bus.url, records[half:], tmp_path / "spool2")
    lake = tmp_path / "lake"
    sink = ParquetSink(_config(bus.url, lake, venue))
    await run_until_drained(sink, bus.url)
    assert sink.dead_letters == 2
    assert REGISTRY.get_sample_value("ticklake_sink_dead_letters_total", {"consumer": sink.config.consumer}) == 2
    assert_lake_equals(read_local(lake), records)
    assert _manifest(lake, sink.config.consumer)["last_seq"] == await stream_last_seq(bus.url)

    client = await nats.connect(bus.url)
    sub = await client.jetstream().pull_subscribe(f"deadletter.{sink.config.consumer}", durable=None,
                                                  stream="DEADLETTER")
    letters = await sub.fetch(10, timeout=2)
    await client.close()
    assert sorted((m.headers["Ticklake-Subject"], m.headers["Ticklake-Reason"], m.data)  # type: ignore[index]
                  for m in letters) == [
        (f"ticks.bbo.{venue}.x", "malformed bbo Arrow body: Expected to read 544501614 metadata bytes, but only "
         "read 5", b"\x01\x02\x03not arrow"),
        (f"ticks.trade.{venue}.x", "malformed trade msgpack body: Expected `array`, got `int`",
         b"\x01\x01\x01not msgpack"),
    ]


async def test_nats_restart_mid_run_loses_nothing(bus: EmbeddedNats, tmp_path: Path) -> None:
    venue, records = relabel(binance_records())
    half = len(records) // 2
    await publish(bus.url, records[:half], tmp_path / "spool")
    lake = tmp_path / "lake"
    sink = ParquetSink(_config(bus.url, lake, venue, batch=32, flush_rows=2000))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        while sink.rows_written == 0:
            assert not task.done()
            await asyncio.sleep(0.01)
        await asyncio.to_thread(bus.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(bus.start)
        await publish(bus.url, records[half:], tmp_path / "spool2")
        await drained(bus.url, sink.config.consumer, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert_lake_equals(read_local(lake), records)


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadedMotoServer, str]]:
    """A local S3 (moto's server, in this process) and its host:port."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield server, f"127.0.0.1:{port}"
    server.stop()


async def test_s3_lake_survives_an_outage(bus: EmbeddedNats, tmp_path: Path,
                                          s3_endpoint: tuple[ThreadedMotoServer, str]) -> None:
    server, endpoint = s3_endpoint
    lake = f"s3://ticklake-test/lake?endpoint_override={endpoint}&scheme=http"
    s3, root = filesystem_for(lake)
    fs.S3FileSystem(endpoint_override=endpoint, scheme="http", allow_bucket_creation=True).create_dir("ticklake-test")
    venue, records = relabel(binance_records())
    half = len(records) // 2
    await publish(bus.url, records[:half], tmp_path / "spool")
    sink = ParquetSink(_config(bus.url, lake, venue, flush_rows=3000))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        while sink.rows_written == 0:
            assert not task.done()
            await asyncio.sleep(0.01)
        server.stop()
        await publish(bus.url, records[half:], tmp_path / "spool2")
        async with asyncio.timeout(60):
            while sink.write_retries == 0:  # a flush failed (after the S3 client's own retries)
                assert not task.done()
                await asyncio.sleep(0.05)
        assert sink.rows_written < row_count(records)
        server.start()
        await drained(bus.url, sink.config.consumer, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    def read_s3(record_type: str) -> pl.DataFrame:
        dataset = ds.dataset(f"{root}/{record_type}", filesystem=s3, format="parquet", partitioning="hive")
        return pl.from_arrow(dataset.to_table())  # type: ignore[return-value]

    assert_lake_equals(read_s3, records)
    with s3.open_input_stream(f"{root}/{MANIFEST_DIR}/{sink.config.consumer}.json") as stream:
        assert json.loads(stream.read())["last_seq"] == await stream_last_seq(bus.url) == sink.last_seq
    assert REGISTRY.get_sample_value("ticklake_sink_write_retries_total", {"consumer": sink.config.consumer}) == (
        sink.write_retries)
    names = [i.base_name for i in s3.get_file_info(fs.FileSelector(root, recursive=True))]
    assert sum(name.endswith(".parquet") for name in names) == sink.files_written
    assert not [name for name in names if name.endswith(".tmp")]
