"""`ticklake run --config FILE`: the whole service from one feed configuration, left running.

Every part is a child process (`python -m ticklake ...`): one handler per feed and shard, both sinks,
the live bars (`ticklake sink live-bars`)
and the schedule (`ticklake schedule`: the daily pipelines, Timescale retention and capture pruning on
time). A child that exits while the supervisor runs is started again after a backoff that doubles for
each crash in a row (from `restart_backoff_s` to `restart_backoff_max_s`; a child that ran
`healthy_after_s` starts the count again), and each restart is a `child_restart` row in the feed_status
journal, published on the bus like the handlers' own rows, so it lands in both stores. Losing a child
never stops the others: the handlers keep publishing while a sink is away (JetStream holds the backlog),
and a sink keeps draining while a handler restarts.

SIGTERM or SIGINT stops it as `ticklake run` does (run_all.ProcessTree): the handlers first (each
publishes what it holds), then the sinks get `catch_up_s` to drain the stream and stop (flush, commit,
acknowledge); the schedule last.

`--health-port` serves one JSON document on any path: what runs (pid, uptime), restarts and the last
exit code per child, and what is behind (each sink consumer's pending messages, the last sealed day).
Feeds with `instruments = "all"` are resolved again every `refresh_s`; a feed whose list changed (a new
listing) has its children restarted with the new list, journaled `instruments_changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from ingest.publisher import BusConfig, Publisher
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus
from storage.seal_manifest import venue_days
from ticklake.feed_config import ALL, FeedConfig, FeedSpec, feed_symbols
from ticklake.run_all import LIVE_BARS, SINKS, child, pending, stop, wait_caught_up
from ticklake.settings import SettingsError

log = logging.getLogger(__name__)
SUPERVISOR_VENUE = "ticklake"
"""The journal's venue for rows about children that belong to no venue (sinks, the schedule)."""


@dataclass
class Child:
    """One supervised process and its history."""

    name: str
    args: list[str]
    venue: str = SUPERVISOR_VENUE
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    crashes_in_row: int = 0
    last_exit_code: int | None = None
    last_exit_at: str | None = None
    restart_at: float | None = None
    """Monotonic time of the pending restart, while the child waits out its backoff."""
    symbols: list[str] = field(default_factory=list)
    feed: str = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self, now: float) -> dict[str, object]:
        return {"name": self.name, "pid": self.process.pid if self.running and self.process else None,
                "running": self.running, "uptime_s": round(now - self.started, 1) if self.running else None,
                "restarts": self.restarts, "last_exit_code": self.last_exit_code, "last_exit_at": self.last_exit_at,
                "restart_in_s": round(max(0.0, self.restart_at - now), 1) if self.restart_at is not None else None}


class Journal:
    """Publishes the supervisor's own feed_status rows from a thread of its own, with a Publisher (so a
    bus that is away spools them, as it does the handlers' rows)."""

    def __init__(self, nats_url: str, home: Path) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="journal", daemon=True)
        self._publisher = Publisher(BusConfig(url=nats_url), home / "spool" / "supervisor.spool")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._publisher.start(), self._loop).result(30)

    def write(self, venue: str, event: str, connection_id: str, detail: str) -> None:
        now = time.time_ns()
        record = FeedStatus(venue, "", "", now, now, None, None, TS_EVENT_IMPUTED, event, connection_id, detail[:500])
        self._loop.call_soon_threadsafe(self._publisher.submit, [record])

    def flush(self) -> None:
        """Everything written so far acknowledged by the bus (or spooled), so the sinks can drain it."""
        asyncio.run_coroutine_threadsafe(self._publisher.flush(), self._loop).result(90)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._publisher.close(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Supervisor:
    def __init__(self, config: FeedConfig, config_path: Path, nats_url: str, home: Path, lake_root: str,
                 logs: Path | None = None) -> None:
        self.config, self.nats_url, self.home, self.lake_root = config, nats_url, home, lake_root
        self.options = config.supervisor
        self.logs = logs
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        self.started = time.monotonic()
        self.config_path = config_path.absolute()
        self.sinks = [Child(f"sink-{name}", ["sink", name, *(config.sinks[name].args() if name in config.sinks
                                                             else [])]) for name in SINKS]
        self.schedule = Child("schedule", ["schedule", "--config", str(self.config_path)])
        self.live_bars = Child("live-bars", ["sink", LIVE_BARS])
        """Today's 1 s and 1 m bars in TimescaleDB (pipelines/live_bars.py): not a bus consumer, so
        stopped with the schedule, not drained with the sinks."""
        self.ingests: list[Child] = []
        for feed in config.feed:
            self.ingests += self._feed_children(feed, feed_symbols(feed))
        self._lock = threading.Lock()
        self._refreshed = time.monotonic()

    def _feed_children(self, feed: FeedSpec, symbols: list[str]) -> list[Child]:
        if not symbols:
            raise SettingsError(f"feed {feed.label}: the venue lists no perpetual to subscribe")
        args = ["ingest", "--config", str(self.config_path), "--feed", feed.label]
        if feed.shards == 1:
            return [Child(f"ingest-{feed.label}", args, feed.venue, symbols=symbols, feed=feed.label)]
        return [Child(f"ingest-{feed.label}-{shard}of{feed.shards}", [*args, "--shard", f"{shard}/{feed.shards}"],
                      feed.venue, symbols=symbols, feed=feed.label) for shard in range(feed.shards)]

    @property
    def children(self) -> list[Child]:
        return [*self.ingests, *self.sinks, self.live_bars, self.schedule]

    # -- lifecycle ---------------------------------------------------------------------------
    def _start(self, item: Child) -> None:
        log_file = self.logs / f"{item.name}.log" if self.logs else None
        item.process = child(item.args, log_file)
        item.started = time.monotonic()
        item.restart_at = None

    def _check(self, item: Child, journal: Journal) -> None:
        """Notice a child that exited and schedule its restart; start one whose backoff is over."""
        now = time.monotonic()
        if item.process is not None and item.restart_at is None and item.process.poll() is not None:
            code = item.process.returncode
            ran = now - item.started
            item.crashes_in_row = 1 if ran >= self.options.healthy_after_s else item.crashes_in_row + 1
            delay = min(self.options.restart_backoff_max_s,
                        self.options.restart_backoff_s * 2 ** (item.crashes_in_row - 1))
            item.last_exit_code, item.last_exit_at = code, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            item.restart_at = now + delay
            detail = (f"{item.name} (pid {item.process.pid}) exited with {code} after {ran:.1f} s; "
                      f"restart in {delay:g} s")
            log.warning("child %s", detail)
            journal.write(item.venue, "child_restart", f"supervisor:{item.name}", detail)
        if item.restart_at is not None and now >= item.restart_at:
            item.restarts += 1
            self._start(item)

    def _refresh(self, journal: Journal) -> None:
        """Resolve the "all" feeds again; restart the children of a feed whose list changed."""
        for feed in self.config.feed:
            if feed.instruments != ALL:
                continue
            mine = [c for c in self.ingests if c.feed == feed.label]
            try:
                symbols = feed_symbols(feed)
            except SettingsError as exc:
                log.warning("feed %s: instrument list not refreshed: %s", feed.label, exc)
                continue
            if not symbols or symbols == mine[0].symbols:
                continue
            added, removed = sorted(set(symbols) - set(mine[0].symbols)), sorted(set(mine[0].symbols) - set(symbols))
            detail = (f"{feed.label}: listed {','.join(added) or 'none'}, delisted {','.join(removed) or 'none'}; "
                      "children restarted")
            log.info("feed %s", detail)
            journal.write(feed.venue, "instruments_changed", f"supervisor:ingest-{feed.label}", detail)
            for old in mine:
                if old.process is not None:
                    stop(old.process)
            fresh = self._feed_children(feed, symbols)
            with self._lock:
                self.ingests = [c for c in self.ingests if c.feed != feed.label] + fresh
            for item in fresh:
                self._start(item)

    def run(self, duration_s: float | None = None) -> int:
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        journal = Journal(self.nats_url, self.home)
        server = self._serve_health()
        try:
            for item in [*self.sinks, *self.ingests, self.live_bars, self.schedule]:
                self._start(item)
            log.info("supervising %d children: %s", len(self.children), ", ".join(c.name for c in self.children))
            while not self.stopping and (duration_s is None or time.monotonic() - self.started < duration_s):
                with self._lock:
                    for item in self.children:
                        self._check(item, journal)
                if time.monotonic() - self._refreshed >= self.options.refresh_s:
                    self._refreshed = time.monotonic()
                    self._refresh(journal)
                time.sleep(0.2)
            return self._finish(journal)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            for item in self.children:
                with contextlib.suppress(ProcessLookupError):
                    if item.running and item.process is not None:
                        item.process.kill()
            if server is not None:
                server.shutdown()
            journal.close()

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _finish(self, journal: Journal) -> int:
        """The delivery promise of run_all.ProcessTree.finish: handlers, then the sinks once caught up with
        them and with the journal's own rows."""
        codes = [self._stop(c) for c in self.ingests if c.running]
        journal.flush()
        if all(c.running for c in self.sinks) and not wait_caught_up(self.nats_url, self.options.catch_up_s):
            log.warning("sinks not caught up after %s s; the rest stays in JetStream", self.options.catch_up_s)
        codes += [self._stop(c) for c in (*self.sinks, self.live_bars, self.schedule) if c.running]
        # a child still starting when SIGTERM came dies of it, before its handler is set: nothing to deliver yet
        return next((code for code in codes if code not in (0, -signal.SIGTERM)), 0)

    def _stop(self, item: Child) -> int:
        assert item.process is not None
        code = stop(item.process)
        if code:
            log.warning("child %s stopped with exit code %d", item.name, code)
        return code

    # -- health --------------------------------------------------------------------------------
    def health(self) -> dict[str, object]:
        now = time.monotonic()
        with self._lock:
            children = [c.health(now) for c in self.children]
        behind: dict[str, object] = {}
        for name in SINKS:
            try:
                behind[f"{name}_pending"] = asyncio.run(asyncio.wait_for(pending(self.nats_url, [name]), 5))
            except Exception as exc:  # the bus away is what the endpoint must say, not a failure of its own
                behind[f"{name}_pending"] = None
                behind["bus_error"] = f"{type(exc).__name__}: {exc}"[:200]
        sealed = [day for (_, day), done in venue_days(self.lake_root).items() if done]
        behind["last_sealed_day"] = max(sealed).isoformat() if sealed else None
        ok = all(c["running"] for c in children)
        return {"status": "ok" if ok else "degraded", "uptime_s": round(now - self.started, 1),
                "children": children, "behind": behind}

    def _serve_health(self) -> ThreadingHTTPServer | None:
        if not self.options.health_port:
            return None
        supervisor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(supervisor.health()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None  # a scrape every few seconds is no news

        server = ThreadingHTTPServer(("0.0.0.0", self.options.health_port), Handler)
        threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
        return server

