"""The venue as the replay server speaks it (ingest.venues.interface.ReplayProtocol): routes,
subscriptions and their acks, which stream a frame belongs to, REST answers from the recording."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.frames import Frame
from ingest.venues.replay_routing import MessageSubscribed


class TemplateReplay(MessageSubscribed):
    route_name = "ws"

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = frames

    def on_client_message(self, text: str, streams: set[str], route: str) -> str | list[str] | None:
        return None

    def stream_of(self, payload: bytes) -> str | None:
        return None

    def observe(self, payload: bytes) -> None:
        return None

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        return None

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("the template venue sends no checksum to corrupt")
