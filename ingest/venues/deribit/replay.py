"""Deribit's JSON-RPC WebSocket as the replay server speaks it.

WebSocket: one route (any path). `public/subscribe` and `public/unsubscribe` are answered as Deribit does
(`{"jsonrpc":"2.0","id":N,"result":[channels]}`); a subscription naming a `raw` channel is refused whole
with error 13778 (`raw_subscriptions_not_available_for_unauthorized`: raw needs an authenticated session,
which the replay server has not), so a handler subscribing raw channels hears nothing, as it would live. A
recording of raw channels serves the same instrument's channel of any interval (`book.X.raw` is played to
`book.X.100ms`). `public/set_heartbeat` is answered `ok` and followed by a `test_request` heartbeat, whose
`public/test` answer is counted (`tests`), as is every set_heartbeat (`heartbeats`). Subscribing a book
whose recording has started answers, after the result, with a snapshot of the book as Deribit has it at
the playback position (the recorded snapshot plus every change played since, skipped ones included):
that is how Deribit resyncs a client. Recorded answers are not replayed (the server answers by itself).
REST: `public/get_instruments?currency=C` answers the recorded body of that currency (else an empty
result); `public/get_last_trades_by_instrument` answers from the trades played so far, by trade_seq.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.frames import Frame
from ingest.venues.replay_routing import MessageSubscribed

PREFIX = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'
_RECORDED = "answer"
"""stream_of for recorded answers: a stream no client subscribes."""
RAW_REFUSED = {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"}


def stream_key(channel: str) -> str:
    """`book.BTC-PERPETUAL.100ms` -> `book.BTC-PERPETUAL`: a recorded interval serves any."""
    family, _, rest = channel.partition(".")
    return f"{family}.{rest.split('.')[0]}"


def _answer(request_id: object, result: object = None, error: dict[str, object] | None = None) -> str:
    body: dict[str, object] = {"jsonrpc": "2.0", "id": request_id}
    body |= {"error": error} if error is not None else {"result": result}
    return json.dumps(body | {"usIn": 0, "usOut": 0, "usDiff": 0, "testnet": False}, separators=(",", ":"))


def _notification(channel: str, data: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}},
                      separators=(",", ":"))


class _TruthBook:
    """One instrument's book as Deribit has it at the playback position: price -> amount per side."""

    def __init__(self, instrument: str) -> None:
        self.instrument = instrument
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = 0
        self.timestamp = 0

    def apply(self, data: dict[str, Any]) -> None:
        if data.get("type") == "snapshot" or ("type" not in data and "prev_change_id" not in data):
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for action, price, amount in levels:
                if action == "delete":
                    side.pop(price, None)
                else:
                    side[price] = amount
        self.change_id, self.timestamp = data["change_id"], data["timestamp"]

    def snapshot(self, channel: str) -> str:
        return _notification(channel, {
            "type": "snapshot", "timestamp": self.timestamp, "instrument_name": self.instrument,
            "change_id": self.change_id,
            "bids": [["new", price, self.bids[price]] for price in sorted(self.bids, reverse=True)],
            "asks": [["new", price, self.asks[price]] for price in sorted(self.asks)]})


class DeribitReplay(MessageSubscribed):
    route_name = "ws"

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        """Instrument -> its book at the playback position."""
        self.trades: dict[str, dict[int, dict[str, Any]]] = {}
        """Instrument -> trade_seq -> the trade, for every trade played so far."""
        self.heartbeats = 0
        self.tests = 0
        self.bodies: dict[str, bytes] = {}
        """currency -> the recorded get_instruments body."""
        for frame in frames:
            url = urlsplit(frame.url)
            if frame.kind == "rest" and url.path.endswith("/public/get_instruments"):
                self.bodies.setdefault(parse_qs(url.query).get("currency", [""])[0], frame.payload)

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
            method, request_id, params = message["method"], message.get("id"), message.get("params") or {}
            channels = [str(c) for c in params.get("channels") or []]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [_answer(None, error={"code": -32700, "message": "parse_error"})]
        if method == "public/set_heartbeat":
            self.heartbeats += 1
            return [_answer(request_id, "ok"),
                    json.dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}},
                               separators=(",", ":"))]
        if method == "public/test":
            self.tests += 1
            return [_answer(request_id, {"version": "replay"})]
        if method == "public/unsubscribe":
            streams.difference_update(stream_key(c) for c in channels)
            return [_answer(request_id, channels)]
        if method != "public/subscribe":
            return [_answer(request_id, error={"code": -32601, "message": "Method not found"})]
        if any(c.endswith(".raw") for c in channels):
            return [_answer(request_id, error=RAW_REFUSED)]
        streams.update(stream_key(c) for c in channels)
        replies = [_answer(request_id, channels)]
        for channel in channels:
            book = self.books.get(stream_key(channel).partition(".")[2]) if channel.startswith("book.") else None
            if book is not None:
                replies.append(book.snapshot(channel))
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        if not payload.startswith(PREFIX):
            return _RECORDED
        start = len(PREFIX)
        return stream_key(payload[start:payload.find(b'"', start)].decode())

    def observe(self, payload: bytes) -> None:
        if not payload.startswith(PREFIX + b"book.") and not payload.startswith(PREFIX + b"trades."):
            return
        params = json.loads(payload)["params"]
        data = params["data"]
        if params["channel"].startswith("trades."):
            for trade in data:
                self.trades.setdefault(trade["instrument_name"], {})[trade["trade_seq"]] = trade
            return
        book = self.books.get(data["instrument_name"])
        if book is None:
            if "prev_change_id" in data and data.get("type") != "snapshot":
                return  # changes of a book whose snapshot was not recorded
            book = self.books[data["instrument_name"]] = _TruthBook(data["instrument_name"])
        book.apply(data)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if path == "/api/v2/public/get_instruments":
            return self.bodies.get(query.get("currency", [""])[0], _answer(None, []).encode())
        if path == "/api/v2/public/get_last_trades_by_instrument":
            try:
                trades = self.trades.get(query["instrument_name"][0], {})
                first, last = int(query["start_seq"][0]), int(query["end_seq"][0])
                count = int(query.get("count", ["10"])[0])
            except (KeyError, ValueError):
                return _answer(None, error={"code": -32602, "message": "Invalid params"}).encode()
            seqs = sorted(seq for seq in trades if first <= seq <= last)
            return _answer(None, {"trades": [trades[seq] for seq in seqs[:count]],
                                  "has_more": len(seqs) > count}).encode()
        return None

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("deribit's books carry no checksum to corrupt (continuity is the change_id chain)")
