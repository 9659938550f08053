"""Hyperliquid's messages as they are on the wire: one msgspec Struct per channel and info body,
field names as Hyperliquid sends them, and their decoders."""

from __future__ import annotations

import msgspec

VENUE = "hyperliquid"
MS = 1_000_000

CONNECTED_TEXT = b"Websocket connection established."


class WsLevel(msgspec.Struct, frozen=True, gc=False):
    """gc=False (no reference cycles possible) makes decoding 40 of these a message cheaper."""

    px: float  # price (a decimal string on the wire)
    sz: float  # size, base units; `n` (orders at the level) is not read


class WsBook(msgspec.Struct, frozen=True, gc=False):
    coin: str
    levels: tuple[list[WsLevel], list[WsLevel]]  # bids best first, asks best first
    time: int  # ms


class WsTrade(msgspec.Struct, frozen=True, gc=False):
    """Price and size stay text until the exactness check; `hash` and `users` are not read."""

    coin: str
    side: str  # "B": the taker bought, "A": the taker sold
    px: str
    sz: str  # base units
    time: int  # trade time, ms
    tid: int  # trade id


class WsBbo(msgspec.Struct, frozen=True):
    coin: str
    time: int  # ms
    bbo: list[WsLevel | None]  # [bid, ask]


class PerpCtx(msgspec.Struct, frozen=True):
    funding: float  # rate accruing this hour, fraction per hour
    openInterest: float  # base units
    oraclePx: float  # the index
    markPx: float


class WsActiveAssetCtx(msgspec.Struct, frozen=True):
    coin: str
    ctx: PerpCtx


class Subscription(msgspec.Struct, frozen=True):
    type: str
    coin: str | None = None


class SubscriptionAck(msgspec.Struct, frozen=True):
    method: str  # subscribe or unsubscribe
    subscription: Subscription


class L2BookMsg(msgspec.Struct, tag_field="channel", tag="l2Book", frozen=True, gc=False):
    data: WsBook


class TradesMsg(msgspec.Struct, tag_field="channel", tag="trades", frozen=True, gc=False):
    data: list[WsTrade]


class BboMsg(msgspec.Struct, tag_field="channel", tag="bbo", frozen=True):
    data: WsBbo


class ActiveAssetCtxMsg(msgspec.Struct, tag_field="channel", tag="activeAssetCtx", frozen=True):
    data: WsActiveAssetCtx


class ActiveSpotAssetCtxMsg(msgspec.Struct, tag_field="channel", tag="activeSpotAssetCtx", frozen=True):
    """Spot context: nothing in it maps to the contract, so its data is not decoded."""


class SubscriptionResponseMsg(msgspec.Struct, tag_field="channel", tag="subscriptionResponse", frozen=True):
    data: SubscriptionAck


class PongMsg(msgspec.Struct, tag_field="channel", tag="pong", frozen=True):
    """The answer to the app-level `{"method":"ping"}`."""


class ErrorMsg(msgspec.Struct, tag_field="channel", tag="error", frozen=True):
    data: str  # the venue's message, e.g. for a subscription it refused


Message = (L2BookMsg | TradesMsg | BboMsg | ActiveAssetCtxMsg | ActiveSpotAssetCtxMsg | SubscriptionResponseMsg
           | PongMsg | ErrorMsg)


class InfoRequest(msgspec.Struct, frozen=True):
    """The JSON body of a POST /info request, carried as the URL fragment."""

    type: str
    coin: str | None = None


class AssetMeta(msgspec.Struct, frozen=True):
    name: str  # the coin, as used in subscriptions
    szDecimals: int  # size decimals: lot size 10^-szDecimals
    isDelisted: bool = False  # maxLeverage and margin fields are not part of the contract


class Meta(msgspec.Struct, frozen=True):
    universe: list[AssetMeta]


class FundingEntry(msgspec.Struct, frozen=True):
    coin: str
    fundingRate: float  # settled rate, fraction per interval; `premium` is not read
    time: int  # settlement time, ms


message_decoder = msgspec.json.Decoder(Message, strict=False)
request_decoder = msgspec.json.Decoder(InfoRequest)
meta_decoder = msgspec.json.Decoder(Meta, strict=False)
funding_history_decoder = msgspec.json.Decoder(list[FundingEntry], strict=False)
book_body_decoder = msgspec.json.Decoder(WsBook, strict=False)
