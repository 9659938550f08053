"""Kraken Futures (Derivatives WebSocket v1) as the replay server speaks it.

WebSocket `/ws/v1` (one route: any path reaches it). `{"event":"subscribe"|"unsubscribe","feed":F,
"product_ids":[...]}` is acknowledged one product at a time, as Kraken does
(`{"event":"subscribed","feed":"book","product_ids":["PI_ETHUSD"]}`, product ids upper case); a
message that is no subscription gets `{"event":"error","message":"Json Error"}`. Subscribing the
book of a product whose book has started playing answers, after the ack, with a `book_snapshot`
of the book as Kraken has it at the playback position (the recorded snapshot plus every delta
played since, skipped ones included) carrying the last seq: that is how Kraken resyncs a client.
Subscribing `trade` likewise answers with a `trade_snapshot` of the last 100 trades played,
newest first. Recorded acks and `info` events answered the recorder and are not played back.
REST: `/derivatives/api/v3/instruments` answers with the recorded body.
There is no checksum in v1: `corrupt` raises (use `skip` for a seq break).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ingest.frames import Frame
from ingest.venues.replay_routing import MessageSubscribed

RECENT_TRADES = 100
_FEED = re.compile(rb'^\{"feed":"([a-z_]+)","product_id":"([^"]+)"')
_STREAMS = {"book_snapshot": "book", "trade_snapshot": "trade"}
_RECORDED_EVENT = "event"
"""stream_of for recorded control frames: a stream no client subscribes."""


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class _TruthBook:
    """One product's book as Kraken has it at the playback position: price -> contracts."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.seq = 0
        self.timestamp = 0

    def snapshot(self, product: str) -> str:
        return _compact({"feed": "book_snapshot", "product_id": product, "timestamp": self.timestamp,
                         "seq": self.seq, "tickSize": None,
                         "bids": [{"price": p, "qty": self.bids[p]} for p in sorted(self.bids, reverse=True)],
                         "asks": [{"price": p, "qty": self.asks[p]} for p in sorted(self.asks)]})


class KrakenFuturesReplay(MessageSubscribed):
    route_name = "v1"

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.instruments = next((f.payload for f in frames if f.kind == "rest"
                                 and urlsplit(f.url).path.endswith("/instruments")), None)
        self.books: dict[str, _TruthBook] = {}
        self.trades: dict[str, deque[Any]] = {}
        """Product -> its most recent trades played, newest first."""

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
            event, feed = message["event"], message["feed"]
            products = [str(p).upper() for p in message.get("product_ids") or ()]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [_compact({"event": "error", "message": "Json Error"})]
        if event not in ("subscribe", "unsubscribe"):
            return [_compact({"event": "error", "message": "Json Error"})]
        replies = []
        for product in products or [""]:
            key = f"{feed}:{product}"
            replies.append(_compact({"event": f"{event}d", "feed": feed, "product_ids": [product]}))
            if event == "unsubscribe":
                streams.discard(key)
                continue
            streams.add(key)
            book = self.books.get(product)
            if feed == "book" and book is not None:
                replies.append(book.snapshot(product))
            trades = self.trades.get(product)
            if feed == "trade" and trades:
                replies.append(_compact({"feed": "trade_snapshot", "product_id": product, "trades": list(trades)}))
        return replies

    def stream_of(self, payload: bytes) -> str | None:
        match = _FEED.match(payload)
        if match:
            feed = match.group(1).decode()
            return f"{_STREAMS.get(feed, feed)}:{match.group(2).decode()}"
        try:
            message = json.loads(payload)
        except ValueError:
            return _RECORDED_EVENT
        if not isinstance(message, dict) or "event" in message:
            return _RECORDED_EVENT
        feed = str(message.get("feed", ""))
        return f"{_STREAMS.get(feed, feed)}:{message.get('product_id', '')}"

    def observe(self, payload: bytes) -> None:
        if payload.startswith(b'{"feed":"book'):
            message = json.loads(payload)
            product = message["product_id"]
            book: _TruthBook | None
            if message["feed"] == "book_snapshot":
                book = self.books[product] = _TruthBook()
                book.bids = {level["price"]: level["qty"] for level in message["bids"] if level["qty"]}
                book.asks = {level["price"]: level["qty"] for level in message["asks"] if level["qty"]}
            elif (book := self.books.get(product)) is not None:
                side = book.bids if message["side"] == "buy" else book.asks
                if message["qty"]:
                    side[message["price"]] = message["qty"]
                else:
                    side.pop(message["price"], None)
            else:
                return
            book.seq, book.timestamp = message["seq"], message["timestamp"]
        elif payload.startswith(b'{"feed":"trade'):
            message = json.loads(payload)
            recent = self.trades.setdefault(message["product_id"], deque(maxlen=RECENT_TRADES))
            if message["feed"] == "trade_snapshot":
                recent.clear()
                recent.extend(message["trades"])
            else:
                recent.appendleft(message)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if path.endswith("/derivatives/api/v3/instruments"):
            return self.instruments
        return None

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("Kraken Futures v1 sends no checksum to corrupt (skip a frame to break a book's seq)")
