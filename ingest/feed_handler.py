"""The live feed handler: one venue connection, its capture, its normalizer, its REST calls.

Tasks and the bounded queue between them:

    socket reader --put_nowait--> queue (bounded) --> processor: capture, normalize, emit
                                    ^                      | snapshot requests
    REST fetcher (rate-limited) ----+ (put, may wait) <----+

The reader never waits on anything downstream: when the queue is full the frame is counted,
logged and recorded as a `queue_overflow` gap (depth gaps then resync through the sequence
rules; other channels carry the GAP_BEFORE of that journal entry in time). Reconnects use
jittered exponential backoff; a connection silent for `stale_after_s` is recorded as `stale`
and replaced; connections are recycled before the venue's own cut. Every event lands in the
feed_status journal with the connection id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ingest.capture_log import CaptureWriter
from ingest.frames import CLOCK_HEADER, RECV_HEADER, STAMP, Frame
from ingest.normalizing import normalize_frame
from ingest.venues.interface import Route, VenueConnection
from normalize.emitted import Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus
from normalize.trade_ids import Backfill
from normalize.venues.interface import VenueNormalizer

log = logging.getLogger(__name__)

Sink = Callable[[Emitted], None]
SILENT = "silent after connect"
_RETRIED_CLIENT_ERRORS = (408, 418, 429)
"""Request timeout, and Binance's and everyone's rate limits: worth another try after a pause."""


@dataclass
class HandlerStats:
    frames: int = 0
    overflows: int = 0
    connects: int = 0
    disconnects: int = 0
    stale: int = 0
    silent_after_connect: int = 0
    snapshots: int = 0
    backfills: int = 0
    rest_errors: int = 0


@dataclass
class HandlerConfig:
    queue_size: int = 100_000
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 30.0
    poll_interval_s: float = 60.0
    clock_skew_s: float = 0.0
    """A receive lag beyond this over a whole clock_window_s is journaled clock_skew (see _watch_clock); 0: not
    watched (replays of old recordings stamped with today's clock lag by years)."""
    clock_window_s: float = 10.0
    capture_retry_s: float = 5.0
    """After a capture write failed (a full disk), how long until the next try."""
    metadata_every_s: float = 3600.0
    """Instrument metadata is fetched at start and again this often: venues list and delist
    symbols and change tick sizes and funding intervals while a handler runs."""
    rest_timeout_s: float = 10.0
    resubscribe_retry_s: float = 5.0
    """After a resubscribe for a book snapshot, how long before asking again if none came."""
    top_depth: int = 0
    """Levels per side of the periodic top-N book snapshots (book_top); 0: none."""
    top_every_s: float = 1.0
    silent_after_s: float | None = None
    """Overrides every route's first_data_within_s (the probe and tests shorten it)."""
    clock: str = "local"
    """`local`: ts_recv is this host's clock when a frame arrives (live venues). `recorded`: the
    replay server's copy of the capture's own receive time (replays keep their real times)."""


@dataclass
class _Link:
    """One route's connection as it is now."""

    route: Route
    connection_id: str = ""
    ws: websockets.ClientConnection | None = None
    opened: float = 0.0
    """When the current connection's handshake completed (monotonic)."""
    last_frame: float = 0.0
    data_seen: bool = False
    attempted: float = -math.inf
    """When a connection was last attempted (monotonic)."""
    ending: str = ""
    """Why we are closing it, once we are (the reader returns this instead of an error)."""

    async def close(self, reason: str) -> None:
        if not self.ending and self.ws is not None:
            self.ending = reason
            await self.ws.close()


class FeedHandler:
    def __init__(self, connection: VenueConnection, normalizer: VenueNormalizer, sink: Sink,
                 capture: CaptureWriter | None = None, config: HandlerConfig | None = None, label: str = "") -> None:
        self.connection, self.normalizer, self.sink, self.capture = connection, normalizer, sink, capture
        self.config = config or HandlerConfig()
        self.label = label
        """Which shard of the venue this handler runs (metrics label)."""
        self.stats = HandlerStats()
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=self.config.queue_size)
        self._pending_snapshots: set[str] = set()
        """Symbols with a snapshot fetched or being fetched and not yet processed."""
        self._snapshot_urls: dict[str, str] = {}
        self._rest_slot = asyncio.Lock()
        self._last_rest = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._backfills: set[asyncio.Task[None]] = set()
        self.links: dict[str, _Link] = {}
        """Route name -> its connection."""
        self._clock_headers = {CLOCK_HEADER: "recorded"} if self.config.clock == "recorded" else None
        self._lags: tuple[int, int] = (2**63, -(2**63))
        """The smallest and largest receive lag (ns) of this clock window."""
        self._lags_since = time.monotonic()
        self._clock_skewed = False
        self._capture_missed = 0
        """Frames not captured since a capture write failed (0: capturing)."""
        self._capture_retry_at = 0.0
        self.on_frame: Callable[[Frame], None] | None = None
        """Called with every frame before it is normalized (the probe counts them per channel)."""

    @property
    def connection_id(self) -> str:
        """The connection REST answers are journaled under: the first one carrying books."""
        link = next((link for link in self.links.values() if link.route.book_channel), None) or next(
            iter(self.links.values()), None)
        return link.connection_id if link else ""

    def _book_link(self, symbol: str) -> _Link | None:
        return next((link for link in self.links.values() if link.route.book_channel and symbol in link.route.symbols),
                    None)

    # -- journal ------------------------------------------------------------------------------
    def _journal(self, event: str, detail: str, connection_id: str, level: int = logging.INFO) -> None:
        now = time.time_ns()
        record = FeedStatus(self.connection.venue, "", "", now, now, None, None, TS_EVENT_IMPUTED, event,
                            connection_id, detail, None, None)
        self.sink(Emitted(records=[record]))
        log.log(level, "%s %s %s: %s", self.connection.venue, connection_id, event, detail)

    # -- the run loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.rest_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            processor = asyncio.create_task(self._process())
            pollers = [asyncio.create_task(self._poll(stop, self.connection.poll_urls, self.config.poll_interval_s)),
                       asyncio.create_task(self._poll(stop, self.connection.metadata_urls,
                                                      self.config.metadata_every_s, wait_first=True))]
            if self.config.top_depth:
                self._tasks.add(asyncio.create_task(self._tops(stop)))
            for url in self.connection.metadata_urls():
                await self._fetch(url)
            try:
                await asyncio.gather(*(self._connect_loop(route, stop) for route in self.connection.routes()))
            finally:
                if self._backfills:  # trades found missing: worth the wait of one REST round trip
                    await asyncio.wait(self._backfills, timeout=self.config.rest_timeout_s)
                for task in [*pollers, *self._tasks]:
                    task.cancel()
                await asyncio.gather(*pollers, *self._tasks, return_exceptions=True)
                await self.queue.join()
                processor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await processor
                if self.capture is not None:
                    try:
                        self.capture.flush()
                    except OSError as exc:  # a full disk at the last flush: said once, as while running
                        log.warning("%s: the capture's last frames were not written: %s", self.connection.venue,
                                    exc.strerror or exc)

    async def _connect_loop(self, route: Route, stop: asyncio.Event) -> None:
        """Keep one route's connection up. The backoff restarts only once a connection has carried
        data: a venue that accepts the handshake and then sends nothing (a retired or wrong URL)
        is retried ever more slowly, one journal row and one log line per attempt."""
        link = _Link(route)
        self.links[route.name] = link
        attempt = 0
        while not stop.is_set():
            await self._connect_turn(link, stop)
            if stop.is_set():
                return
            connection_id = link.connection_id = f"{self.connection.venue}-{uuid.uuid4().hex[:10]}"
            link.data_seen = False
            reason = "closed"
            try:
                async with websockets.connect(route.url, max_size=None, open_timeout=10, compression=None,
                                              additional_headers=self._clock_headers) as ws:
                    self.stats.connects += 1
                    # while a route keeps failing, its connects and disconnects are journaled but
                    # logged at debug: the failure's own line (or the disconnect's) says enough
                    self._journal("connect", f"{route.name} {route.url}"[:200], connection_id,
                                  logging.INFO if attempt == 0 else logging.DEBUG)
                    for message in route.subscribe:
                        await ws.send(message)
                    link.ws = ws
                    pinger = asyncio.create_task(self._heartbeat(ws))
                    try:
                        reason = await self._read(link, stop)
                    finally:
                        link.ws = None
                        pinger.cancel()
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if link.data_seen:
                attempt = 0
            self.stats.disconnects += 1
            quiet = attempt > 0 and reason == SILENT  # its silent_after_connect line said it
            self._journal("disconnect", reason, connection_id, logging.DEBUG if quiet else logging.INFO)
            if stop.is_set():
                return
            delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2**attempt)
            delay *= random.uniform(0.5, 1.0)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _connect_turn(self, link: _Link, stop: asyncio.Event) -> None:
        """Wait until the venue's rate of connection attempts allows this route another."""
        wait = link.attempted + self.connection.reconnect_interval_s - time.monotonic()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        link.attempted = time.monotonic()

    async def _read(self, link: _Link, stop: asyncio.Event) -> str:
        """Receive until the connection ends; returns why. The per-frame work is a receive, two
        clock reads and a put_nowait: stop, staleness and the age limit are watched by a separate
        task that closes the socket, because a task or timer per frame would cost twice the
        receive itself (benchmarks/bench_ws.py). Frames are classified only until the first one
        that carries data."""
        ws, connection_id = link.ws, link.connection_id
        assert ws is not None
        link.ending = ""
        watchdog = asyncio.create_task(self._watch(link, stop))
        queue, stats, channel_of = self.queue, self.stats, self.connection.channel_of
        recorded = self.config.clock == "recorded"
        seen = False
        try:
            while True:
                message = await ws.recv(decode=False)
                link.last_frame = time.monotonic()
                stats.frames += 1
                if recorded:  # the replay server put the capture's receive time in front
                    ts_recv, message = STAMP.unpack_from(message)[0], message[STAMP.size:]
                else:
                    ts_recv = time.time_ns()
                try:
                    queue.put_nowait(Frame(ts_recv, "ws", message, "", connection_id))
                except asyncio.QueueFull:
                    stats.overflows += 1
                    self._journal("queue_overflow", f"frame dropped: queue of {queue.maxsize} full", connection_id)
                if not seen and channel_of(message) is not None:
                    seen = link.data_seen = True
        except ConnectionClosed:
            if link.ending:
                return link.ending
            raise
        finally:
            watchdog.cancel()

    async def _heartbeat(self, ws: websockets.ClientConnection) -> None:
        """The venue's application-level ping, if it wants one (its pongs are frames like any
        other: captured, and ignored by the normalizer)."""
        beat = self.connection.heartbeat()
        if beat is None:
            return
        interval, text = beat
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                await ws.send(text)

    async def _watch(self, link: _Link, stop: asyncio.Event) -> None:
        """Close the socket on stop, on silence longer than stale_after_s, on no data frame within
        the route's bound after the handshake, and before the venue's connection age limit;
        `link.ending` tells the reader which."""
        connection_id, route = link.connection_id, link.route
        opened = link.opened = link.last_frame = time.monotonic()
        stale_after, max_age = self.config.stale_after_s, self.connection.max_connection_age_s
        first_data = route.first_data_within_s if self.config.silent_after_s is None else self.config.silent_after_s
        first_data = math.inf if first_data is None else first_data
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, stale_after / 4, max_age / 4, first_data / 4))
            now = time.monotonic()
            if link.ending:
                return
            if stop.is_set():
                reason = "stopped"
            elif now - opened >= max_age:
                reason = "planned reconnect before the venue's connection age limit"
            elif not link.data_seen and now - opened >= first_data:
                self.stats.silent_after_connect += 1
                self._journal("silent_after_connect", f"no data frame {first_data:g} s after connecting to "
                              f"route {route.name} {route.url}"[:200], connection_id, logging.WARNING)
                reason = SILENT
            elif now - link.last_frame >= stale_after:
                self.stats.stale += 1
                self._journal("stale", f"no frame for {stale_after} s", connection_id, logging.WARNING)
                reason = "stale"
            else:
                continue
            await link.close(reason)
            return

    # -- processing -----------------------------------------------------------------------------
    async def _process(self) -> None:
        while True:
            frame = await self.queue.get()
            try:
                if self.capture is not None:
                    self._capture(frame)
                if self.on_frame is not None:
                    self.on_frame(frame)
                out = Emitted()
                self.normalizer.connection_id = frame.connection_id or self.normalizer.connection_id
                normalize_frame(self.normalizer, frame, out)
                if self.config.clock_skew_s and frame.kind == "ws" and out.records:
                    self._watch_clock(out.records[0].ts_recv - out.records[0].ts_event, frame.connection_id)
                if frame.kind == "rest" and frame.url in self._snapshot_urls:
                    self._pending_snapshots.discard(self._snapshot_urls.pop(frame.url))
                for symbol in out.snapshot_requests - self._pending_snapshots:
                    self._pending_snapshots.add(symbol)
                    self._spawn(self._snapshot(symbol))
                for request in out.backfill_requests:
                    self._spawn(self._backfill(request), self._backfills)
                for url in out.rest_requests:
                    self._spawn(self._fetch_page(url))
                if out.reconnect:
                    self._spawn(self._replace(frame.connection_id, out.reconnect))
                if out.replies:
                    self._spawn(self._reply(frame.connection_id, out.replies))
                self.sink(out)
            except Exception:  # a bug outside the normalizer (fetching, publishing) must not stop the feed
                log.exception("handling a %s frame failed", self.connection.venue)
            finally:
                self.queue.task_done()

    def _watch_clock(self, offset_ns: int, connection_id: str) -> None:
        """Compare this host's clock with the venue's: over each clock_window_s, the receive lag (ts_recv -
        ts_event) of every frame's first record. A window whose smallest lag is above clock_skew_s (our
        clock ahead, or every frame that late) or whose largest is below -clock_skew_s (our clock behind)
        is one `clock_skew` journal row and one warning; `clock_ok` when a window is fine again. Receive
        lags are never assumed positive: a recorder's clock was measured 1.27 s behind Binance's."""
        self._lags = (min(self._lags[0], offset_ns), max(self._lags[1], offset_ns))
        now = time.monotonic()
        if now - self._lags_since < self.config.clock_window_s:
            return
        low, high = self._lags
        self._lags, self._lags_since = (2**63, -(2**63)), now
        limit = self.config.clock_skew_s * 1e9
        skew = low if low > limit else high if high < -limit else 0
        lags = f"receive lag {low / 1e9:,.3f} to {high / 1e9:,.3f} s over {self.config.clock_window_s:g} s"
        if skew and not self._clock_skewed:
            where = "ahead of" if skew > 0 else "behind"
            self._journal("clock_skew", f"this host's clock is about {abs(skew) / 1e9:,.1f} s {where} the venue's "
                          f"({lags})", connection_id, logging.WARNING)
        elif not skew and self._clock_skewed:
            self._journal("clock_ok", lags, connection_id)
        self._clock_skewed = bool(skew)

    def _capture(self, frame: Frame) -> None:
        """Append the frame to the capture. A write that fails (a full disk) is one warning and one
        `capture_failed` journal row, not a traceback per frame: the frames are still normalized and
        published, only not captured, and the capture is tried again every capture_retry_s, journaled
        `capture_resumed` with the count of frames it missed."""
        assert self.capture is not None
        if self._capture_missed and time.monotonic() < self._capture_retry_at:
            self._capture_missed += 1
            return
        try:
            self.capture.append(frame)
            if self._capture_missed:
                self.capture.flush()  # written through, not just buffered, before it counts as resumed
        except OSError as exc:
            self.capture.abandon()
            self._capture_retry_at = time.monotonic() + self.config.capture_retry_s
            if not self._capture_missed:
                self._journal("capture_failed", f"{exc.strerror or exc} writing {self.capture.root}: frames are "
                              "published but not captured until it can be written", frame.connection_id,
                              logging.WARNING)
            self._capture_missed += 1
            return
        if self._capture_missed:
            self._journal("capture_resumed", f"{self._capture_missed:,} frames were not captured",
                          frame.connection_id, logging.WARNING)
            self._capture_missed = 0

    async def _fetch_page(self, url: str) -> None:
        """The next page of a paged answer, at the venue's REST pace."""
        await self._rest_turn()
        await self._fetch(url)

    async def _replace(self, connection_id: str, reason: str) -> None:
        """The venue announced it will close this connection: close it now, planned, and the
        route's loop connects again at once (its backoff restarts: the connection carried data)."""
        for link in self.links.values():
            if link.connection_id == connection_id:
                await link.close(f"planned reconnect: {reason}")

    async def _reply(self, connection_id: str, texts: tuple[str, ...]) -> None:
        """Answer the venue on the connection the asking frame came on (if it is still open)."""
        for link in self.links.values():
            if link.connection_id == connection_id and link.ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    for text in texts:
                        await link.ws.send(text)

    def _spawn(self, work: Coroutine[None, None, None], *groups: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(work)
        for group in (self._tasks, *groups):
            group.add(task)
            task.add_done_callback(group.discard)

    def idle(self) -> bool:
        """Nothing received waits in the queue and no book snapshot or trade backfill is pending."""
        return self.queue.empty() and not self._pending_snapshots and not self._backfills

    async def _rest_turn(self) -> None:
        """Wait for this connection's turn at the venue's rate for snapshots and backfills."""
        async with self._rest_slot:
            wait = self._last_rest + 1 / self.connection.snapshots_per_second - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_rest = time.monotonic()

    async def _snapshot(self, symbol: str) -> None:
        """Get one symbol a fresh book, respecting the venue-wide snapshot rate: over REST, or by
        subscribing its book channel again where the venue resends snapshots on the socket. The
        symbol stays pending until the processor has the snapshot, so none is asked twice."""
        await self._rest_turn()
        self.stats.snapshots += 1
        url = self.connection.snapshot_url(symbol)
        if url is None:
            await self._resubscribe(symbol)
            return
        self._snapshot_urls[url] = symbol
        if not await self._fetch(url):
            self._snapshot_urls.pop(url, None)
            self._pending_snapshots.discard(symbol)

    async def _backfill(self, request: Backfill) -> None:
        """Fetch trades the normalizer found missing, where the venue serves them; the page goes
        through the queue like any REST body and the normalizer journals the outcome. If every
        attempt fails the gap stays journaled with no backfill_done after it."""
        url = self.connection.backfill_url(request)
        if url is None:
            return
        await self._rest_turn()
        self.stats.backfills += 1
        if not await self._fetch(url):
            log.warning("%s trades %s %d..%d not backfilled", self.connection.venue, request.symbol,
                        request.first_id, request.last_id)

    async def _resubscribe(self, symbol: str) -> None:
        link = self._book_link(symbol)
        ws = link.ws if link else None
        try:
            if ws is not None:
                for message in self.connection.resubscribe_messages(symbol):
                    await ws.send(message)
        except ConnectionClosed:
            pass  # the reconnect subscribes everything again
        finally:
            # the snapshot comes back as an ordinary frame; if it does not, ask again later
            await asyncio.sleep(self.config.resubscribe_retry_s)
            self._pending_snapshots.discard(symbol)

    async def _fetch(self, url: str, attempts: int = 5) -> bool:
        """GET the URL, or POST its fragment as a JSON body (see ingest.venues.interface). A client
        error other than a timeout or a rate limit (an endpoint or symbol the venue does not know)
        is not tried again: the answer would be the same."""
        for attempt in range(1, attempts + 1):
            final = attempt == attempts
            try:
                async with rest_request(self._session, url) as response:
                    body = await response.read()
                    ts_recv = time.time_ns()
                    if self.config.clock == "recorded" and RECV_HEADER in response.headers:
                        ts_recv = int(response.headers[RECV_HEADER])
                    if response.status == 200:
                        await self.queue.put(Frame(ts_recv, "rest", body, url, self.connection_id))
                        return True
                    reason = f"HTTP {response.status}"
                    final |= 400 <= response.status < 500 and response.status not in _RETRIED_CLIENT_ERRORS
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.stats.rest_errors += 1
            log.warning("REST %s failed (%s), attempt %d%s", url, reason, attempt, ", giving up" if final else "")
            if final:
                return False
            await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
        return False

    def book_tops(self, depth: int) -> Emitted:
        """Top-`depth` snapshots of every book in sync, now (on demand), also handed to the sink."""
        out = Emitted()
        self.normalizer.book_tops(depth, time.time_ns(), out)
        self.sink(out)
        return out

    async def _tops(self, stop: asyncio.Event) -> None:
        """Snapshots on a wall-clock grid (every top_every_s), so hosts and runs line up."""
        every_ns = int(self.config.top_every_s * 1e9)
        while not stop.is_set():
            now = time.time_ns()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ((now // every_ns + 1) * every_ns - now) / 1e9)
            if not stop.is_set():
                self.book_tops(self.config.top_depth)

    async def _poll(self, stop: asyncio.Event, urls: Callable[[], list[str]], every_s: float,
                    wait_first: bool = False) -> None:
        """Fetch `urls()` every `every_s` seconds (the first time at once, or after `every_s`), each
        once a round: the next round is the retry."""
        wait = wait_first
        while not stop.is_set():
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
                if stop.is_set():
                    return
            wait = True
            for url in urls():
                await self._fetch(url, attempts=1)


def rest_request(session: aiohttp.ClientSession, url: str) -> contextlib.AbstractAsyncContextManager[
        aiohttp.ClientResponse]:
    """GET the URL, or POST its fragment as a JSON body (see ingest.venues.interface): how every REST
    endpoint of a venue connection is asked, by the handler and by whoever reads its metadata."""
    target, _, post_body = url.partition("#")
    if post_body:
        return session.post(target, data=post_body.encode(), headers={"Content-Type": "application/json"})
    return session.get(target)


@dataclass
class CollectingSink:
    """A sink that keeps everything in memory (offline runs, tests, the lake writer's buffer)."""

    emitted: Emitted = field(default_factory=Emitted)

    def __call__(self, out: Emitted) -> None:
        self.emitted.records.extend(out.records)
        self.emitted.dead_letters.extend(out.dead_letters)
