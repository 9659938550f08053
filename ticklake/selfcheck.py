"""`ticklake selfcheck`: one record of every type, with awkward values, through every hop.

codec -> JetStream (a scratch stream, deleted after) -> decode -> Timescale (temporary tables
shaped LIKE the real hypertables, rolled back) and Parquet (a scratch lake) -> read back ->
compared value by value with what was sent. Nothing it writes outlives the check.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import polars as pl
import pyarrow as pa

from normalize import codec
from normalize.arrow_schema import schema_for, to_arrow
from normalize.flags import Flag
from normalize.records import (
    Bbo,
    BookDelta,
    BookDeltas,
    BookTop,
    FeedStatus,
    Funding,
    Instrument,
    Liquidation,
    MarkIndex,
    OpenInterest,
    OptionSummary,
    Record,
    Trade,
    pack_levels,
)
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import filesystem_for, write_atomic
from storage.pg import connect
from storage.timescale_rows import copy_table, create_scratch_table, read_table
from ticklake.bus_auth import connect as bus_connect

_TS = 1_721_687_141_062_170_123  # 2024-07-22, with nanoseconds that microsecond storage would lose


class _Common(TypedDict):
    venue: str
    symbol: str
    instrument: str


class _Plain(_Common):
    ts_event: int
    ts_recv: int
    ts_exch: int | None
    exch_seq: int | None


_COMMON = _Common(venue="binance-usdm", symbol="BTCUSDT", instrument="BTC-USDT-PERP")


def example_records() -> list[Record]:
    """One record per type; decimals chosen to expose float formatting and rounding mistakes."""
    plain = _Plain(**_COMMON, ts_event=_TS, ts_recv=_TS, ts_exch=None, exch_seq=None)
    return [
        Trade(**_COMMON, ts_event=_TS, ts_recv=_TS + 1_270, ts_exch=_TS + 3, exch_seq=2**62, flags=Flag.LAST,
              price=65432.1, size=0.001, side=-1, trade_id="5933014251"),
        BookDelta(**_COMMON, ts_event=_TS, ts_recv=_TS + 9, ts_exch=None, exch_seq=123,
                  flags=Flag.SNAPSHOT | Flag.LAST, side=1, price=0.1, size=0.0, size_native=None),
        Bbo(**plain, flags=0, bid_price=65432.0, bid_size=1.5e-8, ask_price=None, ask_size=None),
        Funding(**plain, flags=0, funding_rate=-0.00012345, predicted_rate=0.0001, interval_s=28_800,
                next_funding_ts=_TS + 1, mark_price=65432.19, index_price=None),
        MarkIndex(**plain, flags=0, mark_price=65432.19, index_price=65430.55, estimated_settle_price=65431.0),
        OpenInterest(**plain, flags=Flag.FROM_REST, open_interest=81234.567),
        Liquidation(**plain, flags=Flag.SAMPLED, price=64000.5, size=0.014, side=1, order_side=-1),
        Instrument(**plain, flags=Flag.FROM_REST, kind="perpetual", base="BTC", quote="USDT", settle="USDT",
                   inverse=False, contract_size=1.0, tick_size=0.1, lot_size=0.001, min_size=0.001,
                   funding_interval_s=28_800, status="TRADING"),
        FeedStatus(venue="binance-usdm", symbol="", instrument="", ts_event=_TS, ts_recv=_TS, ts_exch=None,
                   exch_seq=None, flags=0, event="gap", connection_id="c-1", detail="pu 11 != previous u 10",
                   seq_from=10, seq_to=12),
        BookTop(**_COMMON, ts_event=_TS, ts_recv=_TS + 77, ts_exch=None, exch_seq=5_123_107_853_551,
                flags=Flag.DERIVED | Flag.LAST, side=-1, level=20, price=65433.9, size=0.007),
        OptionSummary(venue="deribit", symbol="BTC-25MAR22-60000-C", instrument="BTC-USD-20220325-60000-C",
                      ts_event=_TS, ts_recv=_TS, ts_exch=None, exch_seq=None, flags=Flag.LAST, mark_price=0.03847784,
                      mark_iv=0.6321, bid_iv=None, ask_iv=0.669, underlying_price=9440.73, underlying="BTC-25MAR22",
                      delta=0.62959, gamma=0.00058, vega=3.88497, theta=-28.34113, rho=0.66242, interest_rate=0.0),
    ]


def example_book_message() -> BookDeltas:
    """A packed depth message as handlers emit it: two bids (one deleted) and an ask."""
    return BookDeltas(**_COMMON, ts_event=_TS, ts_recv=_TS + 9, ts_exch=_TS + 4, exch_seq=5_123_107_853_551,
                      flags=0, bids=pack_levels([(65432.1, 0.003), (65432.0, 0.0)]),
                      asks=pack_levels([(65432.2, 1.234)]))


@dataclass
class Report:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def check(self, what: str, expected: pa.Table, actual: pa.Table) -> None:
        same = actual.sort_by("ts_recv").equals(expected.sort_by("ts_recv"))
        self.ok &= same
        self.lines.append(f"{'ok  ' if same else 'FAIL'} {what}")


async def _through_jetstream(nats_url: str, payloads: list[bytes]) -> list[bytes]:
    client = await bus_connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    name = f"TICKLAKE_SELFCHECK_{uuid.uuid4().hex[:8].upper()}"
    subject = f"selfcheck.{name.lower()}"
    js = client.jetstream()
    try:
        await js.add_stream(name=name, subjects=[subject])
        for payload in payloads:
            await js.publish(subject, payload)
        subscription = await js.pull_subscribe(subject, durable=None, stream=name)
        received: list[bytes] = []
        while len(received) < len(payloads):
            for message in await subscription.fetch(len(payloads) - len(received), timeout=5):
                received.append(message.data)
                await message.ack()
        return received
    finally:
        await js.delete_stream(name)
        await client.close()


def run_selfcheck(pg_dsn: str, nats_url: str, home: Path, keep: bool = False) -> Report:
    report = Report()
    records = example_records()
    sent = {r.record_type: to_arrow([r]) for r in records}
    for encoding in (codec.Encoding.MSGPACK, codec.Encoding.ARROW):
        payloads = [codec.encode([r], encoding) for r in records]
        received = asyncio.run(_through_jetstream(nats_url, payloads))
        for payload in received:
            record_type, table = codec.decode_arrow(payload)
            report.check(f"{record_type:<13} codec {encoding.name.lower()} via JetStream", sent[record_type], table)
    packed = example_book_message()
    [payload] = asyncio.run(_through_jetstream(nats_url, [codec.encode([packed])]))
    report.check("book_delta    codec packed via JetStream", to_arrow([packed]), codec.decode_arrow(payload)[1])

    with connect(pg_dsn) as conn, conn.transaction(force_rollback=True):
        for record_type, table in sent.items():
            create_scratch_table(conn, record_type)
            with conn.cursor() as cursor:
                copy_table(cursor, record_type, table)
            report.check(f"{record_type:<13} TimescaleDB round trip", table, read_table(conn, record_type))

    lake = Path(tempfile.mkdtemp(prefix="selfcheck-lake-", dir=home))
    filesystem, root = filesystem_for(str(lake))
    try:
        for record_type, table in sent.items():
            for (venue, day), part in split_partitions(table).items():
                write_atomic(filesystem, f"{partition_path(root, record_type, venue, day)}/part-0.parquet",
                             part, record_type)
            frame = pl.scan_parquet(f"{lake}/{record_type}/**/*.parquet", hive_partitioning=True)
            back = frame.drop(["date"]).collect().to_arrow().select(schema_for(record_type).names)
            back = back.cast(schema_for(record_type))
            report.check(f"{record_type:<13} Parquet lake round trip (polars)", table, back)
    finally:
        if keep:
            report.lines.append(f"scratch lake kept at {lake}")
        else:
            shutil.rmtree(lake)
    report.lines.append("selfcheck passed" if report.ok else "selfcheck FAILED")
    return report
