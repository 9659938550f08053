"""What the feed handler needs from a venue's connection module: URLs and the venue's rules.

Everything else (parsing, books, sequence rules) is the normalizer's; see
normalize/venues/interface.py. A venue is added by one module implementing this, one
implementing VenueNormalizer, and a line in each registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class VenueConnection(Protocol):
    venue: str
    symbols: Sequence[str]
    max_connection_age_s: float
    """Reconnect before the venue cuts the connection itself."""
    snapshots_per_second: float
    """REST book snapshots allowed per second across all symbols of this connection."""

    def stream_url(self) -> str:
        """The WebSocket URL, subscriptions included where the venue takes them in the URL."""

    def subscribe_messages(self) -> list[str]:
        """Messages to send right after connecting (empty where the URL subscribes)."""

    def snapshot_url(self, symbol: str) -> str:
        """REST book snapshot for one symbol."""

    def metadata_urls(self) -> list[str]:
        """REST endpoints fetched once at start (instrument metadata)."""

    def poll_urls(self) -> list[str]:
        """REST endpoints polled every poll_interval_s (e.g. open interest)."""
