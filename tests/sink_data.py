"""What the sink tests share: real Binance records under a venue id of the test's own, published
through the real publisher, and a way to run a sink until its consumer has nothing left."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path

import msgspec
import nats
import polars as pl
import psycopg
import pyarrow as pa

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from ingest.publisher import BusConfig, Publisher
from normalize import codec
from normalize.records import Record
from storage.record_keys import once_per_key
from storage.sink_consumer import JetStreamSink
from tests.binance_data import CRYPTOFEED_RUN

SINK_TYPES = ("trade", "bbo", "book_delta", "instrument")


@cache
def binance_records() -> tuple[Record, ...]:
    """The recorded 4-symbol session's records of the types the sinks are tested with (13k rows,
    instrument rows spread over two UTC days)."""
    out, _ = normalize_frames("binance-usdm", read_frames(CRYPTOFEED_RUN))
    return tuple(r for r in out.records if r.record_type in SINK_TYPES)


def relabel(records: tuple[Record, ...] | list[Record]) -> tuple[str, list[Record]]:
    """A venue id of this test's own, so its rows are told apart in shared servers and lakes."""
    venue = f"test-{uuid.uuid4().hex[:8]}"
    return venue, [msgspec.structs.replace(r, venue=venue) for r in records]


def expected_tables(records: list[Record]) -> dict[str, pa.Table]:
    """The rows a sink must store, per record type: the records through the wire codec, so a
    packed message (book levels sharing one header) counts as the rows it stands for, each key
    once (the first copy: a derived BBO of a REST snapshot repeats the one of the diff it
    matches)."""
    groups: dict[tuple[str, type], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.record_type, type(record))].append(record)
    parts: dict[str, list[pa.Table]] = defaultdict(list)
    for (record_type, _), group in groups.items():
        parts[record_type].append(codec.decode_arrow(codec.encode(group))[1])
    return {record_type: once_per_key(pa.concat_tables(tables), record_type) for record_type, tables in parts.items()}


def row_count(records: list[Record]) -> int:
    return sum(table.num_rows for table in expected_tables(records).values())


KEY_COLUMNS = ("instrument", "ts_event", "ts_recv", "exch_seq", "flags")


def record_keys(records: list[Record]) -> list[tuple[object, ...]]:
    """(type, instrument, ts_event ns, ts_recv ns, exch_seq, flags) of every row, sorted (not a
    set): a duplicate row shows up as a difference."""
    keys = []
    for record_type, table in expected_tables(records).items():
        columns = [table.column(c).cast(pa.int64()) if c.startswith("ts_") else table.column(c) for c in KEY_COLUMNS]
        keys += [(record_type, *row) for row in zip(*(c.to_pylist() for c in columns), strict=True)]
    return sorted(keys)


def db_keys(dsn: str, venue: str) -> list[tuple[object, ...]]:
    """What `record_keys` gives, read back from the hypertables for one venue."""
    with psycopg.connect(dsn) as conn:
        rows = []
        for table in SINK_TYPES:
            rows += [(table, *row) for row in conn.execute(
                f"SELECT instrument, ts_event, ts_recv, exch_seq, flags FROM {table} WHERE venue = %s", (venue,))]
        return sorted(rows)


async def stream_last_seq(url: str) -> int:
    client = await nats.connect(url)
    try:
        return (await client.jetstream().stream_info("TICKS")).state.last_seq
    finally:
        await client.close()


async def publish(url: str, records: list[Record], spool: Path, max_records: int = 300) -> None:
    publisher = Publisher(BusConfig(url, max_records=max_records), spool)
    await publisher.start()
    publisher.submit(records)
    await publisher.close()


async def drained(url: str, consumer: str, until: asyncio.Future[None] | None = None, timeout_s: float = 60,
                  condition: Callable[[], bool] = lambda: True) -> None:
    """Wait until the consumer has nothing pending or unacknowledged (everything in the stream
    was written and acknowledged) and `condition` holds; fail if `until` ends first."""
    client = await nats.connect(url)
    js = client.jetstream()
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        while asyncio.get_running_loop().time() < deadline and not (until is not None and until.done()):
            await asyncio.sleep(0.1)
            try:
                info = await js.consumer_info("TICKS", consumer)
            except nats.js.errors.NotFoundError:
                continue
            if info.num_pending == 0 and info.num_ack_pending == 0 and condition():
                return
        raise AssertionError(f"consumer {consumer} not drained within {timeout_s} s")
    finally:
        await client.close()


async def run_until_drained(sink: JetStreamSink, url: str, timeout_s: float = 60, skipped: int = 0) -> None:
    """Run the sink until everything in the stream is written and acknowledged (and it skipped
    `skipped` redeliveries), then stop it cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        await drained(url, sink.settings.consumer, task, timeout_s, lambda: sink.skipped >= skipped)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as the sort key: equal frames are equal row multisets (duplicates count)."""
    return frame.sort(frame.columns, nulls_last=True)


def read_local(lake: Path) -> Callable[[str], pl.DataFrame]:
    """Read a record type as an analyst would (the README's Polars call)."""
    return lambda record_type: pl.read_parquet(f"{lake}/{record_type}/**/*.parquet", hive_partitioning=True)


def assert_lake_equals(read: Callable[[str], pl.DataFrame], records: list[Record]) -> None:
    """The lake holds exactly the rows of `records`, value by value (none missing, none twice),
    each in the folder of its UTC day."""
    expected_by_type = expected_tables(records)
    for record_type in SINK_TYPES:
        back = read(record_type)
        days = back.select(pl.col("ts_event").dt.date().cast(pl.String).alias("day"), pl.col("date").cast(pl.String))
        assert (days["day"] == days["date"]).all(), f"{record_type}: a row is not in its ts_event's day"
        expected = _sorted(pl.from_arrow(expected_by_type[record_type]))  # type: ignore[arg-type]
        got = _sorted(back.drop("date"))
        assert got.height == expected.height, f"{record_type}: {got.height} rows read, {expected.height} published"
        assert got.equals(expected), f"{record_type}: values differ"
