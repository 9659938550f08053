"""Coinbase as the replay server speaks it, in both protocols at once: a client subscribes in either
form and gets the recorded frames of what it subscribed, whichever protocol recorded them (the
normalizer reads both).

WebSocket (one URL): `{"type":"subscribe"|"unsubscribe","product_ids":[...],"channel":"level2"}`
(Advanced Trade: one channel a message) or `..."channels":["level2_batch", {"name":...,
"product_ids":[...]}]` (Exchange); answered with a `subscriptions` message in the request's form.
Streams are `<channel>:<product>` under Advanced Trade's channel names (the Exchange's level2 and
level2_batch are `level2`, matches `market_trades`, heartbeat `heartbeats`). Subscribing `level2` for
a product whose book has started playing answers, after the ack, with a snapshot of the book as the
venue has it at the playback position (the recorded snapshot plus every update played since, skipped
ones included) in the recorded protocol's shape: that is how Coinbase resyncs a client. An Advanced
Trade snapshot repeats the last sequence_num played (the server numbers frames as recorded, not per
connection). Recorded acks, heartbeats and subscriptions are not replayed.
REST: `/products` and `/api/v3/brokerage/market/products` answer with recorded bodies (Advanced
Trade's path, where only the Exchange's body was recorded, with that body in Advanced Trade's shape);
`/products/<id>/trades?after=&limit=` with the trades played so far, newest first, as the Exchange
keeps them. Coinbase books carry no checksum: nothing to corrupt.
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

ROUTE = "ws"
VENUE_ROUTES = {ROUTE: ("level2", "market_trades", "ticker", "ticker_batch", "heartbeats", "candles", "status")}
"""The venue's one route per protocol and the channels it serves (kept apart from the handler's table;
the tests compare both with docs/venues.md)."""
CANONICAL = {"level2": "level2", "level2_batch": "level2", "l2_data": "level2", "matches": "market_trades",
             "market_trades": "market_trades", "ticker": "ticker", "ticker_batch": "ticker_batch",
             "heartbeat": "heartbeats", "heartbeats": "heartbeats", "status": "status", "candles": "candles"}
_EXCHANGE_STREAMS = {"snapshot": "level2", "l2update": "level2", "match": "market_trades",
                     "last_match": "market_trades", "ticker": "ticker"}
_CONTROL = "control"
"""stream_of for recorded acks, heartbeats and errors: a stream no client subscribes."""
_PRODUCT = re.compile(rb'"product_id":"([^"]+)"')
_TYPE = re.compile(rb'^\{"type":"([a-z_0-9]+)"')
_CHANNEL = re.compile(rb'^\{"channel":"([a-z_0-9]+)"')
_TRADES_PATH = re.compile(r"^/products/([^/]+)/trades$")


AT_PRODUCTS = "/api/v3/brokerage/market/products"


def _restated_products(body: bytes, only: set[str]) -> bytes:
    """A recorded Exchange /products body in Advanced Trade's products shape (spot products, the same
    ids, increments and status), for a client asking Advanced Trade's path of a server that recorded
    the Exchange's: the venue's own product terms, as the other API lists them."""
    products = [{"product_id": p["id"], "product_type": "SPOT", "base_currency_id": p["base_currency"],
                 "quote_currency_id": p["quote_currency"], "base_increment": p["base_increment"],
                 "quote_increment": p["quote_increment"], "price_increment": p["quote_increment"],
                 "base_min_size": p.get("base_min_size", ""), "status": p.get("status", ""),
                 "trading_disabled": p.get("trading_disabled", False)}
                for p in json.loads(body) if not only or p["id"] in only]
    return json.dumps({"products": products, "num_products": len(products), "pagination": None},
                      separators=(",", ":")).encode()


def _error(reason: str) -> str:
    """As the venue refuses a request (the Exchange's shape; Advanced Trade's errors are alike)."""
    return json.dumps({"type": "error", "message": "Failed to subscribe", "reason": reason}, separators=(",", ":"))


class _TruthBook:
    """One product's book as the venue has it at the playback position: price text -> size text."""

    def __init__(self, product: str) -> None:
        self.product = product
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def set(self, bid: bool, price: str, size: str) -> None:
        side = self.bids if bid else self.asks
        if Decimal(size) == 0:
            side.pop(price, None)
        else:
            side[price] = size

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        return ([[p, self.bids[p]] for p in sorted(self.bids, key=Decimal, reverse=True)],
                [[p, self.asks[p]] for p in sorted(self.asks, key=Decimal)])


class CoinbaseReplay(MessageSubscribed):
    route_name = ROUTE

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}
        """Per product, the trades played (sent or skipped), as the Exchange's REST lists them."""
        self.advanced = False
        """The recording is Advanced Trade's (l2_data seen): resync snapshots take its shape."""
        self.last_sequence = 0
        self.last_timestamp = "1970-01-01T00:00:00Z"
        self.bodies: dict[str, bytes] = {}
        for frame in frames:
            if frame.kind == "rest":
                self.bodies.setdefault(urlsplit(frame.url).path, frame.payload)

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
            kind, products = message["type"], [str(p) for p in message.get("product_ids", [])]
            if "channel" in message:
                channels = [(str(message["channel"]), products)]
            else:
                channels = [(c, products) if isinstance(c, str) else (c["name"], list(c.get("product_ids", products)))
                            for c in message["channels"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [_error(f"bad request {text[:80]}")]
        if kind not in ("subscribe", "unsubscribe"):
            return [_error(f"unknown type {kind}")]
        snapshots = []
        for name, ids in channels:
            channel = CANONICAL.get(name)
            if channel is None:
                return [_error(f"{name} is not a valid channel")]
            for product in ids:
                key = f"{channel}:{product}"
                if kind == "unsubscribe":
                    streams.discard(key)
                    continue
                streams.add(key)
                if channel == "level2" and product in self.books:
                    snapshots.append(self._snapshot(self.books[product]))
        return [self._ack(streams, "channel" in message), *snapshots]

    def _ack(self, streams: set[str], advanced: bool) -> str:
        by_channel: dict[str, list[str]] = {}
        for key in sorted(streams):
            channel, _, product = key.partition(":")
            by_channel.setdefault(channel, []).append(product)
        if advanced:
            return json.dumps({"channel": "subscriptions", "client_id": "", "timestamp": self.last_timestamp,
                               "sequence_num": self.last_sequence, "events": [{"subscriptions": by_channel}]},
                              separators=(",", ":"))
        return json.dumps({"type": "subscriptions", "channels": [{"name": c, "product_ids": p}
                                                                for c, p in by_channel.items()]}, separators=(",", ":"))

    def _snapshot(self, book: _TruthBook) -> str:
        bids, asks = book.levels()
        if not self.advanced:
            return json.dumps({"type": "snapshot", "product_id": book.product, "bids": bids, "asks": asks},
                              separators=(",", ":"))
        updates = [{"side": side, "event_time": "1970-01-01T00:00:00Z", "price_level": p, "new_quantity": q}
                   for side, levels in (("bid", bids), ("offer", asks)) for p, q in levels]
        return json.dumps({"channel": "l2_data", "client_id": "", "timestamp": self.last_timestamp,
                           "sequence_num": self.last_sequence, "events": [
                               {"type": "snapshot", "product_id": book.product, "updates": updates}]},
                          separators=(",", ":"))

    def stream_of(self, payload: bytes) -> str | None:
        match = _CHANNEL.match(payload) or _TYPE.match(payload)
        if match is None:
            return _CONTROL
        name = match.group(1).decode()
        channel = CANONICAL.get(name) if match.re is _CHANNEL else _EXCHANGE_STREAMS.get(name)
        product = _PRODUCT.search(payload)
        if channel is None or channel in ("heartbeats", "status", "candles") or product is None:
            return _CONTROL
        return f"{channel}:{product.group(1).decode()}"

    def observe(self, payload: bytes) -> None:
        match = _CHANNEL.match(payload)
        if match is not None:
            self._observe_advanced(match.group(1), payload)
            return
        match = _TYPE.match(payload)
        kind = match.group(1) if match else b""
        if kind in (b"snapshot", b"l2update"):
            m = json.loads(payload)
            book = self.books.setdefault(m["product_id"], _TruthBook(m["product_id"]))
            if kind == b"snapshot":
                book.bids = {p: q for p, q in m["bids"] if Decimal(q)}
                book.asks = {p: q for p, q in m["asks"] if Decimal(q)}
            else:
                for side, price, size in m["changes"]:
                    book.set(side == "buy", price, size)
        elif kind in (b"match", b"last_match"):
            m = json.loads(payload)
            self._trade(m["product_id"], m["trade_id"], m["price"], m["size"], m["side"], m["time"])

    def _observe_advanced(self, channel: bytes, payload: bytes) -> None:
        m = json.loads(payload)
        self.last_sequence, self.last_timestamp = m.get("sequence_num", 0), m.get("timestamp", self.last_timestamp)
        if channel == b"l2_data":
            self.advanced = True
            for event in m["events"]:
                book = self.books.setdefault(event["product_id"], _TruthBook(event["product_id"]))
                if event["type"] == "snapshot":
                    book.bids.clear()
                    book.asks.clear()
                for u in event["updates"]:
                    book.set(u["side"] == "bid", u["price_level"], u["new_quantity"])
        elif channel == b"market_trades":
            for event in m["events"]:
                for t in event["trades"]:
                    if t["trade_id"].isdigit():  # the Exchange's REST lists the maker's side
                        self._trade(t["product_id"], int(t["trade_id"]), t["price"], t["size"],
                                    "sell" if t["side"] == "BUY" else "buy", t["time"])

    def _trade(self, product: str, trade_id: int, price: str, size: str, maker_side: str, time: str) -> None:
        played = self.trades.setdefault(product, [])
        if not played or trade_id > played[-1]["trade_id"]:
            played.append({"time": time, "trade_id": trade_id, "price": price, "size": size, "side": maker_side})

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        match = _TRADES_PATH.match(path)
        if match is not None:
            after = int(query.get("after", ["0"])[0]) or 2**63
            limit = min(1000, int(query.get("limit", ["1000"])[0]))
            page = [t for t in reversed(self.trades.get(match.group(1), [])) if t["trade_id"] < after][:limit]
            return json.dumps(page, separators=(",", ":")).encode()
        if path == AT_PRODUCTS and path not in self.bodies and "/products" in self.bodies:
            return _restated_products(self.bodies["/products"], set(query.get("product_ids", [])))
        return self.bodies.get(path)

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("coinbase books carry no checksum to corrupt")
