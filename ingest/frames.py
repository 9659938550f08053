"""A raw frame as received: the unit that capture files store and normalizers consume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Frame:
    ts_recv: int
    """Local receive time, ns UTC."""
    kind: Literal["ws", "rest"]
    payload: bytes
    url: str = ""
    """The REST request URL (the endpoint and its symbol), or the WebSocket URL."""
    connection_id: str = ""
