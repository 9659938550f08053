"""What the feed handler needs from a venue's connection module: URLs and the venue's rules.

REST requests are URLs; a request that must be POSTed carries its JSON body as the URL's
fragment (`https://api.hyperliquid.xyz/info#{"type":"meta"}`): the handler POSTs the body to
the URL without it, and the capture and the normalizer see the whole string, so they know
which request a body answers.

Everything else (parsing, books, sequence rules) is the normalizer's; see
normalize/venues/interface.py. A venue is two packages, `normalize/venues/<venue>/` (wire,
book_sync, normalizer) and `ingest/venues/<venue>/` (connection, replay), whose `SPEC` names its
parts, and one line in ingest/venues/registry.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ingest.frames import Frame
from ingest.synthetic.market import Event, InstrumentSpec, Market, TradeEvent
from normalize.trade_ids import Backfill
from normalize.venues.interface import VenueNormalizer


@dataclass(frozen=True)
class Route:
    """One WebSocket connection of a feed. A venue that serves its channels on several URLs
    (Binance USD-M's `/public` and `/market`) gets one connection per URL, each with its own
    staleness, age limit and journal rows; a long subscription list may also be split over
    several connections of one route, to stay within the venue's per-connection limits."""

    name: str
    """The venue's name for the route (`public`, `market`), with a part number when one route
    needs several connections (`public-2`); journal rows and the probe name it."""
    url: str
    """The WebSocket URL, subscriptions included where the venue takes them in the URL."""
    channels: tuple[str, ...]
    """The venue channel names this connection carries (as in VenueConnection.channels)."""
    symbols: tuple[str, ...] = ()
    """The venue symbols it carries them for."""
    subscribe: tuple[str, ...] = ()
    """Messages to send right after connecting (empty where the URL subscribes)."""
    book_channel: str = ""
    """The channel carrying books on this connection, if any: a symbol's resubscriptions for book
    snapshots go to the connection carrying its book."""
    quiet_channels: tuple[str, ...] = ()
    """Channels that send only when something happens (liquidations) and may stay silent."""
    first_data_within_s: float | None = None
    """A data frame is due this soon after the handshake (the route carries a channel the venue
    pushes on a timer or on every book change); silence past it is journaled `silent_after_connect`
    and the connection is replaced. None where every channel is quiet."""


class UnknownChannel(ValueError):
    """A channel name the venue's connection module does not know how to route: a user's mistake,
    reported in one line with the valid names."""


class VenueLimitExceeded(ValueError):
    """A feed larger than the venue allows one connection or IP (subscriptions, streams)."""


def check_route_paths(venue: str, paths: Mapping[str, str], route: str) -> None:
    """A route must have a path (route paths given by an operator replace the documented ones)."""
    if route not in paths:
        raise UnknownChannel(f"{venue} has no path for route '{route}' (routes: {', '.join(paths)})")


def route_in(venue: str, routes: Mapping[str, str], channel: str, key: str | None = None,
             unknown: str = "route for channel", known: str = "known") -> str:
    """The route a venue's ROUTES table gives a channel, looked up by `key` where the table is by
    family (`depth` for `depth@100ms`); UnknownChannel naming the known ones otherwise (`unknown`
    and `known` word the message in the venue's own terms: tables, feeds, stream families)."""
    route = routes.get(channel if key is None else key)
    if route is None:
        raise UnknownChannel(f"{venue} has no {unknown} '{channel}' ({known}: {', '.join(sorted(routes))})")
    return route


def op_messages(op: str, args: Sequence[object], per_message: int) -> tuple[str, ...]:
    """`{"op": op, "args": [...]}` requests of at most `per_message` args each (OKX, BitMEX and Bybit
    subscribe this way, each with its own limit)."""
    return tuple(json.dumps({"op": op, "args": list(args[i:i + per_message])})
                 for i in range(0, len(args), per_message))


def first_data_within(channels: Sequence[str], quiet: Sequence[str], seconds: float) -> float | None:
    """Route.first_data_within_s of a connection carrying `channels`: None where all are quiet."""
    return None if len(quiet) == len(channels) else seconds


class VenueConnection(Protocol):
    """Read-only members: each module is a frozen dataclass whose fields a user's overrides set
    (ticklake.ingest_run.make_connection)."""

    @property
    def venue(self) -> str: ...

    @property
    def symbols(self) -> Sequence[str]: ...

    @property
    def channels(self) -> Sequence[str]:
        """The venue's own channel names to subscribe per symbol (each module has a default set)."""

    @property
    def route_paths(self) -> Mapping[str, str]:
        """Route name -> URL path under the WebSocket base, as documented (an operator may override
        one with `--route NAME=PATH` when a venue moves a route before ticklake is updated)."""

    probe_symbols: ClassVar[tuple[str, ...]]
    """Liquid symbols `ticklake probe` subscribes when none are given."""
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]]
    """Standard channel name (ingest.venues.names.STANDARD_CHANNELS) -> the venue channels that
    carry it (none where it needs no channel: a REST poll)."""

    @staticmethod
    def symbol_of(instrument: str) -> str:
        """The venue symbol of a normalized instrument id; ValueError for an id the venue's naming
        cannot express, saying which forms it can."""

    @property
    def max_connection_age_s(self) -> float:
        """Reconnect before the venue cuts the connection itself."""

    @property
    def reconnect_interval_s(self) -> float:
        """The shortest time between two connection attempts of one route: venues ban an IP that
        connects faster than their documented rate."""

    @property
    def snapshots_per_second(self) -> float:
        """REST book snapshots and trade backfills allowed per second across all symbols of this
        connection (or book resubscriptions, where the venue resends snapshots on the socket)."""

    def routes(self) -> list[Route]:
        """The WebSocket connections that together carry `channels` for `symbols`."""

    def channel_of(self, payload: bytes) -> str | None:
        """The channel (one of `channels`) a received data frame belongs to; None for frames that
        carry no market data (subscription acks, pongs, errors, notices). Called on frames until a
        connection's first data frame, and by the probe."""

    def heartbeat(self) -> tuple[float, str] | None:
        """(interval in seconds, text) of an application-level ping the venue requires, if any
        (WebSocket-level pings are answered by the client library)."""

    def snapshot_url(self, symbol: str) -> str | None:
        """REST book snapshot for one symbol; None where the venue resends a snapshot over the
        socket when the book's channel is subscribed again (resubscribe_messages)."""

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Messages that make the venue send a fresh book snapshot for one symbol, sent on the
        connection whose route carries the books."""

    def backfill_url(self, request: Backfill) -> str | None:
        """REST request for trades the normalizer found missing (from request.first_id on), where
        the venue serves its trade history by id; None where it does not."""

    def metadata_urls(self) -> list[str]:
        """REST endpoints of instrument metadata: fetched at start, in this order, and again every
        metadata_every_s (HandlerConfig)."""

    def poll_urls(self) -> list[str]:
        """REST endpoints polled every poll_interval_s (e.g. open interest)."""


class ReplayProtocol(Protocol):
    """The venue as `ticklake replay-server` speaks it, built from a capture's frames: its routes,
    subscriptions, which stream a frame belongs to, and its REST answers."""

    def route_of(self, path: str) -> str:
        """Which of the venue's WebSocket routes a connection's URL path reaches."""

    def serves(self, route: str, stream: str) -> bool:
        """Whether the venue sends this stream on this route (a stream subscribed on a route that
        does not serve it is accepted and stays silent, as venues do after moving a stream)."""

    def streams_from_path(self, path: str) -> set[str]:
        """Streams subscribed by the connection URL itself (path and query)."""

    def on_client_message(self, text: str, streams: set[str], route: str) -> str | list[str] | None:
        """Apply a subscribe/ping message sent on a connection to `route`; return the reply (or
        replies, in order) to send, if any. Replies go out before any frame the message made due (a
        subscription's snapshot first)."""

    def stream_of(self, payload: bytes) -> str | None:
        """The stream a recorded frame belongs to (None: send to every client)."""

    def observe(self, payload: bytes) -> None:
        """Every frame at its playback position, sent or skipped: keeps venue-side state."""

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        """Body for a REST request, or None for 404."""

    def corrupt(self, payload: bytes) -> bytes:
        """The frame with its checksum altered (venues without checksums raise)."""


class SyntheticVenue(Protocol):
    """The venue's frames for a synthetic market (ingest/synthetic), shaped as its recorded ones and
    keeping every rule its handler checks (sequence chains, checksums, trade ids); `ticklake
    replay-server --synthetic` serves them through the venue's ReplayProtocol."""

    specs: list[InstrumentSpec]
    """The instruments as the venue lists them, in the order given: the market is built from these,
    so a venue whose rules need other grids (Hyperliquid's significant figures) states them here."""
    symbols: list[str]
    """The venue symbol of each instrument, in the market's order."""
    periodic: dict[str, float]
    """Venue channels pushed on a timer -> seconds between two messages per instrument."""

    def __init__(self, specs: Sequence[InstrumentSpec], channels: Sequence[str] = ...) -> None:
        """`channels`: the venue channel names to send (those a handler subscribes; by default its
        connection's default set); ValueError for one the synthetic venue cannot send."""

    def rest_frames(self, market: Market, ts: int) -> list[Frame]:
        """The REST bodies the replay protocol starts from (metadata, book snapshots), at `ts`."""

    def frames(self, event: Event, market: Market) -> list[bytes]:
        """The WebSocket frames one market event makes (none where no channel carries it)."""

    def trade_row(self, event: TradeEvent) -> tuple[str, str, str, str]:
        """(venue symbol, trade id, price, size in base units) of a trade, as the normalizer reads them."""


@dataclass(frozen=True)
class VenueSpec:
    """Everything ticklake knows of one venue: registered in ingest/venues/registry.py, once."""

    venue: str
    normalizer: Callable[[], VenueNormalizer]
    connection: type[VenueConnection]
    replay: type[ReplayProtocol]
    synthetic: type[SyntheticVenue] | None = None
    """None where the venue has no synthetic mode yet."""
