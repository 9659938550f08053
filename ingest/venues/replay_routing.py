"""The ReplayProtocol routing of the venues that serve every stream on every route and subscribe only by
message, none in the URL (Bybit, Coinbase, Deribit, Hyperliquid, Kraken Futures)."""

from __future__ import annotations

from typing import ClassVar


class MessageSubscribed:
    """route_of, serves and streams_from_path of such a venue's replay protocol."""

    route_name: ClassVar[str | None] = None
    """The venue's one route; None where a connection's route is its URL path (Bybit's per-category
    paths, Hyperliquid's)."""

    def route_of(self, path: str) -> str:
        return path if self.route_name is None else self.route_name

    def serves(self, route: str, stream: str) -> bool:
        return True

    def streams_from_path(self, path: str) -> set[str]:
        return set()
