"""Bybit v5 public streams as the replay server speaks them.

WebSocket: any path; topics are subscribed by `{"op":"subscribe"|"unsubscribe","args":[...]}`,
acknowledged as Bybit does (`{"success":true,"ret_msg":"","op":"subscribe",...}`); `{"op":"ping"}`
is answered with Bybit's pong and counted (`pings`), so tests can see the heartbeat arrive.
Subscribing a book topic whose book has started playing answers, after the ack, with a `snapshot`
of the book as the venue has it at the current playback position (the recorded snapshot plus every
delta played since, skipped ones included), which is how Bybit resyncs a client. A recording holds
one depth per symbol: a subscription of any depth receives it.
REST: `/v5/market/instruments-info` lists the instruments of the recorded bodies, if the capture
has any (else none, so the client falls back to ids from the symbol, without retrying), in pages
as Bybit serves them: `limit` (default 500) up to `page_size` (the venue's 1,000; tests lower it),
the next page named by `nextPageCursor` and asked for with `cursor`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ingest.frames import Frame
from ingest.venues.replay_routing import MessageSubscribed

_TOPIC = re.compile(rb'"topic":"([^"]+)"')
INSTRUMENTS_PATH = "/v5/market/instruments-info"


def stream_key(topic: str) -> str:
    """`orderbook.<depth>.<symbol>` -> `orderbook.<symbol>` (the recorded depth serves any); others as is."""
    if topic.startswith("orderbook."):
        return f"orderbook.{topic.rsplit('.', 1)[-1]}"
    return topic


class _TruthBook:
    """The venue's book of one symbol at the playback position, as price text -> size text."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.topic = message["topic"]
        self.depth = int(self.topic.split(".")[1])
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.apply(message)

    def apply(self, message: dict[str, Any]) -> None:
        data = message["data"]
        if message["type"] == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.u, self.seq, self.ts, self.cts = data["u"], data.get("seq"), message["ts"], message.get("cts")
        self.symbol = data["s"]

    def snapshot(self) -> str:
        bids = sorted(self.bids.items(), key=lambda level: Decimal(level[0]), reverse=True)[:self.depth]
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))[:self.depth]
        message = {"topic": self.topic, "type": "snapshot", "ts": self.ts,
                   "data": {"s": self.symbol, "b": [list(level) for level in bids],
                            "a": [list(level) for level in asks], "u": self.u, "seq": self.seq}}
        if self.cts is not None:
            message["cts"] = self.cts
        return json.dumps(message, separators=(",", ":"))


class BybitReplay(MessageSubscribed):
    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        """Venue symbol -> its book at the playback position."""
        self.pings = 0
        self.listed: list[dict[str, Any]] = []
        """Every instrument of the recorded instruments-info bodies, once, in recorded order."""
        self.listed_time = 0
        self.page_size = 1000
        for frame in frames:
            if frame.kind == "rest" and urlsplit(frame.url).path == INSTRUMENTS_PATH:
                body = json.loads(frame.payload)
                known = {item["symbol"] for item in self.listed}
                self.listed += [item for item in body["result"]["list"] if item["symbol"] not in known]
                self.listed_time = body.get("time", 0)

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
            op, args = message["op"], message.get("args") or []
        except (ValueError, KeyError, TypeError):
            return [json.dumps({"success": False, "ret_msg": f"invalid request: {text[:100]}", "op": ""})]
        reply = {"success": True, "ret_msg": "", "conn_id": "replay", "req_id": message.get("req_id", ""), "op": op}
        if op == "ping":
            self.pings += 1
            return [json.dumps(reply | {"ret_msg": "pong"})]
        if op == "unsubscribe":
            streams.difference_update(stream_key(topic) for topic in args)
            return [json.dumps(reply)]
        if op != "subscribe":
            return [json.dumps(reply | {"success": False, "ret_msg": f"unknown op {op}"})]
        streams.update(stream_key(topic) for topic in args)
        replies = [json.dumps(reply)]
        for topic in args:
            book = self.books.get(topic.rsplit(".", 1)[-1]) if topic.startswith("orderbook.") else None
            if book is not None:
                replies.append(book.snapshot())
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        match = _TOPIC.search(payload)
        return stream_key(match.group(1).decode()) if match else None

    def observe(self, payload: bytes) -> None:
        if b'"topic":"orderbook.' not in payload:
            return
        message = json.loads(payload)
        book = self.books.get(message["data"]["s"])
        if book is None:
            if message["type"] == "snapshot":
                self.books[message["data"]["s"]] = _TruthBook(message)
        else:
            book.apply(message)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if path != INSTRUMENTS_PATH:
            return None
        limit = min(int(query.get("limit", ["500"])[0]), self.page_size)
        start = int(query.get("cursor", ["0"])[0] or 0)
        end = start + limit
        return json.dumps({"retCode": 0, "retMsg": "OK", "retExtInfo": {}, "time": self.listed_time, "result": {
            "category": "linear", "list": self.listed[start:end],
            "nextPageCursor": str(end) if end < len(self.listed) else ""}}).encode()

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("bybit frames carry no checksum to corrupt")
