"""Timescale sink throughput and latency, against raw binary COPY (the limit) and executemany INSERT.

One run, same records, real servers: a throwaway EmbeddedPostgres (TimescaleDB, migrated, with
`track_commit_timestamp` on) and an EmbeddedNats, each in a temp dir on a free port, stopped at
the end. Records are the real Binance USD-M trades bundled in ticklake/recordings (35,480: BTCUSDT and
ETHUSDT `@trade` from the two hftbacktest captures, four symbols' `aggTrade` from the cryptofeed
one), merged by receive time and cycled to N. Copy k of a trade gets ts_event + k ns and
trade_id + k * 10^12, so keys stay distinct and JetStream's duplicate window (message ids hash
the content) drops nothing; every variant has a venue id of its own (`bench<run>-<variant>`),
hence its own subjects; `trade` is TRUNCATEd before each variant.

Variants (rows/s, and the ratio to raw COPY):
* raw COPY: `storage.timescale_rows.copy_table` of Arrow tables (built beforehand), one
  transaction per `sink batch x envelope size` rows: what the sink commits when a fetch comes
  back full. Also at the sink's observed mean commit size, after the full path.
* psycopg write_row: plain `cursor.copy(... FORMAT BINARY)` + `write_row` of prebuilt tuples.
* server only: the same rows as pre-encoded COPY BINARY bytes (taken back with COPY TO),
  `copy.write`: what PostgreSQL absorbs with no client-side encoding at all.
* executemany INSERT: the naive peer baseline (psycopg 3 runs it pipelined), on fewer rows.
* publisher alone: Publisher.submit of everything, as fast as possible, until JetStream acked all.
* sink alone: the sink started on that backlog (from `run()` to the last commit).
* full path: the sink running and waiting, then everything published as fast as possible; rate
  = N / (first submit to the commit of the last row).
* latency: records submitted at a steady rate (small batches every `--tick-ms`, ts_recv =
  time.time_ns() at submit) for S seconds; per row, latency = commit time - ts_recv.

The sink runs in a subprocess (this module with `--sink-worker`): it COPYs with synchronous
psycopg inside its event loop, so in the publisher's process every commit would stall the
publisher and the pacing; in production they are separate processes too, and this way the
second core is used. Both share the 2 cores with PostgreSQL and nats-server.

Commit times come from PostgreSQL itself (`pg_xact_commit_timestamp(xmin)` of every row; the
last commit of a throughput variant is that of the consumer's offset row), so nothing is added
to the sink's hot path. The stamp is taken just before the commit's WAL flush; as a cross-check
the sink subclass notes time.time_ns() on entering and leaving each `_write` (two clock reads a
batch), and the gap from the stamp to `_write`'s return (acks included) is printed. The latency
is split at the time JetStream stored each envelope (read back afterwards from the ack metadata
of an ephemeral consumer): submit -> stored is the publisher's batching (max_delay_s) and the
publish; stored -> committed is the sink, itself split at `_write`'s entry into waiting (the
fetch, or the previous batch still being written) and writing. `--profile-sink FILE` runs the
full path's sink under cProfile and prints the top functions. Run:
`python -m benchmarks.bench_sink [--records N] [--rate R] [--seconds S] [--sink-batch B]
[--max-records M] [--max-delay-s D] [--fetch-timeout-s F]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import nats
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig
from psycopg import sql

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from ingest.publisher import BusConfig, Publisher
from normalize import codec
from normalize.arrow_schema import to_arrow
from normalize.records import Trade
from storage.ddl import table_columns
from storage.migrate import migrate
from storage.timescale_rows import COPY_TYPES as PG_COPY_TYPES
from storage.timescale_rows import copy_table, time_value
from storage.timescale_sink import SinkConfig, TimescaleSink
from ticklake.recordings import RECORDINGS
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
DATA = RECORDINGS / "binance_usdm"
TRADE_CAPTURES = (
    DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz",
    DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.ethusdt_20240808.hftbacktest.gz",
    DATA / "ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt",
)
STREAM = "TICKS"
COLUMNS = [name for name, _, _ in table_columns("trade")]
COPY_TYPES = [PG_COPY_TYPES[pg_type] for _, pg_type, _ in table_columns("trade")]
COPY_IN = sql.SQL("COPY trade ({}) FROM STDIN (FORMAT BINARY)").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
COMMIT_NS = "(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000000)::bigint"


# --- records ---------------------------------------------------------------------------------

def load_trades() -> list[Trade]:
    """Every real trade in the bundled captures, merged by receive time."""
    trades: list[Trade] = []
    for path in TRADE_CAPTURES:
        frames = [f for f in read_capture(path)
                  if f.kind == "ws" and (b'"e":"trade"' in f.payload or b'"e":"aggTrade"' in f.payload)]
        out, _ = normalize_frames("binance-usdm", frames)
        trades += [r for r in out.records if isinstance(r, Trade)]
    return sorted(trades, key=lambda r: r.ts_recv)


def cycled(base: Sequence[Trade], n: int, venue: str) -> list[Trade]:
    """n records: copy k of each base trade has ts_event + k ns and trade_id + k * 10^12."""
    replace = msgspec.structs.replace
    out = []
    for i in range(n):
        k, j = divmod(i, len(base))
        r = base[j]
        out.append(replace(r, venue=venue, ts_event=r.ts_event + k, trade_id=str(int(r.trade_id) + k * 10**12)))
    return out


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))]


# --- direct writes ---------------------------------------------------------------------------

def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE trade")


def bench_copy_table(dsn: str, records: Sequence[Trade], txn_rows: int) -> float:
    tables = [to_arrow(part) for part in chunks(records, txn_rows)]
    truncate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for table in tables:
            with conn.transaction(), conn.cursor() as cursor:
                copy_table(cursor, "trade", table)
        return time.perf_counter() - start


def table_rows(records: Sequence[Trade]) -> list[tuple[object, ...]]:
    """Rows as the table holds them: the contract's columns, then `time` (binary COPY's int8)."""
    return [(*msgspec.structs.astuple(r), time_value(r.ts_event)) for r in records]


def bench_write_row(dsn: str, records: Sequence[Trade], txn_rows: int) -> float:
    parts = [table_rows(part) for part in chunks(records, txn_rows)]
    truncate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for part in parts:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(COPY_IN) as copy:
                copy.set_types(COPY_TYPES)
                for row in part:
                    copy.write_row(row)
        return time.perf_counter() - start


def bench_server_only(dsn: str, rows: int, txn_rows: int) -> float:
    """COPY the rows already in `trade` back out as binary, one stream per transaction, and time
    writing those bytes in again."""
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    payloads = []
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        for offset in range(0, rows, txn_rows):
            query = sql.SQL("COPY (SELECT {} FROM trade ORDER BY ts_event, trade_id LIMIT {} OFFSET {}) "
                            "TO STDOUT (FORMAT BINARY)").format(columns, txn_rows, offset)
            with cursor.copy(query) as copy:
                payloads.append(b"".join(bytes(block) for block in copy))
    truncate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for payload in payloads:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(COPY_IN) as copy:
                copy.write(payload)
        return time.perf_counter() - start


def bench_executemany(dsn: str, records: Sequence[Trade], txn_rows: int) -> float:
    parts = [[(*msgspec.structs.astuple(r), r.ts_event) for r in part] for part in chunks(records, txn_rows)]
    statement = sql.SQL("INSERT INTO trade ({}) VALUES ({}, ticklake_ts(%s))").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.SQL(", ").join(sql.Placeholder() * (len(COLUMNS) - 1)))
    truncate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for part in parts:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, part)
        return time.perf_counter() - start


def count_rows(dsn: str, venue: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM trade WHERE venue = %s", (venue,)).fetchone()
        return int(row[0]) if row else 0


# --- the sink, in a subprocess ---------------------------------------------------------------

class TimedSink(TimescaleSink):
    """The real sink; for each `_write` that wrote rows, notes (time.time_ns() after it, rows,
    messages, time.time_ns() on entry): two clock reads per batch, nothing per row."""

    def __init__(self, config: SinkConfig) -> None:
        super().__init__(config)
        self.commits: list[tuple[int, int, int, int]] = []

    async def _write(self, js, conn, messages) -> None:  # type: ignore[no-untyped-def]
        before, entered = self.rows_written, time.time_ns()
        await super()._write(js, conn, messages)
        if self.rows_written > before:
            self.commits.append((time.time_ns(), self.rows_written - before, len(messages), entered))


async def _sink_worker(spec: dict[str, Any]) -> None:
    sink = TimedSink(SinkConfig(nats_url=spec["nats_url"], pg_dsn=spec["pg_dsn"], consumer=spec["consumer"],
                                filter_subject=spec["filter_subject"], batch=spec["batch"],
                                fetch_timeout_s=spec["fetch_timeout_s"]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    profiler = cProfile.Profile() if spec["profile"] else None
    cpu_start, started_ns = time.process_time(), time.time_ns()
    if profiler is not None:
        profiler.enable()
    await sink.run(stop)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    Path(spec["stats"]).write_text(json.dumps({
        "started_ns": started_ns, "cpu_s": time.process_time() - cpu_start, "rows": sink.rows_written,
        "commits": sink.commits,
    }))


class SinkProcess:
    """A TimescaleSink in its own process: started (imports, config), then told to go, then stopped."""

    def __init__(self, root: Path, nats_url: str, pg_dsn: str, venue: str, args: argparse.Namespace,
                 profile: Path | None = None) -> None:
        self.stats = root / f"sink-{venue}.json"
        self.consumer = f"sink-{venue}"
        spec = {"nats_url": nats_url, "pg_dsn": pg_dsn, "consumer": self.consumer,
                "filter_subject": f"ticks.trade.{venue}.>", "batch": args.sink_batch,
                "fetch_timeout_s": args.fetch_timeout_s, "stats": str(self.stats),
                "profile": str(profile) if profile else ""}
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_sink", "--sink-worker", json.dumps(spec)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready", "sink did not start"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if self.proc.returncode != 0:
            raise RuntimeError(f"sink worker exited with {self.proc.returncode}")
        return json.loads(self.stats.read_text())  # type: ignore[no-any-return]


async def wait_consumer(js: nats.js.JetStreamContext, consumer: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.consumer_info(STREAM, consumer)
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"consumer {consumer} not created")


async def wait_committed(dsn: str, consumer: str, last_seq: int, timeout_s: float) -> int:
    """Poll the consumer's offset row until it reaches last_seq; returns that commit's time (ns)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(f"SELECT last_seq, {COMMIT_NS} FROM ticklake_sink_offsets WHERE consumer = %s",
                               (consumer,)).fetchone()
            if row is not None and row[0] >= last_seq:
                return int(row[1])
            await asyncio.sleep(0.01)
    raise TimeoutError(f"sink {consumer} did not commit up to stream sequence {last_seq} in {timeout_s} s")


async def publish_all(publisher: Publisher, records: Sequence[Trade], chunk: int = 10_000) -> None:
    for part in chunks(records, chunk):
        publisher.submit(part)
        await asyncio.sleep(0)


# --- the bench -------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, pg: EmbeddedPostgres, bus: EmbeddedNats) -> None:
        self.args, self.root, self.pg, self.bus = args, root, pg, bus
        self.run_id = uuid.uuid4().hex[:6]

    def venue(self, variant: str) -> str:
        return f"bench{self.run_id}-{variant}"

    def bus_config(self) -> BusConfig:
        return BusConfig(self.bus.url, stream=STREAM, max_records=self.args.max_records,
                         max_delay_s=self.args.max_delay_s)

    async def last_stream_seq(self) -> int:
        client = await nats.connect(self.bus.url)
        try:
            return int((await client.jetstream().stream_info(STREAM)).state.last_seq)
        finally:
            await client.close()

    async def publisher(self, variant: str) -> Publisher:
        publisher = Publisher(self.bus_config(), self.root / f"spool-{variant}")
        await publisher.start()
        return publisher

    async def sink_started(self, variant: str, profile: Path | None = None) -> SinkProcess:
        """A sink process told to go, with its consumer created (so it is waiting for messages)."""
        sink = SinkProcess(self.root, self.bus.url, self.pg.dsn, self.venue(variant), self.args, profile)
        sink.go()
        client = await nats.connect(self.bus.url)
        try:
            await wait_consumer(client.jetstream(), sink.consumer)
        finally:
            await client.close()
        return sink

    async def publisher_then_sink(self, base: Sequence[Trade], n: int, handlers: int = 1) -> dict[str, Any]:
        """Publish everything with no sink running, then start one on the backlog. With two handlers
        every record is published twice, in envelopes cut elsewhere (as two redundant handlers'
        are), so JetStream keeps both and the sink drops the second copies by key."""
        variant = "backlog" if handlers == 1 else f"backlog{handlers}"
        venue = self.venue(variant)
        records = cycled(base, n, venue)
        truncate(self.pg.dsn)
        start = time.perf_counter()
        for handler in range(handlers):
            config = self.bus_config()
            config.max_records -= 7 * handler
            publisher = Publisher(config, self.root / f"spool-{variant}-{handler}")
            await publisher.start()
            await publish_all(publisher, records)
            await publisher.close()
            assert publisher.acked_records == n, f"published {publisher.acked_records} of {n}"
        published_s = time.perf_counter() - start
        target = await self.last_stream_seq()
        sink = SinkProcess(self.root, self.bus.url, self.pg.dsn, venue, self.args)
        sink.go()
        try:
            end_ns = await wait_committed(self.pg.dsn, sink.consumer, target, timeout_s=600)
        finally:
            stats = sink.stop()
        assert count_rows(self.pg.dsn, venue) == n
        return {"publish_s": published_s, "sink_s": (end_ns - stats["started_ns"]) / 1e9, "stats": stats}

    async def full_path(self, base: Sequence[Trade], n: int, profile: Path | None) -> dict[str, Any]:
        venue = self.venue("full")
        records = cycled(base, n, venue)
        truncate(self.pg.dsn)
        publisher = await self.publisher("full")
        sink = await self.sink_started("full", profile)
        try:
            start_ns = time.time_ns()
            await publish_all(publisher, records)
            await publisher.close()
            published_ns = time.time_ns()
            assert publisher.acked_records == n and not publisher.spool.depth, "publisher did not deliver all"
            target = await self.last_stream_seq()
            end_ns = await wait_committed(self.pg.dsn, sink.consumer, target, timeout_s=300)
        finally:
            stats = sink.stop()
        assert count_rows(self.pg.dsn, venue) == n
        return {"s": (end_ns - start_ns) / 1e9, "publish_s": (published_ns - start_ns) / 1e9, "stats": stats}

    async def stored_ns(self, venue: str, envelopes: int) -> dict[str, int]:
        """trade_id -> the time JetStream stored its envelope (read back with an ephemeral consumer)."""
        client = await nats.connect(self.bus.url)
        stored: dict[str, int] = {}
        try:
            subscription = await client.jetstream().pull_subscribe(
                f"ticks.trade.{venue}.>", stream=STREAM, config=ConsumerConfig(ack_policy=AckPolicy.NONE))
            seen = 0
            while seen < envelopes:
                for message in await subscription.fetch(512, timeout=5):
                    at = int(message.metadata.timestamp.timestamp() * 1e9)
                    stored.update((r.trade_id, at) for r in codec.decode(message.data)[1])  # type: ignore[attr-defined]
                    seen += 1
        finally:
            await client.close()
        return stored

    async def latency(self, base: Sequence[Trade]) -> dict[str, Any]:
        args = self.args
        venue = self.venue("latency")
        total = int(args.rate * args.seconds)
        records = cycled(base, total, venue)
        truncate(self.pg.dsn)
        publisher = await self.publisher("latency")
        sink = await self.sink_started("latency")
        replace = msgspec.structs.replace
        try:
            sent, tick = 0, args.tick_ms / 1000
            start = time.perf_counter()
            while sent < total:
                due = min(total, int((time.perf_counter() - start) * args.rate))
                if due > sent:
                    now = time.time_ns()
                    publisher.submit([replace(r, ts_recv=now) for r in records[sent:due]])
                    sent = due
                await asyncio.sleep(tick)
            submit_s = time.perf_counter() - start
            await publisher.close()
            assert publisher.acked_records == total and not publisher.spool.depth, "publisher did not deliver all"
            target = await self.last_stream_seq()
            await wait_committed(self.pg.dsn, sink.consumer, target, timeout_s=120)
        finally:
            stats = sink.stop()
        with psycopg.connect(self.pg.dsn, autocommit=True) as conn:
            rows = conn.execute(f"SELECT trade_id, ts_recv, {COMMIT_NS} FROM trade WHERE venue = %s",
                                (venue,)).fetchall()
            txns = conn.execute(f"SELECT {COMMIT_NS} AS c, count(*) FROM trade WHERE venue = %s GROUP BY c ORDER BY c",
                                (venue,)).fetchall()
        assert len(rows) == total, f"{len(rows)} rows committed of {total}"
        stored = await self.stored_ns(venue, publisher.acked_envelopes)
        commits = stats["commits"]
        parts = [("submit -> stored in JetStream", [stored[tid] - recv for tid, recv, _ in rows]),
                 ("stored -> committed", [commit - stored[tid] for tid, _, commit in rows])]
        if [c[1] for c in commits] == [t[1] for t in txns]:  # the sink's batches, matched to its transactions
            entered = {t[0]: c[3] for c, t in zip(commits, txns, strict=True)}
            parts += [("  stored -> sink's _write entered", [entered[commit] - stored[tid] for tid, _, commit in rows]),
                      ("  _write entered -> committed", [commit - entered[commit] for _, _, commit in rows]),
                      ("commit stamp -> _write returned, per commit",
                       [c[0] - t[0] for c, t in zip(commits, txns, strict=True)])]
        return {"rows": total, "rate": total / submit_s, "stats": stats, "envelopes": publisher.acked_envelopes,
                "ms": sorted((commit - recv) / 1e6 for _, recv, commit in rows),
                "parts": [(name, sorted(ns / 1e6 for ns in values)) for name, values in parts]}


def sink_line(name: str, stats: dict[str, Any]) -> str:
    commits = stats["commits"]
    rows = sum(c[1] for c in commits)
    messages = sum(c[2] for c in commits)
    return (f"  {name}: {len(commits):,} commits, {rows / max(1, len(commits)):,.0f} rows and "
            f"{messages / max(1, len(commits)):.1f} envelopes per commit, sink CPU {stats['cpu_s']:.2f} s "
            f"({stats['cpu_s'] * 1e6 / max(1, rows):.1f} us/row)")


async def run(args: argparse.Namespace, bench: Bench) -> None:
    base = load_trades()
    n = args.records
    txn_rows = args.sink_batch * args.max_records
    print(f"{len(base):,} real Binance trades cycled; sink batch {args.sink_batch} envelopes (fetch timeout "
          f"{args.fetch_timeout_s:g} s); envelopes of <= {args.max_records} records / {args.max_delay_s * 1000:g} ms"
          + ("" if args.latency_only else f"; {n:,} rows, direct writes commit every {txn_rows:,} rows"))
    table: list[tuple[str, int, float]] = []
    notes: list[str] = []
    if not args.latency_only:
        direct = cycled(base, n, bench.venue("direct"))
        dsn, best = bench.pg.dsn, args.repeat
        table.append(("raw COPY (copy_table of Arrow)", n,
                      min(bench_copy_table(dsn, direct, txn_rows) for _ in range(best))))
        table.append(("psycopg COPY BINARY write_row", n,
                      min(bench_write_row(dsn, direct, txn_rows) for _ in range(best))))
        table.append(("server only (pre-encoded COPY bytes)", n,
                      min(bench_server_only(dsn, n, txn_rows) for _ in range(best))))
        few = direct[: min(n, args.insert_records)]
        table.append(("executemany INSERT (naive baseline)", len(few),
                      min(bench_executemany(dsn, few, min(txn_rows, len(few))) for _ in range(best))))
        backlog = await bench.publisher_then_sink(base, n)
        table.append(("publisher alone (until all acked)", n, backlog["publish_s"]))
        table.append(("sink alone (on the stream backlog)", n, backlog["sink_s"]))
        twice = await bench.publisher_then_sink(base, n, handlers=2)
        table.append(("sink alone, A/B: each record twice (n unique)", n, twice["sink_s"]))
        full = await bench.full_path(base, n, args.profile_sink)
        table.append(("full path (publish -> JetStream -> sink)", n, full["s"]))
        mean_commit = full["stats"]["rows"] // max(1, len(full["stats"]["commits"]))
        if mean_commit < txn_rows:
            direct = cycled(base, n, bench.venue("direct2"))
            table.append((f"raw COPY, {mean_commit:,} rows/commit (full path's)", n,
                          min(bench_copy_table(dsn, direct, max(1, mean_commit)) for _ in range(best))))
        notes += [f"  full path: everything published (acked) {full['publish_s']:.2f} s after the first submit",
                  sink_line("sink alone", backlog["stats"]), sink_line("sink alone, A/B", twice["stats"]),
                  sink_line("full path", full["stats"])]
        raw = n / table[0][2]
        print(f"\n{'variant':<44}{'rows':>10}{'s':>8}{'rows/s':>12}{'x raw COPY':>12}")
        for name, rows, seconds in table:
            print(f"{name:<44}{rows:>10,}{seconds:>8.2f}{rows / seconds:>12,.0f}{rows / seconds / raw:>12.2f}")
        print("\n".join(notes))
    if args.seconds > 0:
        lat = await bench.latency(base)
        ms = lat["ms"]
        print(f"\nlatency at {args.rate:,.0f} records/s for {args.seconds:g} s (achieved {lat['rate']:,.0f}/s, "
              f"{lat['rows']:,} rows), commit - ts_recv: p50 {pct(ms, 0.5):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, "
              f"p999 {pct(ms, 0.999):.1f} ms, max {ms[-1]:.1f} ms")
        for name, part in lat["parts"]:
            print(f"  {name:<44} p50 {pct(part, 0.5):6.1f} ms, p99 {pct(part, 0.99):6.1f} ms, "
                  f"p999 {pct(part, 0.999):6.1f} ms")
        print(f"  {lat['envelopes']:,} envelopes, {lat['rows'] / lat['envelopes']:.0f} records each on average")
        print(sink_line("latency run", lat["stats"]))
    if args.profile_sink and not args.latency_only:
        print(f"\nsink profile (full path, cProfile, {args.profile_sink}), top by own time:")
        stats = pstats.Stats(str(args.profile_sink))
        stats.sort_stats("tottime").print_stats(args.profile_top)


def start_postgres(pg: EmbeddedPostgres) -> None:
    """Start, turn commit timestamps on (a restart), migrate."""
    pg.start()
    with psycopg.connect(pg.admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
    pg.stop()
    pg.start()
    migrate(pg.dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500_000, help="rows for the throughput variants")
    parser.add_argument("--insert-records", type=int, default=50_000, help="rows for executemany INSERT")
    parser.add_argument("--rate", type=float, default=20_000, help="records/s for the latency run")
    parser.add_argument("--seconds", type=float, default=20, help="length of the latency run (0: skip it)")
    parser.add_argument("--tick-ms", type=float, default=2, help="latency run: submit every this many ms")
    parser.add_argument("--sink-batch", type=int, default=SinkConfig.batch, help="SinkConfig.batch (envelopes)")
    parser.add_argument("--fetch-timeout-s", type=float, default=SinkConfig.fetch_timeout_s,
                        help="SinkConfig.fetch_timeout_s")
    parser.add_argument("--max-records", type=int, default=BusConfig.max_records, help="BusConfig.max_records")
    parser.add_argument("--max-delay-s", type=float, default=BusConfig.max_delay_s, help="BusConfig.max_delay_s")
    parser.add_argument("--repeat", type=int, default=2, help="direct writes: best of this many")
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput variants")
    parser.add_argument("--profile-sink", type=Path, help="cProfile the sink process of the full path to this file")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--sink-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink_worker:
        asyncio.run(_sink_worker(json.loads(args.sink_worker)))
        return
    if args.profile_sink:
        args.profile_sink = args.profile_sink.absolute()
    # Publisher.close() closes its connection, which fires the "lost the bus; spooling" warning; the
    # variants assert that everything was acknowledged and nothing spooled instead.
    logging.getLogger("ingest.publisher").setLevel(logging.ERROR)
    root = Path(tempfile.mkdtemp(prefix="ticklake-bench-sink-", dir="/tmp"))
    os.chmod(root, 0o755)  # the postgres system user must reach its data dir when we run as root
    pg = EmbeddedPostgres(root / "pg", free_port())
    bus = EmbeddedNats(root / "nats", free_port())
    try:
        start_postgres(pg)
        bus.start()
        asyncio.run(run(args, Bench(args, root, pg, bus)))
    finally:
        bus.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
