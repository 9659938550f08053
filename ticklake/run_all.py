"""`ticklake run`: handlers, both sinks and the live bars, as one process tree for a laptop.

Four children (`ticklake ingest`, `ticklake sink timescale`, `ticklake sink parquet`, and `ticklake
sink live-bars`, which keeps today's 1 s and 1 m bars in TimescaleDB: pipelines/live_bars.py), so a
slow sink never slows capture and the two cores are both used. Shutdown on SIGINT/SIGTERM or
after `--duration` keeps the delivery promise: the handlers stop first and publish everything
they received; then the sinks are given time to catch up with the stream (their consumers have
nothing pending), and only then are they stopped, each flushing, committing and acknowledging.
Whatever a sink had not reached stays in JetStream for the next run.

`ProcessTree` is that lifecycle for any number of ingest children, each with its own arguments
(`ticklake demo` runs one per replay server, each with that server's URLs, and stops each when its
replay is done); `run_all` is `ticklake run`'s use of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from nats.js.errors import NotFoundError

from ticklake.bus_auth import connect as bus_connect

SINKS = ("timescale", "parquet")
"""The children that consume the bus (their JetStream consumers have these names)."""
LIVE_BARS = "live-bars"


def child(args: Sequence[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m ticklake ARGS`; its output is appended to `log` when given, else inherited."""
    command = [sys.executable, "-m", "ticklake", *args]
    if log is None:
        return subprocess.Popen(command)
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


ACK_PER_BATCH = ("timescale",)
"""Consumers that acknowledge each fetched batch once it is committed: what they hold unacknowledged is
not yet written, and is counted as pending."""


async def pending(nats_url: str, consumers: Sequence[str], stream: str = "TICKS") -> int:
    """Messages the consumers have not written yet (-1 while a consumer does not exist yet; 0 when
    the stream does not: no handler published anything, so there is nothing to wait for): those not
    yet delivered, and for ACK_PER_BATCH consumers those delivered and not acknowledged.

    A sink stopped by SIGTERM finishes the batch it holds (writes, commits, acknowledges), but a message
    can reach its subscription after its last fetch (a pull request answered as it expired): only the
    acknowledgement says it was written. The lake sink's unacknowledged messages are its buffer, held
    for up to its flush age and written on stop, so only its undelivered ones count."""
    client = await bus_connect(nats_url, connect_timeout=5)
    try:
        js = client.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            return 0
        total = 0
        for name in consumers:
            try:
                info = await js.consumer_info(stream, name)
            except NotFoundError:
                return -1
            total += info.num_pending + (info.num_ack_pending if name in ACK_PER_BATCH else 0)
        return total
    finally:
        await client.close()


def wait_caught_up(nats_url: str, timeout_s: float, on_pending: Callable[[int], None] | None = None,
                   consumers: Sequence[str] = SINKS) -> bool:
    """Wait until the consumers (both sinks') have acknowledged everything; `on_pending` sees each count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = asyncio.run(pending(nats_url, consumers))
        if on_pending is not None:
            on_pending(left)
        if left == 0:
            return True
        time.sleep(0.5)
    return False


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60, signalled: bool = False) -> int:
    """SIGTERM (unless `signalled` already: a second one could kill a child finishing its shutdown
    with its handlers gone), then wait; a child still running after `timeout_s` is killed."""
    if process.poll() is None and not signalled:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class ProcessTree:
    """Both sinks and any number of ingest children. Entering starts the sinks and turns
    SIGINT/SIGTERM into `stopping` (the owner's loop then calls `finish`); leaving kills whatever
    still runs. With `logs`, each child's output goes to `<logs>/<name>.log`."""

    def __init__(self, nats_url: str, sink_args: dict[str, list[str]], logs: Path | None = None,
                 live_bars: bool = False) -> None:
        """`live_bars`: also run `ticklake sink live-bars`, stopped with the sinks (`ticklake run` does;
        the demo, whose data is history, does not)."""
        self.nats_url, self.sink_args, self.logs = nats_url, sink_args, logs
        self.children = (*SINKS, LIVE_BARS) if live_bars else SINKS
        self.stopping = False
        self.sinks: dict[str, subprocess.Popen[bytes]] = {}
        self.ingests: list[subprocess.Popen[bytes]] = []
        self._signalled: set[int] = set()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> ProcessTree:
        self._previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.sinks = {name: child(["sink", name, *self.sink_args.get(name, [])], self._log(f"sink-{name}"))
                      for name in self.children}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        for process in (*self.ingests, *self.sinks.values()):
            with contextlib.suppress(ProcessLookupError):
                if process.poll() is None:
                    process.kill()

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _log(self, name: str) -> Path | None:
        return self.logs / f"{name}.log" if self.logs else None

    def start_ingest(self, args: Sequence[str], name: str = "ingest") -> subprocess.Popen[bytes]:
        process = child(["ingest", *args], self._log(name))
        self.ingests.append(process)
        return process

    def stop_ingest(self, process: subprocess.Popen[bytes]) -> None:
        """Ask one ingest child to stop now (it publishes what it holds); `finish` waits for it."""
        if process.poll() is None and process.pid not in self._signalled:
            process.send_signal(signal.SIGTERM)
            self._signalled.add(process.pid)

    def sinks_running(self) -> bool:
        return all(p.poll() is None for p in self.sinks.values())

    def finish(self, catch_up_s: float, on_pending: Callable[[int], None] | None = None) -> int:
        """Stop the ingest children (each publishes what it holds), give the sinks up to `catch_up_s`
        to drain the stream, then stop them (flush, commit, acknowledge). Returns the first failing
        child's exit code, else 0."""
        codes = [stop(p, signalled=p.pid in self._signalled) for p in self.ingests]
        if self.sinks_running() and not wait_caught_up(self.nats_url, catch_up_s, on_pending):
            print(f"ticklake: sinks not caught up after {catch_up_s} s; the rest stays in JetStream", file=sys.stderr)
        codes += [stop(p) for p in self.sinks.values()]
        return next((code for code in codes if code), 0)


def run_all(ingest_args: Sequence[Sequence[str]], sink_args: dict[str, list[str]], nats_url: str,
            duration_s: float | None, catch_up_s: float) -> int:
    """Run one ingest child per argument list, both sinks and the live bars until every ingest child has exited, a
    sink has died, SIGINT/SIGTERM or `duration_s`; the exit code is the first failing child's, else 0."""
    with ProcessTree(nats_url, sink_args, live_bars=True) as tree:
        ingests = [tree.start_ingest(args) for args in ingest_args]
        started = time.monotonic()
        while not tree.stopping and any(p.poll() is None for p in ingests) and tree.sinks_running():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            time.sleep(0.2)
        return tree.finish(catch_up_s)
