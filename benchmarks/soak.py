"""Soak: `ticklake run --config` left running against a synthetic venue, a child killed every few minutes.

Everything real: a throwaway PostgreSQL+TimescaleDB and nats-server (bench_capacity.Stack), a synthetic
Binance USD-M market (`ticklake replay-server --synthetic`, ground truth written on exit) whose clock
starts `--lead` seconds before a UTC midnight (so the run crosses it), and the supervisor with both
sinks and the schedule (seal, retention, capture pruning every `--schedule-every`). The handler stamps
receive times with the market's clock (`clock = "recorded"`), so the captures and the lake cross the
same midnight; the day before it is finished (it is in the past), so the schedule seals it and prunes
its captures.

Every `--kill-every` seconds one child is killed with SIGKILL, in turn: the Parquet sink, the Timescale
sink, the handler, the schedule. Every 10 s: the RSS of every process (psutil), each consumer's pending
messages and the restarts (the health endpoint). At the end: every generated trade against both stores
(duplicates must be none; what a handler's SIGKILL lost, held unpublished or sent by the venue while it
restarted, the restarted handler fetches from the venue by trade id, ingest/resume.py), the journal's trade
gaps and backfills, the sealed days, the pruned captures, every live bar against the bars of every stored
trade (the market's clock is hours behind, so the live bars take each trade as a late one:
storage/late_trades.py); a JSON summary and a PNG of the memory curves.

Run: `python -m benchmarks.soak --duration 1800 --rate 20800 --out soak/` (the issue's soak: 20,000 stored);
`--duration 60 --rate 5000 --kill-every 15 --lead 15 --schedule-every 20` is tests/test_soak.py's.
`--rate` is rows stored a second, turned into the venue's message rates by bench_capacity.calibrate (a 2 s
sample, within a few percent); the summary's `records_per_s` is what was stored. The ticks stream keeps
`--bus-max-age` (10 minutes), so within the run it reaches the steady state a production stream reaches
after its 7 days, and nats-server's memory is measured from then; its Go heap statistics are sampled with
its RSS (`nats_heap_mib`: live, in use, returned, the next collection's target), and `--nats-memory-limit`
gives it a GOMEMLIMIT as TICKLAKE_NATS_MEMORY_LIMIT would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nats
import polars as pl
import psutil
import psycopg

from benchmarks.bench_capacity import MIXES, RECORD_TABLES, Stack, _rates, calibrate, count_rows
from pipelines import bars
from pipelines.live_bars import RESOLUTIONS, read_live_bars
from pipelines.quality import same_bars
from storage.migrate import migrate
from storage.seal_manifest import venue_days
from storage.timescale_rows import read_table
from ticklake.run_all import wait_caught_up
from ticklake.stack.ports import free_port, wait_listening

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
KILL_ORDER = ("sink-parquet", "sink-timescale", "ingest-binance-usdm", "schedule")
SAMPLE_S = 10.0
SETTLE_S = 120.0
"""Longest wait, after the market ends, for the handler's trade backfills."""
NATS_HEAP = ("HeapAlloc", "HeapInuse", "HeapReleased", "NextGC", "Sys")
"""nats-server's Go memory statistics sampled with its RSS (EmbeddedNats.heap_stats)."""
WARMUP_S = 120.0
"""RSS growth is measured over the samples after this (imports, books, buffers filled)."""


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        document: dict[str, object] = json.loads(response.read())
    return document


def _config(path: Path, venue_port: int, health_port: int, schedule_every: float) -> None:
    path.write_text(f"""\
[supervisor]
health_port = {health_port}
restart_backoff_s = 1
catch_up_s = 120

[schedule]
every_s = {schedule_every}
seal_after_s = 0

[capture]
keep_days = 0

[sinks.parquet]
flush_age_s = 10

[[feed]]
venue = "binance-usdm"
instruments = "all"
ws_url = "ws://127.0.0.1:{venue_port}"
rest_url = "http://127.0.0.1:{venue_port}"
clock = "recorded"
""")


def _trades(dsn: str, lake: Path) -> tuple[list[str], list[str]]:
    with psycopg.connect(dsn) as conn:
        db = [row[0] for row in conn.execute("SELECT symbol || '/' || trade_id FROM trade").fetchall()]
    frame = pl.read_parquet(f"{lake}/trade/**/*.parquet", hive_partitioning=False)
    return db, (frame["symbol"] + "/" + frame["trade_id"]).to_list()


def _journal(dsn: str) -> dict[str, int]:
    """Rows per event of the trade continuity journal (trade_gap, backfill_done, trades_lost)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT event, count(*) FROM feed_status WHERE event IN ('trade_gap', 'backfill_done', "
                            "'trades_lost') GROUP BY event").fetchall()
    return {event: count for event, count in rows}


def _settle_trade_gaps(dsn: str, timeout_s: float) -> None:
    """Wait until every journaled trade gap is backfilled or journaled lost (or `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        journal = _journal(dsn)
        if journal.get("backfill_done", 0) + journal.get("trades_lost", 0) >= journal.get("trade_gap", 0):
            return
        time.sleep(1)


def _live_bars(dsn: str) -> dict[str, int]:
    """Every live bar against the bars of every stored trade (pipelines.bars.time_bars, what a seal builds):
    the market's clock runs hours behind the wall clock, so each of its trades reached the live bars as a
    late one (storage/late_trades.py), and so did those a restarted handler backfilled."""
    with psycopg.connect(dsn) as conn:
        trades = pl.from_arrow(read_table(conn, "trade"))
        assert isinstance(trades, pl.DataFrame)
        days = [row[0] for row in conn.execute("SELECT DISTINCT (time AT TIME ZONE 'UTC')::date FROM bars_live")]
        totals: dict[str, int] = {}
        for every in RESOLUTIONS:
            live = pl.concat([read_live_bars(conn, every, day) for day in days]) if days else pl.DataFrame()
            check = same_bars(live, bars.time_bars(trades, every))
            for key, value in check.metadata.items():
                totals[key] = totals.get(key, 0) + int(value)
    return totals


def _bus_messages(url: str) -> int:
    """Messages the ticks stream was ever given (its last sequence): with the duplicate window, what sizes
    nats-server's memory."""

    async def last_seq() -> int:
        client = await nats.connect(url)
        try:
            return int((await client.jetstream().stream_info("TICKS")).state.last_seq)
        finally:
            await client.close()

    return asyncio.run(last_seq())


def _growth(samples: list[dict[str, Any]], name: str, warmup_s: float) -> dict[str, object] | None:
    """RSS growth of each process that held `name` (a killed child's successor is another), over its samples from
    `warmup_s` after it appeared: the median of their last third against that of their first third (peaks: the
    maxima of the thirds). One sample falls anywhere on a collector's or a buffer's sawtooth: nats-server went
    from 132 to 159 MiB sample to sample, +20 %, in a run whose thirds differed by -1 %. The longest-lived
    process's figures, and the largest growth of any."""
    series: dict[int, list[tuple[int, float]]] = {}
    for sample in samples:
        pid, mib = sample["pids"].get(name), sample["rss_mib"].get(name)
        if pid and mib is not None:
            series.setdefault(pid, []).append((sample["t"], mib))
    warm = [[mib for t, mib in points if t - points[0][0] >= warmup_s] for points in series.values()]
    warm = [points for points in warm if len(points) >= 2]
    if not warm:
        return None

    def medians(points: list[float]) -> tuple[float, float, float, float]:
        """The median and the maximum of the first third, then of the last third."""
        third = max(1, len(points) // 3)
        first, last = points[:third], points[-third:]
        return statistics.median(first), max(first), statistics.median(last), max(last)

    def growth(first: float, last: float) -> float:
        return 100 * (last / first - 1)

    longest = max(warm, key=len)
    first, first_peak, last, last_peak = medians(longest)
    return {"processes": len(series), "first_mib": round(longest[0], 1), "last_mib": round(longest[-1], 1),
            "max_mib": round(max(max(points) for points in warm), 1),
            "first_third_median_mib": round(first, 1), "last_third_median_mib": round(last, 1),
            "growth_pct": round(growth(first, last), 1), "peak_growth_pct": round(growth(first_peak, last_peak), 1),
            "max_growth_pct": round(max(growth(m[0], m[2]) for m in map(medians, warm)), 1)}


class _Cpu:
    """CPU seconds per role, summed over every process that held it (killed children are restarted)
    and its descendants (the schedule's pipeline runs); a process's last 10 s before a kill are missed."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[str, float]] = {}

    def sample(self, roles: list[tuple[str, int, bool]]) -> None:
        """(role, pid, with its descendants)."""
        for role, pid, descendants in roles:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                root = psutil.Process(pid)
                for process in [root, *(root.children(recursive=True) if descendants else [])]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        times = process.cpu_times()
                        self.seen[process.pid] = (role, times.user + times.system)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for role, seconds in self.seen.values():
            out[role] = out.get(role, 0.0) + seconds
        return out


def _plot(path: Path, samples: list[dict[str, object]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 5))
    names = sorted({name for sample in samples for name in sample["rss_mib"]})  # type: ignore[attr-defined]
    for name in names:
        points: list[tuple[float, float]] = [(s["t"], s["rss_mib"][name]) for s in samples  # type: ignore[index, misc]
                                             if name in s["rss_mib"]]  # type: ignore[operator]
        axis.plot([p[0] for p in points], [p[1] for p in points], label=name)
    axis.set_xlabel("seconds")
    axis.set_ylabel("RSS (MiB)")
    axis.set_title("ticklake run --config: memory per process (a child killed every few minutes)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def soak(duration_s: float, rate: float, kill_every_s: float, lead_s: float, schedule_every_s: float,
         out: Path, bus_max_age_s: float = 600.0, nats_memory_limit: str | None = None) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ticklake-soak-", dir="/tmp"))
    os.chmod(root, 0o755)
    stack = Stack(root)
    stack.bus.memory_limit, stack.bus.profile_port = nats_memory_limit, free_port()
    stack.start()
    nats_pid = stack.bus.pid()
    assert nats_pid is not None, "nats-server did not start"
    nats_gomemlimit = psutil.Process(nats_pid).environ().get("GOMEMLIMIT")  # what it runs with
    mix = MIXES["mix"]
    messages = rate / calibrate(mix, mix.instruments)
    rates = _rates(mix, messages)
    midnight = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), dt.UTC)
    start = midnight - dt.timedelta(seconds=lead_s)
    venue_port, health_port, truth = free_port(), free_port(), root / "truth.json"
    home, lake = root / "home", root / "lake"
    migrate(stack.pg.dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(home), TICKLAKE_NATS_URL=stack.bus.url, TICKLAKE_PG_DSN=stack.pg.dsn,
               TICKLAKE_LAKE=str(lake), TICKLAKE_BUS_MAX_AGE_S=str(bus_max_age_s))
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments",
                               str(mix.instruments), "--rate", f"trades={rates.trades:.0f},book={rates.book:.0f},"
                               f"liquidations={rates.liquidations:g}", "--duration", str(duration_s), "--start",
                               start.isoformat(), "--port", str(venue_port), "--clients", "2", "--truth", str(truth)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_listening(venue_port, 30)
    config = root / "feeds.toml"
    _config(config, venue_port, health_port, schedule_every_s)
    log = (out / "supervisor.log").open("w")
    supervisor = subprocess.Popen([TICKLAKE, "run", "--config", str(config)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    samples: list[dict[str, object]] = []
    kills: list[dict[str, object]] = []
    cpu = _Cpu()
    try:
        assert wait_listening(health_port, 60)
        began = time.monotonic()
        next_kill, next_sample = kill_every_s, 0.0
        while (elapsed := time.monotonic() - began) < duration_s + 5:
            if elapsed >= next_sample:
                next_sample += SAMPLE_S
                health = _health(health_port)
                children = {c["name"]: c["pid"] for c in health["children"] if c["pid"]}  # type: ignore[attr-defined]
                pids = {**children, "nats-server": stack.bus.pid(), "supervisor": supervisor.pid}
                rss = {}
                for name, pid in pids.items():
                    if pid:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            rss[name] = psutil.Process(pid).memory_info().rss / 2**20
                rss["postgres"] = sum(p.memory_info().rss for p in stack.postgres_processes()) / 2**20
                cpu.sample([*((name, pid or 0, name in children) for name, pid in pids.items()),  # with descendants
                            ("venue", server.pid, False), ("postgres", stack.pg.pid() or 0, True)])
                heap = stack.bus.heap_stats()
                samples.append({"t": round(elapsed), "rss_mib": rss, "pids": pids, "behind": health["behind"],
                                "nats_heap_mib": {k: round(heap[k] / 2**20, 1) for k in NATS_HEAP},
                                "restarts": {c["name"]: c["restarts"] for c in health["children"]}})  # type: ignore[attr-defined]
            if elapsed >= next_kill and elapsed < duration_s - 5:  # not as the market ends: its restart is the test
                name = KILL_ORDER[len(kills) % len(KILL_ORDER)]
                pid = next(c["pid"] for c in _health(health_port)["children"] if c["name"] == name)  # type: ignore[attr-defined]
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    kills.append({"t": round(elapsed), "child": name})
                next_kill += kill_every_s
            time.sleep(1)
        # the venue keeps answering REST after its market ends: a handler restarted late in the run may still be
        # backfilling what it missed (one REST call a second, after its book snapshots)
        _settle_trade_gaps(stack.pg.dsn, SETTLE_S)
        # the venue first: its truth is then what it sent (a loaded machine plays behind the market's clock),
        # and the handler has every frame before it is stopped
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        venue_wall_s = time.monotonic() - began
        time.sleep(5)
        # the live bars follow what the Timescale sink committed, a pass a second
        wait_caught_up(stack.bus.url, 120, consumers=("timescale",))
        time.sleep(3)
        final = _health(health_port)
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(300)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    truth_trades = json.loads(truth.read_text())["trades"]
    generated = {f"{t[0]}/{t[1]}" for t in truth_trades}
    played_s = (max(t[5] for t in truth_trades) - min(t[5] for t in truth_trades)) / 1e9 if truth_trades else 0.0
    db, parquet = _trades(stack.pg.dsn, lake)
    kept_up = played_s >= 0.99 * duration_s
    rows = count_rows(stack.pg.dsn)
    bus_messages = _bus_messages(stack.bus.url)
    records = sum(rows[table] for table in RECORD_TABLES)
    journal = _journal(stack.pg.dsn)
    live_bars = _live_bars(stack.pg.dsn)
    days = venue_days(str(lake))
    schedule_log = (home / "logs" / "schedule.log").read_text()
    pruned = sum(int(line.split("removed ")[1].split(" ")[0]) for line in schedule_log.splitlines()
                 if "capture prune: removed" in line)
    warmup = min(WARMUP_S, duration_s / 3)
    growth = {name: g for name in ("sink-parquet", "sink-timescale", "ingest-binance-usdm", "live-bars", "schedule",
                                   "supervisor") if (g := _growth(samples, name, warmup))}
    # nats-server's state grows with the stream until the stream holds its whole max age: measured from then
    if nats := _growth(samples, "nats-server", max(warmup, min(bus_max_age_s, duration_s / 2))):
        growth["nats-server"] = nats
    pending = [s["behind"].get(k) for s in samples for k in ("timescale_pending", "parquet_pending")]  # type: ignore[attr-defined]
    cpu_cores = {role: round(seconds / duration_s, 2) for role, seconds in sorted(cpu.totals().items())}
    summary: dict[str, object] = {
        "duration_s": duration_s, "rate_target": rate, "market_played_s": round(played_s, 1),
        "records_stored": records, "rows_by_table": {table: rows[table] for table in RECORD_TABLES},
        # a venue that kept up played its market in duration_s; one that fell behind played until it was stopped
        "kept_up": kept_up, "records_per_s": round(records / (duration_s if kept_up else venue_wall_s)),
        "nats_gomemlimit": nats_gomemlimit,
        "bus_messages_per_s": round(bus_messages / (duration_s if kept_up else venue_wall_s)),
        "market_start": start.isoformat(), "exit_code": code,
        "trades_generated": len(generated), "trades_timescale": len(db), "trades_lake": len(parquet),
        "duplicates_timescale": len(db) - len(set(db)), "duplicates_lake": len(parquet) - len(set(parquet)),
        "stores_equal": set(db) == set(parquet), "unknown_trades": len(set(db) - generated),
        "missing_trades": len(generated - set(db)),
        "trade_gaps": journal.get("trade_gap", 0), "trade_backfills": journal.get("backfill_done", 0),
        "trades_lost_journaled": journal.get("trades_lost", 0),
        "live_bars": live_bars, "live_bars_equal_stored": live_bars["only_live"] + live_bars["only_sealed"] == 0
        and live_bars["live_bars"] == live_bars["sealed_bars"] > 0,
        "kills": kills, "restarts": {c["name"]: c["restarts"] for c in final["children"]},  # type: ignore[attr-defined]
        "max_pending": max((p for p in pending if isinstance(p, int)), default=None),
        "sealed_days": sorted({day.isoformat() for (_, day), sealed in days.items() if sealed}),
        "captures_pruned": pruned, "rss": growth, "cpu_cores": cpu_cores,
        "tracebacks": sum(path.read_text().count("Traceback") for path in
                          (out / "supervisor.log", *(home / "logs").glob("*.log")) if path.name != "pipelines.log"),
        "pipelines": [line.split("] ")[-1].split(" [")[0] for line in schedule_log.splitlines()
                      if "pipelines " in line],
    }
    (out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    _plot(out / "soak-memory.png", samples)
    stack.stop()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of market")
    parser.add_argument("--rate", type=float, default=20_000.0, help="records a second (stored rows)")
    parser.add_argument("--kill-every", type=float, default=180.0, help="seconds between SIGKILLs of a child")
    parser.add_argument("--lead", type=float, default=300.0, help="the market starts this long before midnight")
    parser.add_argument("--schedule-every", type=float, default=300.0, help="seconds between schedule rounds")
    parser.add_argument("--bus-max-age", type=float, default=600.0,
                        help="seconds the ticks stream keeps a message (TICKLAKE_BUS_MAX_AGE_S; 7 days in production)")
    parser.add_argument("--nats-memory-limit", help="nats-server's GOMEMLIMIT (`512MiB`); unset: none")
    parser.add_argument("--out", type=Path, default=Path("soak"), help="folder for soak.json and soak-memory.png")
    args = parser.parse_args()
    summary = soak(args.duration, args.rate, args.kill_every, args.lead, args.schedule_every, args.out,
                   args.bus_max_age, args.nats_memory_limit)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
