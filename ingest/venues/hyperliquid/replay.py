"""Hyperliquid as the replay server speaks it.

WebSocket `/ws`: `{"method":"subscribe"|"unsubscribe","subscription":{"type":..,"coin":..}}` is
acknowledged with a `subscriptionResponse` echoing the subscription (a duplicate subscribe, or an
unsubscribe of nothing, with an `error` frame, as the venue does), then, like the venue, the
current state of what was subscribed: the 30 most recent trades of the coin (so a reconnecting
client receives trades it already has, which the normalizer must drop) or the latest book, bbo or
asset context frame. `{"method":"ping"}` is answered `{"channel":"pong"}`. Recorded control
frames (acknowledgements, pongs, errors in a ticklake capture) answered the recorder, and are
never played back.

REST `POST /info` answers by the body's `type` (and `coin`) with the recorded body of the same
request, `l2Book` with the latest book played. `fundingHistory` is answered as recorded,
whatever `startTime` asks for.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

from ingest.frames import Frame
from ingest.venues.replay_routing import MessageSubscribed

RECENT_TRADES = 30
"""Trades the venue replays on a trades subscription."""
CONTROL = "control"
"""The stream of recorded control frames: no client subscribes to it."""
_STREAM = re.compile(rb'^\{"channel":"([A-Za-z0-9]+)","data":\[?\{"coin":"([^"]+)"')
_CHANNEL_STREAM = {"activeSpotAssetCtx": "activeAssetCtx"}
"""Channels a frame is sent on -> the subscription type that yields them."""


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _request_key(body: bytes | str) -> tuple[str, str] | None:
    """(type, coin) of an /info request body; None if it is not one."""
    try:
        request = json.loads(body)
        return str(request["type"]), str(request.get("coin") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class HyperliquidReplay(MessageSubscribed):
    def __init__(self, frames: Sequence[Frame]) -> None:
        self.bodies: dict[tuple[str, str], bytes] = {}
        for frame in frames:
            key = _request_key(frame.url.partition("#")[2]) if frame.kind == "rest" else None
            if key is not None:
                self.bodies.setdefault(key, frame.payload)
        self.latest: dict[str, bytes] = {}
        """Stream (`type:coin`) -> the last frame played, for state channels."""
        self.recent_trades: dict[str, deque[Any]] = {}
        """Coin -> its most recent trades played, oldest first."""

    def on_client_message(self, text: str, streams: set[str], route: str) -> list[str]:
        try:
            message = json.loads(text)
            method = message["method"]
            if method == "ping":
                return ['{"channel":"pong"}']
            subscription = message["subscription"]
            stream = f"{subscription['type']}:{subscription.get('coin', '')}"
        except (ValueError, KeyError, TypeError):
            return [_compact({"channel": "error", "data": f"Error parsing JSON into valid websocket request: {text}"})]
        ack = _compact({"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}})
        if method == "unsubscribe":
            if stream not in streams:
                return [_compact({"channel": "error", "data": f"Already unsubscribed: {_compact(subscription)}"})]
            streams.discard(stream)
            return [ack]
        if method != "subscribe":
            return [_compact({"channel": "error", "data": f"Unknown method: {method}"})]
        if stream in streams:
            return [_compact({"channel": "error", "data": f"Already subscribed: {_compact(subscription)}"})]
        streams.add(stream)
        return [ack, *self._state(subscription["type"], str(subscription.get("coin", "")), stream)]

    def _state(self, channel: str, coin: str, stream: str) -> list[str]:
        """What the venue sends right after acknowledging a subscription."""
        if channel == "trades":
            recent = self.recent_trades.get(coin)
            return [_compact({"channel": "trades", "data": list(recent)})] if recent else []
        latest = self.latest.get(stream)
        return [latest.decode()] if latest is not None else []

    def stream_of(self, payload: bytes) -> str | None:
        match = _STREAM.match(payload)
        if match is not None:
            channel, coin = match.group(1).decode(), match.group(2).decode()
        else:  # keys in another order, or a control frame
            try:
                message = json.loads(payload)
                channel, data = message["channel"], message.get("data")
                coin = (data[0] if isinstance(data, list) else data)["coin"]
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                return CONTROL
        return f"{_CHANNEL_STREAM.get(channel, channel)}:{coin}"

    def observe(self, payload: bytes) -> None:
        stream = self.stream_of(payload)
        if stream is None or stream == CONTROL:
            return
        if stream.startswith("trades:"):
            recent = self.recent_trades.setdefault(stream[len("trades:"):], deque(maxlen=RECENT_TRADES))
            recent.extend(json.loads(payload)["data"])
        else:
            self.latest[stream] = payload

    def rest(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes | None:
        if method != "POST" or path != "/info":
            return None
        key = _request_key(body)
        if key is None:
            return None
        kind, coin = key
        if kind == "l2Book" and f"l2Book:{coin}" in self.latest:
            return _compact(json.loads(self.latest[f"l2Book:{coin}"])["data"]).encode()
        return self.bodies.get((kind, coin)) or self.bodies.get((kind, ""))

    def corrupt(self, payload: bytes) -> bytes:
        raise ValueError("hyperliquid frames carry no checksum to corrupt")
