"""End-to-end capacity of one machine: synthetic venue -> `ticklake ingest` -> JetStream -> both sinks.

Everything real, as an operator runs it: a throwaway EmbeddedPostgres (TimescaleDB, migrated,
`track_commit_timestamp` on) and EmbeddedNats in a temp dir on free ports; `ticklake ingest`,
`ticklake sink timescale` and `ticklake sink parquet` as processes; the venue is this process's
ReplayServer playing a synthetic Binance USD-M market (ingest/synthetic), generated before each
step so the venue's own cost is only sending. Every step gets a fresh database, stream, lake and home.

A step plays `--seconds` of a record mix at a target rate (records/s, as rows stored) and then
waits until every stream is drained. It keeps up when every generated trade is stored, the venue
never played more than LATE_S behind schedule (a handler that does not read fills its queue), and
the send-to-queryable latency of the last fifth of the run is not growing (p50 under 1 s and under
twice the second fifth's + 0.2 s). The highest rate kept is searched per mix on a geometric
ladder then bisected:
* trades: aggTrade only;
* depth: depth@0ms diffs and bookTicker (few instruments: a REST snapshot a second syncs books);
* mix: the default channel set (aggTrade, depth@100ms, bookTicker, markPrice@1s, forceOrder),
  a fifth of the messages trades.

Latency: a row's send time is its venue time (`E`, ms) on the venue's playback clock (the wall
clock minus ReplayServer.clock_offset_ns): so up to 1 ms is added by the ms rounding. Queryable
is the row's commit timestamp (`pg_xact_commit_timestamp(xmin)`); durable in the lake is the
modification time of the Parquet file holding it. Rows sent before WARMUP are left out (books
syncing from snapshots). Cost: CPU seconds (psutil, user + system) of each process over the step
(handler, nats-server, each sink, PostgreSQL's processes, the venue) from the first frame played
to the end of the drain, per record stored. Disk:
hypertable_size per row, lake bytes per row, capture bytes per frame, JetStream bytes per record.

Side by side in the same run: raw binary COPY of pre-encoded bytes (server only: the limit for the
Timescale sink) on the trades the trades step stored, and cryptofeed's Binance handler against
ticklake's normalizer on the same synthetic frames (offline, frames/s).

Run: `python -m benchmarks.bench_capacity [--seconds 60] [--plot docs/capacity.png]`; `--quick`
(CI) runs one 4-second step of the realistic mix at a fixed rate and checks the path, not its limits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import nats
import polars as pl
import psutil
import psycopg

from benchmarks.bench_sink import bench_server_only, start_postgres
from ingest.frames import Frame
from ingest.offline import normalize_frames
from ingest.replay_server import ReplayServer
from ingest.synthetic.feed import SyntheticFeed, synthetic_feed
from ingest.synthetic.market import Rates
from ingest.venues.binance_usdm.connection import CHANNELS, BinanceUsdmConnection
from normalize.records import BookDeltas
from storage.migrate import migrate
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

VENUE = "binance-usdm"
TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
TABLES = ("trade", "book_delta", "bbo", "mark_index", "funding", "liquidation", "open_interest", "instrument",
          "feed_status")
RECORD_TABLES = tuple(t for t in TABLES if t not in ("instrument", "feed_status", "open_interest"))
"""The tables whose rows count as records stored: market data (reference data, the journal and the
polled open interest aside)."""
LATE_S = 0.5
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Mix:
    name: str
    channels: tuple[str, ...]
    trades: float
    """Share of the scaled messages that are trades (the rest book diffs)."""
    book: float
    liquidations: float
    """Liquidation messages a second (not scaled)."""
    instruments: int


MIXES = {
    "trades": Mix("trades only", ("aggTrade",), 1.0, 0.0, 0.0, 10),
    "depth": Mix("depth-heavy", ("depth@0ms", "bookTicker"), 0.0, 1.0, 0.0, 4),
    "mix": Mix("realistic mix", CHANNELS, 0.2, 0.8, 1.0, 10),
}
SCALING_MIX = Mix("trades+bbo+marks", ("aggTrade", "bookTicker", "markPrice@1s"), 0.3, 0.7, 0.0, 10)
"""For the instrument curve: no depth channel, so 1,000 books need no snapshots to sync (Binance
allows about two a second) and every instrument's records flow from the first second."""


@dataclass
class Step:
    mix: str
    instruments: int
    target: float
    seconds: float
    frames: int = 0
    records: int = 0
    rate: float = 0.0
    """Records stored per second of playback."""
    trades_expected: int = 0
    trades_stored: int = 0
    max_late_s: float = 0.0
    drained_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    lake_latency_ms: dict[str, float] = field(default_factory=dict)
    p50_by_fifth_ms: list[float] = field(default_factory=list)
    cpu_us: dict[str, float] = field(default_factory=dict)
    """CPU microseconds per stored record, by process group."""
    disk: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    """Resident memory by process group at the end of the step (MiB)."""

    @property
    def kept_up(self) -> bool:
        fifths = self.p50_by_fifth_ms
        growing = len(fifths) == 5 and (fifths[4] > 1000 or fifths[4] > 2 * fifths[1] + 200)
        return (self.trades_stored == self.trades_expected and self.max_late_s <= LATE_S and not growing
                and self.records > 0)


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = EmbeddedPostgres(root / "pg", free_port())
        self.bus = EmbeddedNats(root / "nats", free_port())
        self.steps = 0

    def start(self) -> None:
        start_postgres(self.pg)
        self.bus.start()

    def stop(self) -> None:
        self.bus.stop()
        self.pg.stop()

    def fresh(self) -> tuple[str, Path, Path]:
        """A new database (migrated), lake and home for a step, and no ticks stream."""
        self.steps += 1
        name = f"capacity_{self.steps}"
        with psycopg.connect(self.pg.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        dsn = self.pg.dsn.rsplit("/", 1)[0] + f"/{name}"
        migrate(dsn)

        async def drop_stream() -> None:
            client = await nats.connect(self.bus.url)
            with suppress(nats.js.errors.NotFoundError):
                await client.jetstream().delete_stream("TICKS")
            await client.close()

        asyncio.run(drop_stream())
        step_root = self.root / f"step-{self.steps}"
        return dsn, step_root / "lake", step_root / "home"

    def postgres_processes(self) -> list[psutil.Process]:
        pid = self.pg.pid()
        if pid is None:
            return []
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]


def _cpu(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _rss_mb(processes: Sequence[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total / 2**20


def _rates(mix: Mix, messages_per_s: float) -> Rates:
    return Rates(trades=messages_per_s * mix.trades, book=messages_per_s * mix.book, liquidations=mix.liquidations)


def _stored_rows(frames: Sequence[Frame]) -> int:
    """Rows the frames make once stored (a BookDeltas message is one row a level)."""
    out, _ = normalize_frames(VENUE, frames)
    return sum(r.row_count() if isinstance(r, BookDeltas) else 1 for r in out.records)


def calibrate(mix: Mix, instruments: int) -> float:
    """Stored rows per scaled message: from 2 s at 1,000 messages a second, normalized offline."""
    feed = synthetic_feed(VENUE, instruments, _rates(mix, 1000), time.time_ns(), 2.0, seed=1,
                          channels=mix.channels)
    rest = feed.rest_frames()  # the market's start, as the frames after it begin
    ws_rows = _stored_rows([*rest, *feed]) - _stored_rows(rest)
    return ws_rows / 2000


def _env(dsn: str, bus: EmbeddedNats, lake: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(home), TICKLAKE_NATS_URL=bus.url, TICKLAKE_PG_DSN=dsn, TICKLAKE_LAKE=str(lake))
    return env


@contextmanager
def _processes(commands: dict[str, list[str]], env: dict[str, str], logs: Path) -> Iterator[dict[str, psutil.Popen]]:
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, psutil.Popen] = {}
    try:
        for name, command in commands.items():
            running[name] = psutil.Popen(command, env=env, stdout=(logs / f"{name}.log").open("wb"),
                                         stderr=subprocess.STDOUT)
        yield running
    finally:
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(60)
            except psutil.TimeoutExpired:
                process.kill()


def count_rows(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}  # type: ignore[index]


def _latencies(dsn: str, offset_ns: int, start_ns: int, seconds: float, warmup_s: float
               ) -> tuple[dict[str, float], list[float]]:
    """Send-to-commit percentiles (ms) over every market-data row sent after the warmup, and the
    p50 of each fifth of the run."""
    union = " UNION ALL ".join(
        f"SELECT ts_exch, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1e9)::int8 AS committed FROM {t}"
        for t in ("trade", "book_delta", "bbo", "mark_index", "liquidation"))
    after = start_ns + int(warmup_s * 1e9)
    fifth = int(seconds * 1e9 / 5)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT percentile_cont(ARRAY[0.5, 0.99, 0.999]) WITHIN GROUP (ORDER BY committed - ts_exch - %s), "
            f"max(committed - ts_exch - %s) FROM ({union}) r WHERE ts_exch >= %s", (offset_ns, offset_ns, after)
        ).fetchone()
        fifths = conn.execute(
            f"SELECT (ts_exch - %s) / %s AS part, percentile_cont(0.5) WITHIN GROUP "
            f"(ORDER BY committed - ts_exch - %s) FROM ({union}) r WHERE ts_exch >= %s GROUP BY part ORDER BY part",
            (start_ns, fifth, offset_ns, start_ns)).fetchall()
    assert row is not None
    quantiles = row[0] or [float("nan")] * 3
    stats = {"p50": quantiles[0] / 1e6, "p99": quantiles[1] / 1e6, "p999": quantiles[2] / 1e6,
             "max": (row[1] or 0) / 1e6}
    return stats, [value / 1e6 for part, value in fifths if 0 <= part < 5]


def _lake_latency(lake: Path, offset_ns: int, start_ns: int, warmup_s: float) -> dict[str, float]:
    """Send-to-durable percentiles (ms): each row's Parquet file's modification time."""
    parts = []
    for table in ("trade", "book_delta", "bbo"):
        paths = sorted((lake / table).rglob("*.parquet"))
        if not paths:
            continue
        mtimes = pl.DataFrame({"path": [str(p) for p in paths], "mtime": [p.stat().st_mtime_ns for p in paths]})
        parts.append(pl.scan_parquet([str(p) for p in paths], include_file_paths="path", hive_partitioning=False)
                     .select(pl.col("ts_exch").dt.epoch("ns"), "path").collect()
                     .join(mtimes, on="path").filter(pl.col("ts_exch") >= start_ns + int(warmup_s * 1e9))
                     .select(((pl.col("mtime") - pl.col("ts_exch") - offset_ns) / 1e6).alias("ms")))
    if not parts:
        return {}
    rows = pl.concat(parts)
    if rows.is_empty():
        return {}
    latency = rows["ms"]
    return {"p50": latency.quantile(0.5) or 0.0, "p99": latency.quantile(0.99) or 0.0,
            "p999": latency.quantile(0.999) or 0.0}


def _disk(dsn: str, lake: Path, home: Path, bus: EmbeddedNats, rows: dict[str, int], frames: int,
          raw_bytes: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with psycopg.connect(dsn) as conn:
        for table in ("trade", "book_delta", "bbo"):
            if rows.get(table):
                size = conn.execute("SELECT hypertable_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
                out[f"timescale {table} B/row"] = size / rows[table]
    for table in ("trade", "book_delta", "bbo"):
        size = sum(p.stat().st_size for p in (lake / table).rglob("*.parquet"))
        if rows.get(table) and size:
            out[f"lake {table} B/row"] = size / rows[table]
    captured = sum(p.stat().st_size for p in (home / "capture").rglob("*") if p.is_file())
    if frames:
        out["capture B/frame"] = captured / frames
        out["raw B/frame"] = raw_bytes / frames

    async def stream_bytes() -> int:
        client = await nats.connect(bus.url)
        info = await client.jetstream().stream_info("TICKS")
        await client.close()
        return int(info.state.bytes)

    total = sum(rows.get(t, 0) for t in TABLES)
    if total:
        out["jetstream B/record"] = asyncio.run(stream_bytes()) / total
    return out


def run_step(stack: Stack, mix: Mix, target: float, seconds: float, instruments: int | None = None,
             warmup_s: float | None = None) -> Step:
    instruments = instruments or mix.instruments
    warmup_s = min(10.0, seconds / 4) if warmup_s is None else warmup_s
    per_message = calibrate(mix, instruments)
    start_ns = time.time_ns()
    feed = synthetic_feed(VENUE, instruments, _rates(mix, target / per_message), start_ns, seconds, seed=11,
                          channels=mix.channels, keep_truth=True)
    rest = feed.rest_frames()  # before the frames are generated: the books' snapshots as the market starts
    frames = list(feed)
    step = Step(mix.name, instruments, target, seconds, frames=len(frames))
    dsn, lake, home = stack.fresh()
    env = _env(dsn, stack.bus, lake, home)
    symbols = ",".join(feed.encoder.symbols)
    routes = len(BinanceUsdmConnection(feed.encoder.symbols, channels=mix.channels).routes())
    result = asyncio.run(_play(stack, feed, rest, frames, routes, symbols, mix, env, home, seconds, step))
    offset_ns, start = result
    step.rows = count_rows(dsn)
    step.records = sum(step.rows[t] for t in RECORD_TABLES)
    step.rate = step.records / seconds
    assert feed.truth is not None
    step.trades_expected = len(feed.truth.trades)
    step.trades_stored = step.rows["trade"]
    step.latency_ms, step.p50_by_fifth_ms = _latencies(dsn, offset_ns, start, seconds, warmup_s)
    step.lake_latency_ms = _lake_latency(lake, offset_ns, start, warmup_s)
    step.disk = _disk(dsn, lake, home, stack.bus, step.rows, len(frames), sum(len(f.payload) for f in frames))
    step.cpu_us = {name: seconds_used * 1e6 / max(1, step.records) for name, seconds_used in step.cpu_us.items()}
    return step


async def _play(stack: Stack, feed: SyntheticFeed, rest: list[Frame], frames: list[Frame], routes: int, symbols: str,
                mix: Mix, env: dict[str, str], home: Path, seconds: float, step: Step) -> tuple[int, int]:
    server = ReplayServer(VENUE, rest, speed=1.0, playback=frames, min_clients=routes)
    await server.start()
    commands = {
        "sink timescale": [TICKLAKE, "sink", "timescale"],
        "sink parquet": [TICKLAKE, "sink", "parquet", "--flush-age", "1"],
        "handler": [TICKLAKE, "ingest", "--venue", VENUE, "--symbols", symbols, "--channels", ",".join(mix.channels),
                    "--ws-url", server.url, "--rest-url", server.rest_url, "--metadata-every", "86400"],
    }
    nats_process = psutil.Process(stack.bus.pid())  # type: ignore[arg-type]
    me = psutil.Process()
    try:
        with _processes(commands, env, home.parent / "logs") as running:
            groups = {**{name: [process] for name, process in running.items()}, "nats-server": [nats_process],
                      "postgres": stack.postgres_processes(), "venue (replay server)": [me]}
            while not server.clock_offset_ns:  # costs from the first frame: not the processes' imports
                await asyncio.sleep(0.01)
            before = {name: _cpu(processes) for name, processes in groups.items()}
            await asyncio.wait_for(server.finished.wait(), seconds * 4 + 60)
            played = time.monotonic()
            dsn = env["TICKLAKE_PG_DSN"]
            last, still = -1, 0.0
            while time.monotonic() - played < DRAIN_TIMEOUT_S:  # until nothing more lands for 3 s
                await asyncio.sleep(0.5)
                counts = await asyncio.to_thread(count_rows, dsn)
                total = sum(counts.values())
                if total == last:
                    if time.monotonic() - still >= 3:
                        break
                else:
                    last, still = total, time.monotonic()
            step.drained_s = max(0.0, still - played)
            groups["postgres"] = stack.postgres_processes()
            after = {name: _cpu(processes) for name, processes in groups.items()}
            step.rss_mb = {name: _rss_mb(processes) for name, processes in groups.items()}
            step.cpu_us = {name: after[name] - before[name] for name in groups}
    finally:
        await server.stop()
    step.max_late_s = server.max_late_s
    return server.clock_offset_ns, feed.market.start_ns


def search(stack: Stack, mix: Mix, seconds: float, start: float, log: list[Step]) -> tuple[float, list[Step]]:
    """The highest rate kept up: up by 1.6x until a step fails (down by 1.6x until one passes, when
    the first fails), then two bisections."""
    passed: Step | None = None
    failed: float | None = None
    rate = start
    steps: list[Step] = []
    while (failed is None or passed is None) and 500 <= rate < 2_000_000:
        step = run_step(stack, mix, rate, seconds)
        steps.append(step)
        report(step)
        if step.kept_up:
            passed, rate = step, rate * 1.6
        else:
            failed = rate
            rate /= 1.6
    low = passed.target if passed else 0.0
    for _ in range(2):
        if failed is None or not passed:
            break
        middle = (low + failed) / 2
        step = run_step(stack, mix, middle, seconds)
        steps.append(step)
        report(step)
        if step.kept_up:
            low, passed = middle, step
        else:
            failed = middle
    log.extend(steps)
    return (passed.rate if passed else 0.0), steps


def report(step: Step) -> None:
    cpu = ", ".join(f"{name} {value:.1f}" for name, value in step.cpu_us.items())
    latency = " / ".join(f"{step.latency_ms.get(q, float('nan')):.1f}" for q in ("p50", "p99", "p999"))
    lake = " / ".join(f"{step.lake_latency_ms.get(q, float('nan')):.0f}" for q in ("p50", "p99", "p999"))
    print(f"  {step.mix:<16} {step.instruments:>5} instr  target {step.target:>9,.0f}  stored {step.rate:>9,.0f} rec/s"
          f"  {'kept up' if step.kept_up else 'BEHIND '}  trades {step.trades_stored:,}/{step.trades_expected:,}"
          f"  venue late {step.max_late_s:.2f}s  queryable p50/p99/p999 {latency} ms  lake {lake} ms", flush=True)
    rss = ", ".join(f"{name} {value:.0f}" for name, value in step.rss_mb.items())
    print(f"      p50 by fifth {[round(v, 1) for v in step.p50_by_fifth_ms]} ms; cpu us/record: {cpu}; rss MiB: {rss}",
          flush=True)


def peer(mix: Mix, seconds: float, rate: float) -> tuple[float, float, int]:
    """(ticklake frames/s, cryptofeed frames/s, frames) normalizing the same synthetic aggTrade and
    depth frames offline, each book from the same snapshot."""
    from decimal import Decimal

    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.binance_futures import BinanceFutures
    from cryptofeed.symbols import Symbols
    from cryptofeed.types import OrderBook

    from benchmarks.versus import feed_rate
    from normalize.emitted import Emitted
    from normalize.venues.binance_usdm import BinanceUsdm

    channels = ("aggTrade", "depth@100ms")
    feed = synthetic_feed(VENUE, mix.instruments, _rates(mix, rate), time.time_ns(), seconds, seed=5,
                          channels=channels)
    rest = feed.rest_frames()
    frames = [f.payload for f in feed]
    info = json.loads(next(f.payload for f in rest if f.url.endswith("/exchangeInfo")))
    Symbols.set(BinanceFutures.id, *BinanceFutures._parse_symbol_data(info))
    ids = [f"{s[:-4]}-USDT-PERP" for s in feed.encoder.symbols]
    theirs = BinanceFutures(symbols=ids, channels=[TRADES, L2_BOOK])
    normalizer = BinanceUsdm()
    for frame in rest:
        if "/depth?" in frame.url:
            body = json.loads(frame.payload, parse_float=Decimal)
            symbol = frame.url.split("symbol=")[1].split("&")[0]
            instrument = f"{symbol[:-4]}-USDT-PERP"
            theirs._l2_book[instrument] = OrderBook(theirs.id, instrument, max_depth=theirs.max_depth,
                                                    bids={Decimal(p): Decimal(q) for p, q in body["bids"]},
                                                    asks={Decimal(p): Decimal(q) for p, q in body["asks"]})
            theirs.last_update_id[instrument] = body["lastUpdateId"]
            normalizer.on_rest(frame.url, frame.payload, 0, Emitted())
    started = time.perf_counter()
    for n, payload in enumerate(frames):
        normalizer.on_ws(payload, n, Emitted())
    ours = len(frames) / (time.perf_counter() - started)
    return ours, feed_rate(theirs, [p.decode() for p in frames]), len(frames)


def plot(path: Path, scaling: list[Step], ladder: list[Step]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for axis, steps, x, label in ((left, scaling, [s.instruments for s in scaling], "instruments"),
                                  (right, ladder, [s.rate for s in ladder], "records/s stored")):
        for group in ("handler", "nats-server", "sink timescale", "sink parquet", "postgres"):
            axis.plot(x, [s.cpu_us.get(group, 0) for s in steps], marker="o", label=group)
        axis.plot(x, [sum(s.cpu_us.values()) for s in steps], marker="o", color="black", label="total (with venue)")
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("CPU us per record")
        axis.grid(True, alpha=0.3)
    left.set_title(f"Cost vs instruments at {scaling[0].target:,.0f} records/s" if scaling else "")
    right.set_title(f"Cost vs rate ({ladder[0].mix if ladder else ''})")
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="playback per step")
    parser.add_argument("--mixes", default="trades,depth,mix", help="comma-separated: " + ", ".join(MIXES))
    parser.add_argument("--start-rate", type=float, default=10_000, help="the ladder's first rate (records/s)")
    parser.add_argument("--instruments", default="1,10,100,1000", help="the instrument curve's counts")
    parser.add_argument("--plot", type=Path, help="write the two cost curves to this PNG")
    parser.add_argument("--json", type=Path, help="write every step's figures to this file")
    parser.add_argument("--quick", action="store_true", help="CI: one 4 s step at a fixed rate, no search")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ticklake-bench-capacity-", dir="/tmp"))
    os.chmod(root, 0o755)  # the postgres system user must reach its data dir when we run as root
    stack = Stack(root)
    log: list[Step] = []
    try:
        stack.start()
        print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB; "
              f"venue {VENUE}; CPU us/record by process over each step\n", flush=True)
        if args.quick:
            for name in ("mix",):  # the realistic mix carries trades, depth and the rest: one step checks all
                step = run_step(stack, MIXES[name], 5_000, 4.0, instruments=3, warmup_s=1.0)
                log.append(step)
                report(step)
                assert step.trades_stored == step.trades_expected, "every generated trade is stored"
                # a venue whose snapshots are ahead of its diffs has every diff look contained in them: stored
                # rows then fall to a fifth of the target (the book levels are most of the mix)
                assert step.records >= 0.5 * step.target * step.seconds, "the books keep their diffs"
            ours, theirs, frames = peer(MIXES["mix"], 2.0, 2_000)
            print(f"\nnormalize, same {frames:,} synthetic frames: ticklake {ours:,.0f}/s, cryptofeed {theirs:,.0f}/s "
                  f"({ours / theirs:.1f}x)")
            return
        capacity: dict[str, float] = {}
        ladders: dict[str, list[Step]] = {}
        for name in filter(None, args.mixes.split(",")):
            print(f"{MIXES[name].name}: searching the highest sustained rate ({args.seconds:.0f} s steps)", flush=True)
            capacity[name], ladders[name] = search(stack, MIXES[name], args.seconds, args.start_rate, log)
            print(f"  => {capacity[name]:,.0f} records/s sustained\n", flush=True)
        reference = "mix" if "mix" in capacity else next(iter(capacity))
        print(f"latency at 10/50/90 percent of the {MIXES[reference].name}'s capacity:", flush=True)
        for share in (0.1, 0.5, 0.9) if capacity[reference] else ():
            step = run_step(stack, MIXES[reference], capacity[reference] * share, args.seconds)
            log.append(step)
            report(step)
        scaling_rate = max(2_000.0, capacity.get(reference, 20_000) * 0.3)
        print(f"\ncost vs instruments at {scaling_rate:,.0f} records/s ({SCALING_MIX.name}):", flush=True)
        scaling = []
        for count in (int(n) for n in args.instruments.split(",")):
            step = run_step(stack, SCALING_MIX, scaling_rate, args.seconds, instruments=count)
            scaling.append(step)
            log.append(step)
            report(step)
        if "trades" in ladders:
            kept = [s for s in ladders["trades"] if s.kept_up]
            if kept:
                step = run_step(stack, MIXES["trades"], kept[-1].target, args.seconds)
                dsn = stack.pg.dsn.rsplit("/", 1)[0] + f"/capacity_{stack.steps}"
                rows = step.rows["trade"]
                copy_rate = rows / bench_server_only(dsn, rows, 256 * 100)
                print(f"\nraw binary COPY, server only, the same {rows:,} trades: {copy_rate:,.0f} rows/s; "
                      f"the end-to-end trades capacity is {capacity['trades'] / copy_rate:.2f}x of it", flush=True)
        ours, theirs, frames = peer(MIXES["mix"], 10.0, 5_000)
        print(f"normalize, same {frames:,} synthetic frames (aggTrade + depth): ticklake {ours:,.0f}/s, "
              f"cryptofeed {theirs:,.0f}/s ({ours / theirs:.1f}x)", flush=True)
        print("\ndisk (last kept step per mix):")
        for name, steps in ladders.items():
            kept = [s for s in steps if s.kept_up] or steps
            print(f"  {MIXES[name].name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in kept[-1].disk.items()))
        print("\ncapacity: " + ", ".join(f"{MIXES[n].name} {v:,.0f} records/s" for n, v in capacity.items()))
        if args.plot:
            plot(args.plot, scaling, ladders.get(reference, []))
    finally:
        if args.json:
            args.json.write_text(json.dumps([s.__dict__ | {"kept_up": s.kept_up} for s in log], indent=1))
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
