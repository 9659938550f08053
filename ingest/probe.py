"""`ticklake probe`: is a venue serving every default channel on the routes the handler uses?

Replays cannot notice that a venue moved or retired an endpoint: a handler pointed at a retired
URL may connect fine and then hear nothing (Binance USD-M's unrouted root since 2026-04-23). The
probe runs the handler's own code (FeedHandler, the venue's connection module and normalizer)
against the venue for a few seconds, nothing published or captured, and counts what each route
carried per channel. A channel that stays silent fails the probe, except channels that send only
when something happens (liquidations), which are reported as quiet.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.venues.interface import Route, VenueConnection
from normalize.records import FeedStatus
from normalize.venues.interface import VenueNormalizer


@dataclass
class ChannelResult:
    route: str
    url: str
    channel: str
    frames: int = 0
    first_frame_s: float | None = None
    """Seconds from the route's first handshake to the channel's first frame."""
    quiet: bool = False
    """The channel sends only on events: silence does not fail the probe."""
    checks: str = ""
    """The book channel's sequence checks, in words (other breaks are in the journal)."""
    snapshot: str = ""

    @property
    def silent(self) -> bool:
        return self.frames == 0


@dataclass
class ProbeReport:
    venue: str
    symbols: tuple[str, ...]
    seconds: float
    channels: list[ChannelResult]
    journal: Counter[str] = field(default_factory=Counter)
    """feed_status events of the run (connect, silent_after_connect, gap, ...)."""

    @property
    def failed(self) -> list[ChannelResult]:
        return [c for c in self.channels if c.silent and not c.quiet]

    @property
    def ok(self) -> bool:
        return not self.failed


class _Counter:
    """Counts the frames of each (route, channel) as the handler takes them from the socket."""

    def __init__(self, handler: FeedHandler, connection: VenueConnection, routes: Sequence[Route]) -> None:
        self.handler, self.connection = handler, connection
        self.started = time.monotonic()
        self.results = {(route.name, channel): ChannelResult(route.name, route.url, channel,
                                                             quiet=channel in route.quiet_channels)
                        for route in routes for channel in route.channels}
        self.first_connect: dict[str, float] = {}

    def __call__(self, frame: Frame) -> None:
        if frame.kind != "ws":
            return
        channel = self.connection.channel_of(frame.payload)
        route = next((name for name, link in self.handler.links.items()
                      if link.connection_id == frame.connection_id), None)
        if channel is None or route is None:
            return
        result = self.results.get((route, channel))
        if result is None:  # a channel the route was not asked for: show it anyway
            result = self.results[route, channel] = ChannelResult(route, self.handler.links[route].route.url, channel)
        result.frames += 1
        if result.first_frame_s is None:
            opened = self.first_connect.setdefault(route, self.handler.links[route].opened or self.started)
            result.first_frame_s = max(0.0, time.monotonic() - opened)


async def probe(connection: VenueConnection, normalizer: VenueNormalizer, seconds: float,
                config: HandlerConfig | None = None) -> ProbeReport:
    """Run the handler for `seconds` and report per route and channel."""
    sink = CollectingSink()
    handler = FeedHandler(connection, normalizer, sink, None, config or HandlerConfig(poll_interval_s=3600,
                                                                                      metadata_every_s=3600))
    routes = connection.routes()
    counter = _Counter(handler, connection, routes)
    handler.on_frame = counter
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    books = normalizer.book_report()
    for route in routes:
        book = counter.results.get((route.name, route.book_channel))
        if book is None:
            continue
        mine = {symbol: books[symbol] for symbol in route.symbols if symbol in books}
        applied = sum(report[0] for report in mine.values())
        synced = sum(report[2] for report in mine.values())
        book.checks = (f"{applied:,} diffs in sequence, {sum(report[1] for report in mine.values())} breaks; "
                       f"{synced}/{len(route.symbols)} books in sync")
        fetched = connection.snapshot_url(route.symbols[0]) is not None
        book.snapshot = (f"REST, {handler.stats.snapshots} fetched" if fetched
                         else "on the socket" if synced else "none received")
    return ProbeReport(connection.venue, tuple(connection.symbols), seconds,
                       sorted(counter.results.values(), key=lambda c: (c.route, c.channel)),
                       Counter(r.event for r in journal))


def write_textfile(report: ProbeReport, path: str) -> None:
    """The report as Prometheus metrics in a file (node_exporter's textfile collector picks it up),
    so alert rules can fire on a probe run by cron or a systemd timer: `ticklake_probe_ok` is 0 when
    a channel stayed silent, and every channel's frames are there per route."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    labels = ["venue"]
    ok = Gauge("ticklake_probe_ok", "1 when every channel sent data during the last probe", labels, registry=registry)
    ok.labels(report.venue).set(1 if report.ok else 0)
    finished = Gauge("ticklake_probe_finished_seconds", "Unix time the last probe finished", labels,
                     registry=registry)
    finished.labels(report.venue).set(time.time())
    frames = Gauge("ticklake_probe_channel_frames", "Frames per channel and route during the last probe",
                   [*labels, "route", "channel", "quiet"], registry=registry)
    for result in report.channels:
        frames.labels(report.venue, result.route, result.channel, str(result.quiet).lower()).set(result.frames)
    write_to_textfile(path, registry)
