"""BitMEX's realtime WebSocket as the replay server speaks it.

WebSocket: one route (any path). Tables are subscribed by `{"op":"subscribe"|"unsubscribe","args":[...]}`
or in the URL (`/realtime?subscribe=trade:XBTUSD,quote:XBTUSD`), each arg answered as BitMEX does
(`{"success":true,"subscribe":"trade:XBTUSD","request":{...}}`); a request of more than 20 args, or an
unknown op, is refused (`{"status":400,"error":...}`). The text `ping` is answered `pong` and counted
(`pings`). Subscribing a symbol's `orderBookL2` once its recording has started answers, after the
success, with a `partial` of the book as BitMEX has it at the playback position (the recorded partial plus
every insert, update and delete played since, skipped ones included), its levels under their ids: that is
how BitMEX resyncs a client. Recorded answers and the welcome are not replayed to subscribers (the
server answers by itself).
REST: `/api/v1/instrument/active` answers the recorded body (else an empty list).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.frames import Frame

MAX_ARGS = 20
INSTRUMENTS_PATH = "/api/v1/instrument/active"
_RECORDED = "answer"
"""stream_of for recorded answers and the welcome: a stream no client subscribes."""
_PARTIAL_HEAD = {"keys": ["symbol", "id", "side"],
                 "types": {"symbol": "symbol", "id": "long", "side": "symbol", "size": "long", "price": "float",
                           "timestamp": "timestamp"},
                 "foreignKeys": {"symbol": "instrument", "side": "side"}, "attributes": {"symbol": "parted",
                                                                                          "id": "sorted"}}


class _TruthBook:
    """One symbol's book as BitMEX has it at the playback position: level id -> row."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.rows: dict[int, dict[str, Any]] = {}

    def apply(self, action: str, rows: list[dict[str, Any]]) -> None:
        if action == "partial":
            self.rows.clear()
        for row in rows:
            if action == "delete":
                self.rows.pop(row["id"], None)
            elif action == "update":
                held = self.rows.get(row["id"])
                if held is not None:
                    held.update(row)
            else:
                self.rows[row["id"]] = dict(row)

    def partial(self, table: str) -> str:
        return json.dumps({"table": table, "action": "partial", **_PARTIAL_HEAD, "filter": {"symbol": self.symbol},
                           "data": [self.rows[i] for i in sorted(self.rows)]}, separators=(",", ":"))


class BitmexReplay:
    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        """Symbol -> its book at the playback position."""
        self.pings = 0
        self.instruments = b"[]"
        for frame in frames:
            if frame.kind == "rest" and urlsplit(frame.url).path == INSTRUMENTS_PATH:
                self.instruments = frame.payload

    def route_of(self, path: str) -> str:
        return "realtime"

    def serves(self, route: str, stream: str) -> bool:
        return True

    def streams_from_path(self, path: str) -> set[str]:
        query = parse_qs(urlsplit(path).query)
        return {arg for value in query.get("subscribe", []) for arg in value.split(",") if arg}

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        if text == "ping":
            self.pings += 1
            return ["pong"]
        try:
            message = json.loads(text)
            op, args = message["op"], [str(arg) for arg in message.get("args") or []]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [json.dumps({"status": 400, "error": "Unable to parse request", "meta": {}, "request": text})]
        if op not in ("subscribe", "unsubscribe") or len(args) > MAX_ARGS:
            error = (f"Too many args sent. Max length is {MAX_ARGS}." if len(args) > MAX_ARGS
                     else f"Unknown or unsupported op: {op}")
            return [json.dumps({"status": 400, "error": error, "meta": {}, "request": message})]
        replies = []
        for arg in args:
            replies.append(json.dumps({"success": True, op: arg, "request": message}))
            if op == "unsubscribe":
                streams.discard(arg)
                continue
            streams.add(arg)
            table, _, symbol = arg.partition(":")
            book = self.books.get(symbol) if table.startswith("orderBookL2") else None
            if book is not None:
                replies.append(book.partial(table))
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        if not payload.startswith(b'{"table":"'):
            return _RECORDED
        message = json.loads(payload)
        data = message.get("data") or []
        symbol = data[0].get("symbol", "") if data else (message.get("filter") or {}).get("symbol", "")
        return f"{message['table']}:{symbol}"

    def observe(self, payload: bytes) -> None:
        if not payload.startswith(b'{"table":"orderBookL2'):
            return
        message = json.loads(payload)
        rows = message.get("data") or []
        symbol = rows[0]["symbol"] if rows else (message.get("filter") or {}).get("symbol", "")
        book = self.books.get(symbol)
        if book is None:
            if message["action"] != "partial":
                return
            book = self.books[symbol] = _TruthBook(symbol)
        book.apply(message["action"], rows)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        return self.instruments if path == INSTRUMENTS_PATH else None

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("bitmex's books carry no checksum to corrupt (and no sequence: ids are the check)")
