"""A local stand-in for a venue: serves recorded frames over WebSocket and REST on one port.

The real handler runs unchanged against it by URL override. One playback cursor is shared by all
connections (a reconnecting client does not get old frames again, as with a real venue); the
cursor waits while fewer than `min_clients` are connected and subscribed (at the start) or none
is (later: a reconnecting client counts once it has subscribed again), so tests
are deterministic. Speed: real time times
`speed`, or as fast as the client reads with speed 0. Frames without a receive time (JSONL
fixtures) are never waited for: merged with a timed capture they play first, at once, and the
playback clock starts at the first timed frame.

A handler run with `--clock recorded` asks (CLOCK_HEADER at the handshake) for each frame with the
capture's own receive time in front of it, and REST answers carry the playback position's
(RECV_HEADER): replayed sessions keep their real receive times and latencies.

A synthetic venue (ingest/synthetic) plays the same way: `playback` is then its frames,
generated as they play (possibly without end), and `withheld` the indexes an outage keeps from
the clients (observed, never sent, as `skip`).

`GET /_replay` answers with the playback's progress (frames, played, clients, done), so a script
can follow it and stop the handler once every frame is on its socket (see `done`).

Faults, for tests and drills: `drop_after` closes the first connection after that many frames
were sent on it; `skip` never sends the frames at those playback indexes (a sequence gap);
`corrupt_checksum` alters the checksum of those frames, for venues that send one; `silence`
holds every frame from a playback index on for a while, connections open (a venue gone quiet).

Routes: each connection reaches one of the venue's routes by its URL path, and a stream is sent
only on a route that serves it (Binance USD-M: `/public` or `/market`; its retired root is served
as `/public`, as the venue does), so a handler on a wrong route hears nothing, as it would live.

Per-venue protocol (routes, subscription, which stream a frame belongs to, REST answers) lives in a
ReplayProtocol; `PROTOCOLS` maps venue ids to them. Served with aiohttp: venues answer REST over
GET and POST (Hyperliquid's `/info` takes a JSON body), on the same port as the WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Container, Iterable, Sequence, Sized
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ingest.frames import CLOCK_HEADER, RECV_HEADER, STAMP, Frame
from ingest.venues.interface import ReplayProtocol
from ingest.venues.registry import PROTOCOLS

SUBSCRIBE_GRACE_S = 1.0
SETTLE_S = 0.2
"""Playback starts once no client has connected or changed its subscriptions for this long: a venue subscribed
by several messages (Hyperliquid: one per channel and coin) has all of them applied, and a handler
opening one connection per route (Binance USD-M) has all of them open, before the first frame."""
STATUS_PATH = "/_replay"


@dataclass
class Faults:
    drop_after: int | None = None
    skip: set[int] = field(default_factory=set)
    corrupt_checksum: set[int] = field(default_factory=set)
    silence: tuple[int, float] | None = None
    """(playback index, seconds) to pause before that frame."""


@dataclass
class _Client:
    connection: web.WebSocketResponse
    streams: set[str]
    number: int
    route: str
    recorded_clock: bool = False
    sent: int = 0
    closed: bool = False
    queue: asyncio.Queue[Frame | str] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    """Played frames and replies to the client's messages (str), in the order they go out."""
    opened: float = field(default_factory=time.monotonic)


class ReplayServer:
    def __init__(self, venue: str, frames: Sequence[Frame], speed: float = 0.0, faults: Faults | None = None,
                 host: str = "127.0.0.1", port: int = 0, min_clients: int = 1, playback: Iterable[Frame] | None = None,
                 withheld: Container[int] = frozenset()) -> None:
        self.venue = venue
        self.protocol: ReplayProtocol = PROTOCOLS[venue](frames)  # type: ignore[call-arg]
        self.ws_frames: Iterable[Frame] = [f for f in frames if f.kind == "ws"] if playback is None else playback
        self.withheld = withheld
        self.speed, self.faults = speed, faults or Faults()
        self.host, self.port = host, port
        self.min_clients = min_clients
        self.clients: list[_Client] = []
        self.undelivered: list[bytes] = []
        """Frames lost, as on a venue: queued for a connection that closed before they were sent, or
        played while no connection that had subscribed their stream on a route serving it was open."""
        self._served: dict[tuple[str, str], bool] = {}
        self._ever_served: set[str] = set()
        self.connections = 0
        self.rest_requests: list[str] = []
        """The path of every REST request, in order."""
        self.position = 0
        self.recorded_now = next((f.ts_recv for f in frames if f.ts_recv), 0)
        """The recorded receive time of the playback position (RECV_HEADER)."""
        self.clock_offset_ns = 0
        """Wall clock (time.time_ns) minus frame time when playback started: at speed 1, a frame due
        at time t is sent at t + clock_offset_ns, unless the server falls behind (max_late_s)."""
        self.max_late_s = 0.0
        """The furthest a frame was played behind its due time (speed > 0): the server could not
        keep the pace, or a client's queue was full."""
        self._last_change = 0.0
        """When a client last connected or changed its subscriptions (pings do not count)."""
        self.finished = asyncio.Event()
        self._client_present = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._playback: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._playback = asyncio.create_task(self._play())

    async def stop(self) -> None:
        if self._playback:
            self._playback.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._playback
        for client in list(self.clients):
            await client.connection.close()
        if self._runner:
            await self._runner.cleanup()

    def status(self) -> dict[str, object]:
        """The playback's progress, as `GET /_replay` answers it (frames: None for a synthetic
        market, generated as it plays)."""
        frames = len(self.ws_frames) if isinstance(self.ws_frames, Sized) else None
        return {"venue": self.venue, "frames": frames, "played": self.position, "max_late_s": self.max_late_s,
                "clients": len(self.clients), "done": self.done()}

    def done(self) -> bool:
        """Every frame was played and written to the connected clients' sockets (an uncompressed
        frame is written as it leaves a client's queue): a client that closes its connection now
        still reads them all before the close reply."""
        return self.finished.is_set() and all(c.queue.empty() for c in self.clients)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.path == STATUS_PATH:
            return web.json_response(self.status())
        self.rest_requests.append(request.path)
        query = {key: request.query.getall(key) for key in request.query}
        body = self.protocol.rest(request.method, request.path, query, await request.read())
        headers = {RECV_HEADER: str(self.recorded_now)}
        if body is None:
            return web.Response(status=404, body=b'{"code":-1,"msg":"not found"}', content_type="application/json",
                                headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        connection = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await connection.prepare(request)
        self.connections += 1
        self._last_change = time.monotonic()
        client = _Client(connection, self.protocol.streams_from_path(request.path_qs), self.connections,
                         self.protocol.route_of(request.path), request.headers.get(CLOCK_HEADER) == "recorded")
        self.clients.append(client)
        self._client_present.set()
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for message in connection:
                if message.type is WSMsgType.TEXT:
                    # queued as one socket orders them: behind the frames played before the message
                    # (a snapshot reply built at the playback position already holds them) and ahead
                    # of those it made due
                    before = len(client.streams)
                    reply = self.protocol.on_client_message(message.data, client.streams, client.route)
                    if len(client.streams) != before:
                        self._last_change = time.monotonic()
                    for text in [reply] if isinstance(reply, str) else reply or ():
                        try:
                            client.queue.put_nowait(text)
                        except asyncio.QueueFull:  # a client 10,000 frames behind: order is moot
                            await client.queue.put(text)
        finally:
            self.clients.remove(client)
            if not self.clients:
                self._client_present.clear()
            client.closed = True
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._drain(client)
        return connection

    def _drain(self, client: _Client) -> None:
        while not client.queue.empty():
            item = client.queue.get_nowait()
            if isinstance(item, Frame):
                self.undelivered.append(item.payload)

    async def _send_loop(self, client: _Client) -> None:
        connection = client.connection
        while True:
            item = await client.queue.get()
            try:
                if isinstance(item, str):  # a reply, not a recorded frame: drop_after counts frames
                    if client.recorded_clock:  # every message of such a client carries a stamp
                        await connection.send_bytes(STAMP.pack(self.recorded_now) + item.encode())
                    else:
                        await connection.send_str(item)
                    continue
                if client.recorded_clock:
                    await connection.send_bytes(STAMP.pack(item.ts_recv) + item.payload)
                else:
                    await connection.send_str(item.payload.decode())
            except (ConnectionError, RuntimeError):  # closing or closed
                if isinstance(item, Frame):
                    self.undelivered.append(item.payload)
                return
            client.sent += 1
            if self.faults.drop_after is not None and client.number == 1 and client.sent >= self.faults.drop_after:
                await client.connection.close(code=1001, message=b"replay fault: connection dropped")
                return

    def _ready(self, clients: int | None = None) -> bool:
        """`clients` (by default min_clients) are connected and have subscribed: a client that
        subscribes by message has no streams until that message is read, and frames played before
        would not reach it. One that never names a stream counts after SUBSCRIBE_GRACE_S."""
        now = time.monotonic()
        ready = [c for c in self.clients if c.streams or now - c.opened >= SUBSCRIBE_GRACE_S]
        return len(ready) >= (self.min_clients if clients is None else clients)

    async def _play(self) -> None:
        while not self._ready() or time.monotonic() - self._last_change < SETTLE_S:
            await asyncio.sleep(0.01)
        start_wall, start_ts = time.monotonic(), 0
        index = -1
        for index, frame in enumerate(self.ws_frames):
            if self.faults.silence is not None and index == self.faults.silence[0]:
                await asyncio.sleep(self.faults.silence[1])
                start_wall += self.faults.silence[1]
            if self.speed > 0 and frame.ts_recv:  # a frame without a receive time is not waited for
                if not start_ts:  # the first timed frame starts the playback clock
                    start_wall, start_ts = time.monotonic(), frame.ts_recv
                    self.clock_offset_ns = time.time_ns() - start_ts
                due = start_wall + (frame.ts_recv - start_ts) / 1e9 / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.max_late_s = max(self.max_late_s, -delay)
            while not self._ready(1):  # checked after pacing: a client may have left meanwhile, and one
                # that reconnects subscribes by message: frames played before it did would be lost
                # without a trace, where a test needs to account for every frame
                if self.clients:
                    await asyncio.sleep(0.01)
                else:
                    await self._client_present.wait()
            self.position = index
            self.protocol.observe(frame.payload)
            if index in self.faults.skip or index in self.withheld:
                continue
            payload = self.protocol.corrupt(frame.payload) if index in self.faults.corrupt_checksum else frame.payload
            if frame.ts_recv:
                self.recorded_now = frame.ts_recv
            if payload is not frame.payload or not frame.ts_recv:  # untimed fixtures: at the playback time
                frame = Frame(frame.ts_recv or self.recorded_now, "ws", payload)
            stream = self.protocol.stream_of(payload)
            delivered = False
            for client in list(self.clients):
                if stream is not None and (stream not in client.streams or not self._serves(client.route, stream)):
                    continue
                delivered = True
                if client.closed:  # the connection is going away: the frame is lost on it
                    self.undelivered.append(payload)
                    continue
                await client.queue.put(frame)
                if client.closed:  # closed while we waited for room: account for it
                    self._drain(client)
            if not delivered and stream in self._ever_served:  # its connection is away: lost
                self.undelivered.append(payload)
            if index % 256 == 0:
                await asyncio.sleep(0)
        self.position = index + 1
        self.finished.set()

    def _serves(self, route: str, stream: str) -> bool:
        served = self._served.get((route, stream))
        if served is None:
            served = self._served[route, stream] = self.protocol.serves(route, stream)
            if served:
                self._ever_served.add(stream)
        return served

    async def drained(self, timeout_s: float = 60) -> None:
        """Wait until every frame was played and handed to the connected clients' sockets."""
        await asyncio.wait_for(self.finished.wait(), timeout_s)
        deadline = time.monotonic() + timeout_s
        while not self.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
