"""`ticklake run`: handlers, both sinks and nothing else, as one process tree for a laptop.

Three children (`ticklake ingest`, `ticklake sink timescale`, `ticklake sink parquet`), so a
slow sink never slows capture and the two cores are both used. Shutdown on SIGINT/SIGTERM or
after `--duration` keeps the delivery promise: the handlers stop first and publish everything
they received; then the sinks are given time to catch up with the stream (their consumers have
nothing pending), and only then are they stopped, each flushing, committing and acknowledging.
Whatever a sink had not reached stays in JetStream for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import nats
from nats.js.errors import NotFoundError

SINKS = ("timescale", "parquet")


def child(args: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ticklake", *args])


async def pending(nats_url: str, consumers: Sequence[str], stream: str = "TICKS") -> int:
    """Messages the consumers have not yet acknowledged (-1 while a consumer does not exist yet)."""
    client = await nats.connect(nats_url, connect_timeout=5)
    try:
        js = client.jetstream()
        total = 0
        for name in consumers:
            try:
                info = await js.consumer_info(stream, name)
            except NotFoundError:
                return -1
            total += info.num_pending + info.num_ack_pending
        return total
    finally:
        await client.close()


def wait_caught_up(nats_url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if asyncio.run(pending(nats_url, SINKS)) == 0:
            return True
        time.sleep(0.5)
    return False


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def run_all(ingest_args: Sequence[str], sink_args: dict[str, list[str]], nats_url: str, duration_s: float | None,
            catch_up_s: float) -> int:
    """Run the tree; the exit code is the first failing child's, else 0."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    sinks = {name: child(["sink", name, *sink_args.get(name, [])]) for name in SINKS}
    ingest = child(["ingest", *ingest_args])
    started = time.monotonic()
    try:
        while not stopping and ingest.poll() is None and all(p.poll() is None for p in sinks.values()):
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            time.sleep(0.2)
        codes = [stop(ingest)]
        if all(p.poll() is None for p in sinks.values()) and not wait_caught_up(nats_url, catch_up_s):
            print(f"ticklake run: sinks not caught up after {catch_up_s} s; the rest stays in JetStream",
                  file=sys.stderr)
        codes += [stop(p) for p in sinks.values()]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in (ingest, *sinks.values()):
            with contextlib.suppress(ProcessLookupError):
                if process.poll() is None:
                    process.kill()
    return next((code for code in codes if code), 0)
