"""Kraken spot as the replay server speaks it: WebSocket v2 on `/v2`, v1 on any other path.

A frame is served only on the route of its own format: v2 objects on `/v2`, v1 arrays elsewhere (a
v1 client of a v2 recording, or the reverse, hears nothing, as a client of the wrong API version
would). v2: `{"method":"subscribe"|"unsubscribe","params":{"channel":..,"symbol":[..],"depth":..},
"req_id":..}` is answered one symbol at a time as Kraken does (`{"method":"subscribe","result":
{"channel":"book","depth":1000,"symbol":"BTC/USD",...},"success":true,...}`); subscribing the book of
a symbol whose book has started playing answers, after that, with a v2 `snapshot` of the book as
Kraken has it at the playback position (the recorded snapshot and every update played since,
skipped and corrupted ones included, cut to the depth asked) with its checksum computed here:
that is how Kraken resyncs a client. `{"method":"ping"}` is answered with a pong and counted
(`pings`). A message of the other version is refused (v2: `success` false; v1: an `error` event).
v1: `{"event":"subscribe","pair":[..],"subscription":{"name":..,"depth":..}}` is acknowledged with
`subscriptionStatus` per pair. Recorded acknowledgements and status frames answered the recorder
and are not played back. REST `/0/public/AssetPairs` answers with the recorded body.
`corrupt` alters a book frame's checksum (v2 `checksum`, v1 `c`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ingest.frames import Frame

DEPTH = 1000
CHECKSUM_DEPTH = 10
_V2_STREAM = re.compile(rb'^\{"channel":"([a-z]+)","type":"[a-z]+","data":\[\{"symbol":"([^"]+)"')
_V2_CHECKSUM = re.compile(rb'"checksum":(\d+)')
_V1_CHECKSUM = re.compile(rb'"c":"(\d+)"')
_RECORDED_EVENT = "event"
"""stream_of for recorded answers and status frames: a stream no client subscribes."""


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


class _TruthBook:
    """One pair's book as Kraken has it at the playback position: price text -> quantity text."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def apply(self, data: dict[str, Any], snapshot: bool) -> None:
        if snapshot:
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.asks, data["asks"]), (self.bids, data["bids"])):
            for level in levels:
                price, qty = str(level["price"]), str(level["qty"])
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        # cut to the depth only when over it: sorting 1,000 levels by Decimal on every frame was most of
        # the server's time, enough to leave `GET /_replay` unanswered on a loaded machine
        if len(self.bids) > DEPTH:
            self.bids = dict(self.sorted(self.bids, True)[:DEPTH])
        if len(self.asks) > DEPTH:
            self.asks = dict(self.sorted(self.asks, False)[:DEPTH])

    @staticmethod
    def sorted(side: dict[str, str], descending: bool) -> list[tuple[str, str]]:
        return sorted(side.items(), key=lambda item: Decimal(item[0]), reverse=descending)

    def snapshot(self, symbol: str, depth: int) -> str:
        bids = self.sorted(self.bids, True)[:depth]
        asks = self.sorted(self.asks, False)[:depth]
        text = "".join(_digits(p) + _digits(q) for p, q in asks[:CHECKSUM_DEPTH] + bids[:CHECKSUM_DEPTH])
        levels = {side: ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in entries)
                  for side, entries in (("bids", bids), ("asks", asks))}
        return (f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}","bids":[{levels["bids"]}],'
                f'"asks":[{levels["asks"]}],"checksum":{zlib.crc32(text.encode())}}}]}}')


class KrakenReplay:
    def __init__(self, frames: Sequence[Frame]) -> None:
        self.asset_pairs = next((f.payload for f in frames if f.kind == "rest"
                                 and urlsplit(f.url).path.endswith("/AssetPairs")), None)
        self.books: dict[str, _TruthBook] = {}
        self.pings = 0

    def route_of(self, path: str) -> str:
        return "v2" if path.rstrip("/").endswith("/v2") else "v1"

    def serves(self, route: str, stream: str) -> bool:
        return stream == _RECORDED_EVENT or stream.startswith(f"{route}:")

    def streams_from_path(self, path: str) -> set[str]:
        return set()

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return [_compact({"event": "error", "errorMessage": "Malformed request"}) if route == "v1" else
                    _compact({"error": "Malformed request", "method": "", "success": False})]
        if route == "v1":
            return self._v1(message, streams)
        return self._v2(message, streams)

    def _v1(self, message: dict[str, Any], streams: set[str]) -> list[str]:
        event = message.get("event")
        if event == "ping":
            self.pings += 1
            return [_compact({"event": "pong", "reqid": message.get("reqid")})]
        subscription = message.get("subscription")
        if event not in ("subscribe", "unsubscribe") or not isinstance(subscription, dict):
            return [_compact({"event": "error", "errorMessage": f"Unsupported event {event}"})]
        name = str(subscription.get("name", ""))
        channel = f"{name}-{subscription.get('depth', 10)}" if name == "book" else name
        replies = []
        for pair in message.get("pair") or ():
            key = f"v1:{channel}:{pair}"
            (streams.add if event == "subscribe" else streams.discard)(key)
            replies.append(_compact({"channelName": channel, "event": "subscriptionStatus", "pair": pair,
                                     "status": f"{event}d", "subscription": subscription}))
        return replies

    def _v2(self, message: dict[str, Any], streams: set[str]) -> list[str]:
        method, req_id = message.get("method"), message.get("req_id")
        if method == "ping":
            self.pings += 1
            return [_compact({"method": "pong", "req_id": req_id})]
        params = message.get("params")
        if method not in ("subscribe", "unsubscribe") or not isinstance(params, dict):
            return [_compact({"error": f"Unsupported method {method}", "method": method, "success": False,
                              "req_id": req_id})]
        channel, depth = str(params.get("channel", "")), int(params.get("depth") or 10)
        replies = []
        for symbol in params.get("symbol") or ():
            key = f"v2:{channel}:{symbol}"
            result: dict[str, Any] = {"channel": channel, "symbol": symbol}
            if channel == "book":
                result["depth"] = depth
            replies.append(_compact({"method": method, "result": result, "success": True, "req_id": req_id}))
            if method == "unsubscribe":
                streams.discard(key)
                continue
            streams.add(key)
            book = self.books.get(symbol)
            if channel == "book" and book is not None:
                replies.append(book.snapshot(symbol, depth))
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        match = _V2_STREAM.match(payload)
        if match:
            return f"v2:{match.group(1).decode()}:{match.group(2).decode()}"
        try:
            message = json.loads(payload)
        except ValueError:
            return _RECORDED_EVENT
        if isinstance(message, list) and len(message) >= 4:
            return f"v1:{message[-2]}:{message[-1]}"
        if isinstance(message, dict):
            if message.get("event") == "heartbeat":
                return "v1:heartbeat"
            if message.get("channel") == "heartbeat":
                return "v2:heartbeat"
            if isinstance(message.get("data"), list) and message["data"] and isinstance(message["data"][0], dict):
                return f"v2:{message.get('channel')}:{message['data'][0].get('symbol')}"
        return _RECORDED_EVENT

    def observe(self, payload: bytes) -> None:
        if not payload.startswith(b'{"channel":"book"'):
            return
        message = json.loads(payload, parse_float=str, parse_int=str)
        snapshot = message.get("type") == "snapshot"
        for data in message.get("data", ()):
            book = self.books.get(data["symbol"])
            if book is None:
                if not snapshot:
                    continue
                book = self.books[data["symbol"]] = _TruthBook()
            book.apply(data, snapshot)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if path.endswith("/0/public/AssetPairs"):
            return self.asset_pairs
        return None

    def corrupt(self, payload: bytes) -> bytes:
        """A book frame with its checksum off by one."""
        match = _V2_CHECKSUM.search(payload) or _V1_CHECKSUM.search(payload)
        if match is None:
            raise ValueError("only Kraken book frames carry a checksum to corrupt")
        wrong = (int(match.group(1)) + 1) % 2**32
        return payload[:match.start(1)] + str(wrong).encode() + payload[match.end(1):]
