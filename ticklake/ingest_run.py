"""`ticklake ingest` and `ticklake replay-server`: composing handlers, capture and an output.

One process runs any number of feeds (a venue and some of its symbols, one connection each),
all into one output:

* the bus (default): a Publisher batches records into envelopes on JetStream, spooling to
  `<home>/spool` while the bus is away; the sinks take it from there.
* a lake directory (`--out`): records written straight to Parquet in the lake layout every
  `flush_s` seconds and at shutdown (named by flush time, never overwritten), for runs
  without the stack.

Frames the normalizer could not read are appended to `<home>/dead_letters/<venue>.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter
from ingest.dead_letters import append_dead_letters
from ingest.feed_handler import FeedHandler, HandlerConfig
from ingest.publisher import BusConfig, Publisher
from ingest.replay_server import Faults, ReplayServer
from ingest.resume import published_trades
from ingest.sharding import select
from ingest.synthetic.feed import synthetic_feed
from ingest.synthetic.market import Rates, Scenario, parse_rates, parse_scenario
from ingest.venues.interface import UnknownChannel, VenueConnection
from ingest.venues.names import STANDARD_CHANNELS, venue_channels, venue_symbols
from ingest.venues.registry import CONNECTIONS, NORMALIZERS
from normalize.emitted import Emitted
from normalize.records import BookDeltas, Record, Trade
from storage.lake_write import write_records
from ticklake.settings import SettingsError


@dataclass(frozen=True)
class Feed:
    venue: str
    symbols: tuple[str, ...]
    label: str = ""
    """Distinguishes feeds of one venue (capture file names, metrics); empty when unique."""


class Output(Protocol):
    rows: Counter[str]

    @property
    def dead_letters(self) -> int: ...

    def __call__(self, out: Emitted) -> None: ...

    async def tick(self) -> None:
        """Called every flush_s seconds."""

    async def close(self) -> None:
        """Write or acknowledge everything handed over."""

    def destination(self) -> str: ...


@dataclass
class _DeadLetters:
    root: Path
    count: int = 0

    def keep(self, out: Emitted) -> None:
        if out.dead_letters:
            by_venue: dict[str, list] = {}  # type: ignore[type-arg]
            for letter in out.dead_letters:
                by_venue.setdefault(letter.venue, []).append(letter)
            for venue, letters in by_venue.items():
                self.count += append_dead_letters(self.root / f"{venue}.jsonl", letters)


@dataclass
class LakeOutput:
    root: str
    dead: _DeadLetters
    rows: Counter[str] = field(default_factory=Counter)
    buffer: list[Record] = field(default_factory=list)

    @property
    def dead_letters(self) -> int:
        return self.dead.count

    def __call__(self, out: Emitted) -> None:
        self.buffer.extend(out.records)
        self.dead.keep(out)

    async def tick(self) -> None:
        records, self.buffer = self.buffer, []
        if records:
            self.rows.update(write_records(self.root, records, f"ingest-{time.time_ns()}"))

    async def close(self) -> None:
        await self.tick()

    def destination(self) -> str:
        return self.root


@dataclass
class BusOutput:
    publisher: Publisher
    dead: _DeadLetters
    rows: Counter[str] = field(default_factory=Counter)

    @property
    def dead_letters(self) -> int:
        return self.dead.count

    def __call__(self, out: Emitted) -> None:
        if out.records:
            self.publisher.submit(out.records)
            rows = self.rows
            for record in out.records:
                rows[record.record_type] += record.row_count() if type(record) is BookDeltas else 1
        self.dead.keep(out)

    async def tick(self) -> None:
        return None

    async def close(self) -> None:
        await self.publisher.close()

    def destination(self) -> str:
        spooled = f", {self.publisher.spool.depth} envelopes left in the spool" if self.publisher.spool.depth else ""
        return f"bus ({self.publisher.acked_records:,} records acknowledged{spooled})"


def plan_feeds(venues: Sequence[str], symbol_lists: Sequence[Sequence[str]],
               shard: tuple[int, int] | None, name: str = "") -> list[Feed]:
    """Pair each --venue with its --symbols, keep this shard's symbols, label repeated venues; `name`
    (a configured feed's) leads the label, so two processes' feeds of one venue never share a capture
    or spool file."""
    shard_label = "-".join(part for part in (name, f"shard{shard[0]}of{shard[1]}" if shard else "") if part)
    counts = Counter(venues)
    feeds = []
    for index, (venue, symbols) in enumerate(zip(venues, symbol_lists, strict=True)):
        mine = tuple(select(symbols, shard))
        if not mine:
            continue
        label = "-".join(part for part in (shard_label, f"feed{index}" if counts[venue] > 1 else "") if part)
        feeds.append(Feed(venue, mine, label))
    return feeds


def make_connection(venue: str, symbols: Sequence[str], ws_url: str | None = None, rest_url: str | None = None,
                    channels: Sequence[str] | None = None,
                    route_paths: Mapping[str, str] | None = None) -> VenueConnection:
    """The venue's connection with the user's overrides: base URLs (a replay server), channels (by
    standard name or the venue's own), symbols (by normalized id or the venue's own) and route paths
    that replace the documented ones by name. Unknown channels, instruments or routes raise
    UnknownChannel or UnknownInstrument, one-line user errors."""
    cls = CONNECTIONS[venue]
    overrides: dict[str, object] = {k: v for k, v in (("ws_base", ws_url), ("rest_base", rest_url)) if v}
    if channels:
        overrides["channels"] = venue_channels(cls, channels)
    names = venue_symbols(cls, symbols)
    try:
        connection = cls(symbols=names, **overrides)  # type: ignore[call-arg]
    except UnknownChannel as exc:
        raise UnknownChannel(f"{exc}; or a standard name: {', '.join(STANDARD_CHANNELS)}") from None
    if route_paths:
        unknown = set(route_paths) - set(connection.route_paths)
        if unknown:
            raise UnknownChannel(f"{venue} has no route {', '.join(sorted(unknown))} (routes: "
                                 f"{', '.join(connection.route_paths)})")
        connection = dataclasses.replace(connection,  # type: ignore[type-var]
                                         route_paths={**connection.route_paths, **route_paths})
    return connection


def bus_output(nats_url: str, home: Path, feeds: Sequence[Feed], max_age_s: float = BusConfig.max_age_s,
               max_bytes: int = BusConfig.max_bytes) -> BusOutput:
    """Publishing to the ticks stream, created (or updated) with these limits; JetStream's duplicate
    window cannot outlast a message, so it is at most `max_age_s`."""
    name = "+".join(f"{f.venue}-{f.label}" if f.label else f.venue for f in feeds)
    config = BusConfig(url=nats_url, max_age_s=max_age_s, max_bytes=max_bytes,
                       duplicate_window_s=min(BusConfig.duplicate_window_s, max_age_s))
    publisher = Publisher(config, home / "spool" / f"ingest-{name}.spool")
    return BusOutput(publisher, _DeadLetters(home / "dead_letters"))


def lake_output(root: str, home: Path) -> LakeOutput:
    return LakeOutput(root, _DeadLetters(home / "dead_letters"))


async def run_ingest(feeds: Sequence[Feed], output: Output, capture_root: Path | None, ws_url: str | None,
                     rest_url: str | None, duration_s: float | None, flush_s: float = 5.0,
                     metrics_port: int = 0, config: HandlerConfig | None = None,
                     channels: Sequence[str] | None = None,
                     route_paths: Mapping[str, str] | None = None) -> list[FeedHandler]:
    from ticklake import metrics

    if isinstance(output, BusOutput):
        await output.publisher.start()
    handlers, captures = [], []
    resumed: dict[str, list[Trade]] = {}
    """Per venue, the last trades on the bus: read once, whatever the number of its feeds here."""
    for feed in feeds:
        connection = make_connection(feed.venue, feed.symbols, ws_url, rest_url, channels, route_paths)
        capture = CaptureWriter(capture_root, feed.venue, writer=feed.label) if capture_root else None
        captures.append(capture)
        normalizer = NORMALIZERS[feed.venue]()
        if isinstance(output, BusOutput):  # carry on from what a handler before this one published
            if feed.venue not in resumed:
                resumed[feed.venue] = await published_trades(output.publisher.js, output.publisher.config, feed.venue)
            normalizer.resume_trades(resumed[feed.venue], connection.channels)
        handlers.append(FeedHandler(connection, normalizer, output, capture, config or HandlerConfig(),
                                    label=feed.label))
    disks: dict[str, str | Path] = {"captures": capture_root} if capture_root else {}
    if isinstance(output, BusOutput):
        disks["spool"] = output.publisher.spool.path.parent
    metrics.serve(metrics_port, lambda: handlers, disks=disks)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(handler.run(stop)) for handler in handlers]
    started = time.monotonic()
    try:
        while not stop.is_set():
            left = flush_s if duration_s is None else max(0.0, duration_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(flush_s, left))
            await output.tick()
            if duration_s is not None and time.monotonic() - started >= duration_s:
                stop.set()
        await asyncio.gather(*tasks)
    finally:
        await output.close()
        for capture in captures:
            if capture is not None:
                try:
                    capture.close()
                except OSError:
                    capture.abandon()  # the handler's last flush said why
    return handlers


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SyntheticOptions:
    """`ticklake replay-server --synthetic`'s options, checked (SettingsError for a user's mistake)."""

    instruments: int | tuple[str, ...]
    rates: Rates
    duration_s: float | None
    start_ns: int
    seed: int
    scenarios: tuple[Scenario, ...]
    channels: tuple[str, ...]
    truth: Path | None

    @classmethod
    def parse(cls, instruments: str, rate: str, duration_s: float, start: str, seed: int, scenarios: Sequence[str],
              channels: Sequence[str], truth: Path | None) -> SyntheticOptions:
        try:
            names: int | tuple[str, ...] = int(instruments) if instruments.isdigit() else tuple(
                filter(None, instruments.split(",")))
            if not names:
                raise ValueError(f"--instruments {instruments!r}: give a count or base assets (BTC,ETH)")
            when = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(UTC) if start else None
            start_ns = time.time_ns() if when is None else (when - EPOCH) // timedelta(microseconds=1) * 1000
            if duration_s < 0:
                raise ValueError("--duration must be >= 0 (0: endless)")
            return cls(names, parse_rates(rate), duration_s or None, start_ns, seed,
                       tuple(parse_scenario(s) for s in scenarios), tuple(channels), truth)
        except ValueError as exc:
            raise SettingsError(str(exc).replace("Invalid isoformat string", "--start is not ISO 8601")) from None


async def run_replay_server(venue: str, captures: Sequence[Path], port: int, speed: float, faults: Faults,
                            clients: int = 1, synthetic: SyntheticOptions | None = None) -> None:
    if synthetic is None:
        frames = list(read_frames(captures))
        server = ReplayServer(venue, frames, speed=speed, faults=faults, port=port, min_clients=clients)
        what = f"{sum(f.kind == 'ws' for f in frames)} frames of {venue}"
        feed = None
    else:
        try:
            feed = synthetic_feed(venue, synthetic.instruments, synthetic.rates, synthetic.start_ns,
                                  synthetic.duration_s, synthetic.seed, synthetic.scenarios, synthetic.channels,
                                  keep_truth=synthetic.truth is not None)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        server = ReplayServer(venue, feed.rest_frames(), speed=speed, faults=faults, port=port, min_clients=clients,
                              playback=feed, withheld=feed.withheld)
        what = (f"a synthetic {venue} market of {len(feed.encoder.symbols)} instruments "
                f"({', '.join(feed.encoder.symbols[:5])}{'...' if len(feed.encoder.symbols) > 5 else ''})")
    await server.start()
    print(f"replaying {what}: WebSocket {server.url}, REST {server.rest_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    if feed is not None and synthetic is not None and synthetic.truth is not None:
        feed.write_truth(synthetic.truth, sorted(i for i in faults.skip if i < server.position))
        print(f"ground truth: {synthetic.truth}", flush=True)
