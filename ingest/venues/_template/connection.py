"""The venue's endpoints and connection rules (the I/O side; parsing is in normalize). Each rule
goes here next to a comment with the documentation page it comes from and the date it was checked,
and into docs/venues.md (a test compares ROUTES and ROUTE_PATHS with it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ingest.venues.interface import Route
from normalize.trade_ids import Backfill

VENUE = "template"
WS_BASE = "wss://example.invalid"
REST_BASE = "https://example.invalid"
CHANNELS: tuple[str, ...] = ("trades",)
ROUTE_PATHS: dict[str, str] = {"ws": "/ws"}
ROUTES: dict[str, str] = {"trades": "ws"}


@dataclass(frozen=True)
class TemplateConnection:
    symbols: Sequence[str]
    ws_base: str = WS_BASE
    rest_base: str = REST_BASE
    channels: Sequence[str] = CHANNELS
    route_paths: Mapping[str, str] = field(default_factory=lambda: ROUTE_PATHS)
    venue: str = VENUE
    max_connection_age_s: float = float("inf")
    reconnect_interval_s: float = 1.0
    snapshots_per_second: float = 1.0
    probe_symbols: ClassVar[tuple[str, ...]] = ("BTCUSDT",)
    standard_channels: ClassVar[Mapping[str, tuple[str, ...]]] = {"trades": ("trades",)}

    @staticmethod
    def symbol_of(instrument: str) -> str:
        raise ValueError(f"the template venue names no instruments ({instrument})")

    def routes(self) -> list[Route]:
        return [Route("ws", f"{self.ws_base}{self.route_paths['ws']}", tuple(self.channels), tuple(self.symbols))]

    def channel_of(self, payload: bytes) -> str | None:
        return None

    def heartbeat(self) -> tuple[float, str] | None:
        return None

    def snapshot_url(self, symbol: str) -> str | None:
        return None

    def resubscribe_messages(self, symbol: str) -> list[str]:
        return []

    def backfill_url(self, request: Backfill) -> str | None:
        return None

    def metadata_urls(self) -> list[str]:
        return []

    def poll_urls(self) -> list[str]:
        return []
