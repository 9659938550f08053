"""Binance USD-M as the replay server speaks it.

WebSocket: `/<route>/stream?streams=a@aggTrade/b@aggTrade...` (combined stream, subscribed by
URL), `/<route>/ws/a@depth/b@depth`, and `{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS",
"params": [...], "id": n}`. Routes are enforced as the venue does since 2026-04-23 (see
ingest/venues/binance_usdm/connection.py): a stream is sent only on its route (`/public` or `/market`); an
unrouted URL (`/stream?...`, `/ws/...`) is served as `/public`, so `/market` streams subscribed
there are acknowledged and never sent.
REST: `/fapi/v1/depth` answers with the book as the venue would have it at the current playback
position (the recorded snapshot plus every diff played since, skipped ones included), so a
client that resyncs after an injected gap gets a snapshot consistent with the stream;
`/fapi/v1/aggTrades?symbol=&fromId=&limit=` answers with the aggregate trades played so far, as the
venue keeps its trade history; `/fapi/v1/exchangeInfo`, `/fapi/v1/fundingInfo` and
`/fapi/v1/openInterest` answer with recorded bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from ingest.frames import Frame

_STREAM = re.compile(rb'^\{"stream":"([^"]+)"')
_AGG_TRADE_REST_FIELDS = ("a", "p", "q", "f", "l", "T", "m")
_ROUTE_NAMES = ("public", "market", "private")
UNROUTED = "unrouted"
"""The retired root (`/stream`, `/ws`): served as `/public` since 2026-04-23."""
VENUE_ROUTES = {"public": ("depth", "bookTicker", "trade"),
                "market": ("aggTrade", "markPrice", "forceOrder", "kline", "continuousKline", "ticker", "miniTicker")}
"""Which route the venue serves each stream family on. Kept apart from the handler's own table
(ingest/venues/binance_usdm/connection.py) on purpose: this is the venue's behaviour, that is the client's
choice, and the tests compare both with docs/venues.md."""
_SERVED_ON = {name: route for route, names in VENUE_ROUTES.items() for name in names}
_FAMILY = re.compile(r"[A-Za-z]+")


class _TruthBook:
    def __init__(self, snapshot: dict[str, object]) -> None:
        self.snapshot_id = int(snapshot["lastUpdateId"])  # type: ignore[call-overload]
        self.last_u = self.snapshot_id
        self.bids = {p: q for p, q in snapshot["bids"]}  # type: ignore[attr-defined]
        self.asks = {p: q for p, q in snapshot["asks"]}  # type: ignore[attr-defined]
        self.event_ms = snapshot.get("E")
        self.transaction_ms = snapshot.get("T")
        self.timed = "E" in snapshot
        """The venue's snapshots carry times (futures), or none (spot)."""
        self.original = snapshot

    def apply(self, diff: dict[str, object]) -> None:
        if int(diff["u"]) <= self.last_u:  # type: ignore[call-overload]
            return
        for side, levels in ((self.bids, diff["b"]), (self.asks, diff["a"])):
            for price, size in levels:  # type: ignore[attr-defined]
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.last_u = int(diff["u"])  # type: ignore[call-overload]
        self.event_ms, self.transaction_ms = diff.get("E"), diff.get("T")

    def body(self, limit: int) -> bytes:
        if self.last_u == self.snapshot_id:
            return json.dumps(self.original, separators=(",", ":")).encode()
        bids = sorted(self.bids.items(), key=lambda level: Decimal(level[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))[:limit]
        times = {"E": self.event_ms, "T": self.transaction_ms} if self.timed else {}
        return json.dumps({"lastUpdateId": self.last_u, **times,
                           "bids": [list(level) for level in bids], "asks": [list(level) for level in asks]},
                          separators=(",", ":")).encode()


class BinanceUsdmReplay:
    DEPTH_PATH = "/fapi/v1/depth"
    AGG_TRADES_PATH = "/fapi/v1/aggTrades"

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.books: dict[str, _TruthBook] = {}
        self.agg_trades: dict[str, list[dict[str, object]]] = {}
        """Per symbol, the aggregate trades played (sent or skipped), as /fapi/v1/aggTrades lists them."""
        self.bodies: dict[tuple[str, str], bytes] = {}
        for frame in frames:
            if frame.kind != "rest":
                continue
            parts = urlsplit(frame.url)
            symbol = parse_qs(parts.query).get("symbol", [""])[0]
            if parts.path.endswith("/depth") and symbol not in self.books:
                self.books[symbol] = _TruthBook(json.loads(frame.payload))
            else:
                self.bodies.setdefault((parts.path, symbol), frame.payload)

    def route_of(self, path: str) -> str:
        first = path.strip("/").split("/", 1)[0]
        return first if first in _ROUTE_NAMES else UNROUTED

    def serves(self, route: str, stream: str) -> bool:
        match = _FAMILY.match(stream.partition("@")[2])
        served_on = _SERVED_ON.get(match.group(0)) if match else None
        return served_on is not None and served_on == ("public" if route == UNROUTED else route)

    def streams_from_path(self, path: str) -> set[str]:
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if segments and segments[0] in _ROUTE_NAMES:
            segments = segments[1:]
        if segments[:1] == ["ws"]:
            return set(segments[1:])
        streams = parse_qs(parts.query).get("streams", [""])[0]
        return {s for s in streams.split("/") if s}

    def on_client_message(self, text: str, streams: set[str], route: str) -> str | None:
        try:
            message = json.loads(text)
            method, params, request_id = message["method"], message.get("params", []), message["id"]
        except (ValueError, KeyError, TypeError):
            return json.dumps({"error": {"code": 2, "msg": "Invalid request"}})
        if method == "SUBSCRIBE":
            streams.update(params)
        elif method == "UNSUBSCRIBE":
            streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            return json.dumps({"result": sorted(streams), "id": request_id})
        else:
            return json.dumps({"error": {"code": 1, "msg": f"unknown method {method}"}, "id": request_id})
        return json.dumps({"result": None, "id": request_id})

    def stream_of(self, payload: bytes) -> str | None:
        match = _STREAM.match(payload)
        return match.group(1).decode() if match else None

    def observe(self, payload: bytes) -> None:
        if b'"e":"aggTrade"' in payload:
            message = json.loads(payload)
            trade = message.get("data", message)
            self.agg_trades.setdefault(trade["s"], []).append({key: trade[key] for key in _AGG_TRADE_REST_FIELDS})
            return
        if b'"e":"depthUpdate"' not in payload:
            return
        message = json.loads(payload)
        diff = message.get("data", message)
        book = self.books.get(diff["s"])
        if book is not None:
            book.apply(diff)

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        symbol = query.get("symbol", [""])[0]
        if path == self.DEPTH_PATH:
            book = self.books.get(symbol)
            return book.body(int(query.get("limit", ["1000"])[0])) if book else None
        if path == self.AGG_TRADES_PATH and "fromId" in query:
            from_id, limit = int(query["fromId"][0]), min(1000, int(query.get("limit", ["500"])[0]))
            page = [t for t in self.agg_trades.get(symbol, []) if t["a"] >= from_id][:limit]  # type: ignore[operator]
            return json.dumps(page, separators=(",", ":")).encode()
        return self.bodies.get((path, symbol)) or self.bodies.get((path, ""))

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("binance-usdm frames carry no checksum to corrupt")
