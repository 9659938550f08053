"""OKX v5 public WebSocket as the replay server speaks it.

WebSocket: `/ws/v5/public` and `/ws/v5/business`, each serving its own channels as OKX does since
2023-06-20 (trades-all and the candles only on business, everything else only on public): a
subscription on the wrong route is refused with error 60018, as the venue refuses it; any other
path is treated as public. Channels are subscribed by `{"op":"subscribe"|"unsubscribe","args":[{...}]}`
and acknowledged one arg at a time as OKX does (`{"event":"subscribe","arg":{...},"connId":...}`);
the text "ping" is answered "pong" and counted (`pings`). Subscribing a book channel whose book
has started playing answers, after the ack, with a `snapshot` of the book as OKX has it at the
current playback position (the recorded snapshot plus every update played since, skipped and
corrupted ones included), its checksum computed here from the venue's strings: that is how OKX
resyncs a client. Recorded acks are not replayed (the server acknowledges by itself).
REST: `/api/v5/public/instruments?instType=...` answers with the recorded body of that type, or an
empty list.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.frames import Frame

DEPTH = 400
"""Levels per side OKX sends in a `books` snapshot."""
CHECKSUM_DEPTH = 25
_ARG = re.compile(rb'^\{"arg":\{"channel":"([^"]+)","inst(?:Id|Type)":"([^"]+)"')
_CHECKSUM = re.compile(rb'"checksum":(-?\d+)')
_EMPTY = b'{"code":"0","data":[],"msg":""}'
_RECORDED_EVENT = "event"
"""stream_of for recorded acks and errors: a stream no client subscribes."""


BUSINESS_ONLY = ("trades-all", "candle", "mark-price-candle", "index-candle")
"""Channel families OKX serves only on /ws/v5/business (candles by prefix: candle1m, candle1H, ...).
Kept apart from the handler's own table (ingest/venues/okx/connection.py): this is the venue's behaviour."""


def _route_of_channel(channel: str) -> str:
    return "business" if channel.startswith(BUSINESS_ONLY) or "-candle" in channel else "public"


def stream_key(arg: dict[str, str]) -> str:
    """`books:BTC-USDT`; `liquidation-orders:SWAP` for the per-type channel."""
    return f"{arg.get('channel', '')}:{arg.get('instId') or arg.get('instType', '')}"


class _TruthBook:
    """One instrument's book as OKX has it at the playback position: price text -> level."""

    def __init__(self, channel: str, inst_id: str) -> None:
        self.channel, self.inst_id = channel, inst_id
        self.bids: dict[str, list[str]] = {}
        self.asks: dict[str, list[str]] = {}
        self.ts = "0"
        self.seq_id: int | None = None
        self.checksummed = True

    def apply(self, action: str, data: dict[str, Any]) -> None:
        if action == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for level in levels:
                if Decimal(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level
        self.ts, self.seq_id = data["ts"], data.get("seqId")
        self.checksummed = data.get("checksum", 0) != 0

    def snapshot(self) -> str:
        bids = [self.bids[p] for p in sorted(self.bids, key=Decimal, reverse=True)[:DEPTH]]
        asks = [self.asks[p] for p in sorted(self.asks, key=Decimal)[:DEPTH]]
        data: dict[str, Any] = {"asks": asks, "bids": bids, "ts": self.ts,
                                "checksum": checksum(bids, asks) if self.checksummed else 0}
        if self.seq_id is not None:
            data |= {"prevSeqId": -1, "seqId": self.seq_id}
        return json.dumps({"arg": {"channel": self.channel, "instId": self.inst_id}, "action": "snapshot",
                           "data": [data]}, separators=(",", ":"))


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's book checksum of levels as the venue writes them (`[px, sz, ...]`, best first): CRC32 of
    the best 25 bids and asks interleaved as `bidPx:bidSz:askPx:askSz:...`, signed 32-bit."""
    parts: list[str] = []
    for i in range(CHECKSUM_DEPTH):
        for side in (bids, asks):
            if i < len(side):
                parts += side[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


class OkxReplay:
    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        """instId -> its book at the playback position."""
        self.pings = 0
        self.bodies: dict[str, bytes] = {}
        """instType -> the recorded instruments body."""
        for frame in frames:
            if frame.kind == "rest" and urlsplit(frame.url).path.endswith("/public/instruments"):
                kind = parse_qs(urlsplit(frame.url).query).get("instType", [""])[0]
                self.bodies.setdefault(kind, frame.payload)

    def route_of(self, path: str) -> str:
        return "business" if path.rstrip("/").endswith("/business") else "public"

    def serves(self, route: str, stream: str) -> bool:
        return stream == _RECORDED_EVENT or _route_of_channel(stream.partition(":")[0]) == route

    def streams_from_path(self, path: str) -> set[str]:
        return set()

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        if text == "ping":
            self.pings += 1
            return ["pong"]
        try:
            message = json.loads(text)
            op, args = message["op"], list(message["args"])
            keys = [stream_key(arg) for arg in args]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [json.dumps({"event": "error", "code": "60012", "msg": f"Invalid request: {text[:100]}",
                                "connId": "replay"})]
        if op not in ("subscribe", "unsubscribe"):
            return [json.dumps({"event": "error", "code": "60012", "msg": f"Invalid request: {text[:100]}",
                                "connId": "replay"})]
        replies = []
        for arg, key in zip(args, keys, strict=True):
            if _route_of_channel(str(arg.get("channel", ""))) != route:
                replies.append(json.dumps({"event": "error", "code": "60018", "connId": "replay", "msg": (
                    f"Wrong URL or channel:{arg.get('channel')},instId:{arg.get('instId', '')} doesn't exist. "
                    "Please use the correct URL, channel and parameters referring to API document.")}))
                continue
            replies.append(json.dumps({"event": op, "arg": arg, "connId": "replay"}))
            if op == "unsubscribe":
                streams.discard(key)
                continue
            streams.add(key)
            book = self.books.get(arg.get("instId", ""))
            if book is not None and arg.get("channel") == book.channel:
                replies.append(book.snapshot())
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        match = _ARG.match(payload)
        if match:
            return f"{match.group(1).decode()}:{match.group(2).decode()}"
        try:
            message = json.loads(payload)
        except ValueError:
            return None
        if message.get("event") == "notice":
            return None  # a notice concerns every connection (a service upgrade): sent to all
        if "event" in message or not isinstance(message.get("arg"), dict):
            return _RECORDED_EVENT
        return stream_key(message["arg"])

    def observe(self, payload: bytes) -> None:
        if b'"channel":"books' not in payload:
            return
        message = json.loads(payload)
        arg, action = message.get("arg", {}), message.get("action", "update")
        book = self.books.get(arg.get("instId", ""))
        if book is None:
            if action != "snapshot":
                return
            book = self.books[arg["instId"]] = _TruthBook(arg["channel"], arg["instId"])
        for data in message["data"]:
            book.apply(action, data)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if path == "/api/v5/public/instruments":
            return self.bodies.get(query.get("instType", [""])[0], _EMPTY)
        return None

    def corrupt(self, payload: bytes) -> bytes:
        """A books frame with its checksum off by one (never 0, which means "not sent")."""
        match = _CHECKSUM.search(payload)
        if match is None:
            raise ValueError("only OKX book frames carry a checksum to corrupt")
        value = int(match.group(1))
        wrong = value + 1 if value != -1 else 1
        return payload[:match.start(1)] + str(wrong).encode() + payload[match.end(1):]
