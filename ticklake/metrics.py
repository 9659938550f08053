"""Prometheus metrics of the long-running commands, on `--metrics-port`.

Feed handlers keep plain counters (HandlerStats) on their hot path; a collector turns them into
metrics only when Prometheus scrapes, so counting costs one integer add per frame. The disks a
process writes to and the lake's seal state are read the same way, at scrape time: the alert rules
in infra/prometheus/alerts.yml watch them (disk filling, the day seal late or stuck), and nothing
is computed when nobody scrapes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pyarrow import fs

from ingest.feed_handler import FeedHandler, HandlerStats
from storage.parquet_files import filesystem_for
from storage.seal_manifest import COMMITTING, SEALED, SEALS_DIR, SealManifest

log = logging.getLogger(__name__)

_HELP = {
    "frames": "WebSocket frames received",
    "overflows": "Frames dropped because the handler queue was full (each journalled as a gap)",
    "connects": "WebSocket connections opened",
    "disconnects": "WebSocket connections ended",
    "stale": "Connections replaced after a silence longer than stale_after_s",
    "silent_after_connect": "Connections that carried no data frame within their route's bound after the "
                            "handshake (a retired or wrong URL), each replaced with backoff",
    "snapshots": "REST book snapshots requested",
    "backfills": "REST trade backfills requested",
    "rest_errors": "Failed REST requests",
}


class HandlerCollector(Collector):
    def __init__(self, handlers: Callable[[], list[FeedHandler]]) -> None:
        self.handlers = handlers

    def collect(self) -> Iterator[Metric]:
        for field in fields(HandlerStats):
            family = CounterMetricFamily(f"ticklake_handler_{field.name}", _HELP[field.name],
                                         labels=["venue", "shard"])
            for handler in self.handlers():
                family.add_metric([handler.connection.venue, handler.label], getattr(handler.stats, field.name))
            yield family


class DiskCollector(Collector):
    """Free and total bytes of the filesystem under each path a process writes to, by role
    (`captures`, `spool`, `lake`, `home`): a full disk stops captures, spools or the lake, so the
    rule that warns must see each one. A path that does not exist yet is measured at its nearest
    existing parent (the filesystem it will be created on)."""

    def __init__(self, paths: Mapping[str, str | Path]) -> None:
        self.paths = {role: Path(path) for role, path in paths.items()}

    def collect(self) -> Iterator[Metric]:
        free = GaugeMetricFamily("ticklake_disk_free_bytes", "Bytes available to this process on the filesystem "
                                 "holding the path", labels=["role", "path"])
        size = GaugeMetricFamily("ticklake_disk_size_bytes", "Size of the filesystem holding the path",
                                 labels=["role", "path"])
        for role, path in self.paths.items():
            existing = next((p for p in (path, *path.parents) if p.exists()), None)
            if existing is None:
                continue
            usage = shutil.disk_usage(existing)
            free.add_metric([role, str(path)], usage.free)
            size.add_metric([role, str(path)], usage.total)
        yield free
        yield size


class SealCollector(Collector):
    """The day seal's progress from the lake's own manifests (storage/seal_manifest.py), per record
    type and venue: the newest sealed day, and whether the newest manifest is stuck in `committing`
    (a seal that failed between swapping files and its commit). Only the newest manifests are read
    (down to the newest sealed one), so a refresh costs a listing and a few small reads however long
    the lake's history."""

    def __init__(self, lake: str, refresh_s: float = 300.0) -> None:
        self.filesystem, self.base = filesystem_for(lake)
        self.refresh_s = refresh_s
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        """The seal state, read again at most every `refresh_s` (seals happen once a day; a listing of
        an S3 lake on every 15 s scrape would cost requests for nothing)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self.refresh_s:
            self._cached = (now, list(self._read()))
        yield from self._cached[1]

    def _read(self) -> Iterator[Metric]:
        sealed = GaugeMetricFamily("ticklake_lake_last_sealed_day_timestamp_seconds", "Start (UTC midnight, Unix "
                                   "time) of the newest day sealed", labels=["record_type", "venue"])
        committing = GaugeMetricFamily("ticklake_lake_seal_committing", "1 when the newest seal manifest is "
                                       "still committing (a seal interrupted or failed mid-commit)",
                                       labels=["record_type", "venue"])
        selector = fs.FileSelector(f"{self.base}/{SEALS_DIR}", recursive=True, allow_not_found=True)
        newest_first: dict[tuple[str, str], list[str]] = {}
        for info in self.filesystem.get_file_info(selector):
            parts = info.path[len(self.base) + len(SEALS_DIR) + 2:].split("/")
            if info.type == fs.FileType.File and len(parts) == 3 and parts[2].endswith(".json"):
                newest_first.setdefault((parts[0], parts[1]), []).append(info.path)
        for (record_type, venue), paths in newest_first.items():
            states = (self._state(path) for path in sorted(paths, reverse=True))
            first = next(states)
            committing.add_metric([record_type, venue], float(first[1] == COMMITTING))
            day = next((d for d, state in itertools.chain([first], states) if state == SEALED), None)
            if day is not None:
                start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
                sealed.add_metric([record_type, venue], start.timestamp())
        yield sealed
        yield committing

    def _state(self, path: str) -> tuple[str, str]:
        with self.filesystem.open_input_stream(path) as stream:
            manifest = SealManifest.from_json(stream.read())
        return manifest.date, manifest.state


def serve(port: int, handlers: Callable[[], list[FeedHandler]] | None = None,
          disks: Mapping[str, str | Path] | None = None, lake: str | None = None) -> None:
    """Expose the default registry (publisher and sink metrics) plus the handlers', the disks' and
    the lake's seal state where given, on all interfaces (Prometheus usually scrapes from another
    host or container); 0 means off."""
    if not port:
        return
    if handlers is not None:
        REGISTRY.register(HandlerCollector(handlers))
    if disks:
        REGISTRY.register(DiskCollector(disks))
    if lake is not None:
        REGISTRY.register(SealCollector(lake))
    start_http_server(port)
