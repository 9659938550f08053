"""What the feed handler needs from a venue's connection module: URLs and the venue's rules.

REST requests are URLs; a request that must be POSTed carries its JSON body as the URL's
fragment (`https://api.hyperliquid.xyz/info#{"type":"meta"}`): the handler POSTs the body to
the URL without it, and the capture and the normalizer see the whole string, so they know
which request a body answers.

Everything else (parsing, books, sequence rules) is the normalizer's; see
normalize/venues/interface.py. A venue is added by one module implementing this, one
implementing VenueNormalizer, and a line in each registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from normalize.trade_ids import Backfill


class VenueConnection(Protocol):
    venue: str
    symbols: Sequence[str]
    channels: Sequence[str]
    """The venue's own channel names to subscribe per symbol (each module has a default set)."""
    max_connection_age_s: float
    """Reconnect before the venue cuts the connection itself."""
    snapshots_per_second: float
    """REST book snapshots and trade backfills allowed per second across all symbols of this
    connection (or book resubscriptions, where the venue resends snapshots on the socket)."""

    def stream_url(self) -> str:
        """The WebSocket URL, subscriptions included where the venue takes them in the URL."""

    def subscribe_messages(self) -> list[str]:
        """Messages to send right after connecting (empty where the URL subscribes)."""

    def heartbeat(self) -> tuple[float, str] | None:
        """(interval in seconds, text) of an application-level ping the venue requires, if any
        (WebSocket-level pings are answered by the client library)."""

    def snapshot_url(self, symbol: str) -> str | None:
        """REST book snapshot for one symbol; None where the venue resends a snapshot over the
        socket when the book's channel is subscribed again (resubscribe_messages)."""

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Messages that make the venue send a fresh book snapshot for one symbol."""

    def backfill_url(self, request: Backfill) -> str | None:
        """REST request for trades the normalizer found missing (from request.first_id on), where
        the venue serves its trade history by id; None where it does not."""

    def metadata_urls(self) -> list[str]:
        """REST endpoints of instrument metadata: fetched at start, in this order, and again every
        metadata_every_s (HandlerConfig)."""

    def poll_urls(self) -> list[str]:
        """REST endpoints polled every poll_interval_s (e.g. open interest)."""
