"""A raw frame as received: the unit that capture files store and normalizers consume."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

CLOCK_HEADER = "X-Ticklake-Clock"
"""Sent at the handshake by a handler that stamps frames with a capture's receive times
(`--clock recorded`): the replay server then sends each frame as a binary message, STAMP (the
recorded ts_recv, ns) then the frame. Venues never see it; only the replay path reads it."""
RECV_HEADER = "X-Ticklake-Recv"
"""On every replay server REST answer: the recorded receive time of the playback position (ns)."""
STAMP = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class Frame:
    ts_recv: int
    """Local receive time, ns UTC."""
    kind: Literal["ws", "rest"]
    payload: bytes
    url: str = ""
    """The REST request URL (the endpoint and its symbol), or the WebSocket URL."""
    connection_id: str = ""
