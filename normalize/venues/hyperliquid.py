"""Hyperliquid (perpetuals DEX): raw frames -> contract records.

Frames are `{"channel": <type>, "data": ...}`, one subscription per (type, coin):

* `trades` -> trade. `side` is the aggressor: "B" (bid) means the taker bought, "A" (ask) that it
  sold; a "B" trade prints at the best ask (checked against the book in the tests). `tid` is the
  trade id, `time` ms the trade time; `hash` and `users` (the two addresses) are not read. On every
  subscription the venue first replays its most recent trades (30 of them), so after a reconnect
  trades already seen are dropped by `tid` (per coin, the last TRADE_MEMORY ids remembered). When
  none of a replay's trades was seen before, trades may have been missed between the last one seen
  and the replay: the first new trade carries GAP_BEFORE and a feed_status `gap` is journaled.
  {"channel":"trades","data":[{"coin":"BTC","hash":"0x84f7...","px":"105056.0","side":"B",
   "sz":"0.01853","tid":754186699313231,"time":1737918853204,"users":["0x592c...","0x6802..."]}]}
* `l2Book` -> book_delta (+ a DERIVED bbo). Every message is a FULL snapshot of the top 20 levels
  per side (`px`, `sz` base units, `n` orders), pushed at most every 0.5 s. ticklake diffs each one
  against the previous book of that coin: levels that left the window get size 0, new or changed
  levels their size; nothing is emitted for an unchanged book. Every row is DEPTH_LIMITED (a level
  that leaves the top 20 may still rest on the venue). The first snapshot of a subscription (a new
  connection, or a resubscription) is emitted as SNAPSHOT rows that replace the book, with
  GAP_BEFORE when the book was live before (what changed meanwhile is unknown). There is no
  sequence number or checksum: a gap inside one connection cannot be detected, and none matters
  for the book, because the next snapshot is diffed against what ticklake holds.
  {"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":5,"px":"105055.0","sz":"3.03622"},...],
   [{"n":13,"px":"105056.0","sz":"6.34472"},...]],"time":1737918843542}}
* `bbo` -> bbo (venue-native). `bbo` is [bid, ask], a side null (or absent) when empty.
* `activeAssetCtx` (perps) -> mark_index (mark `markPx`, index `oraclePx`), funding (`funding`,
  the rate accruing for the current hour, which settles at the next whole hour: interval_s 3600,
  next_funding_ts that hour) and open_interest (`openInterest`, base units). The message has no
  time: ts_event is ts_recv, flagged TS_EVENT_IMPUTED.
  {"channel":"activeAssetCtx","data":{"coin":"MOODENG","ctx":{"funding":"0.00004863",
   "openInterest":"18617460.0","oraclePx":"0.1995","markPx":"0.19963",...}}}
* `activeSpotAssetCtx` (what an activeAssetCtx subscription of a spot coin yields): read and
  ignored. Spot has no funding, open interest or index, and its `markPx` is a mid, not a mark.
* `subscriptionResponse` (an acknowledgement: the next book snapshot of that coin is a
  subscription's first, and the next trades message its replay) and `pong` are control frames;
  `error` frames become dead letters with the venue's text.
* REST `POST /info` (the request body is the URL fragment, see ingest.venues.interface):
  `{"type":"meta"}` -> instrument; `{"type":"fundingHistory",...}` -> funding (FROM_REST);
  `{"type":"l2Book","coin":...}` -> one more book snapshot of that coin (FROM_REST).

Funding history entries are SETTLED rates: ts_event is the settlement time the venue reports and
next_funding_ts equals it (the rate applied then), which is how they differ from the live
activeAssetCtx rows (a forecast for the coming hour: next_funding_ts in the future, ts_event
imputed, not FROM_REST). Hyperliquid has settled hourly since 2023-06-08; before that, every 8 h,
and those entries carry interval_s 28800. Entries not newer than the last settlement emitted for
the coin are dropped, so overlapping hourly polls publish each settlement once per process.

Instruments: Hyperliquid perpetuals are margined, quoted and settled in USDC, so `BTC` is
`BTC-USDC-PERP` (quote and settle USDC), as Binance's USDC-margined BTCUSDC is. Spot pairs (`@107`,
`PURR/USDC`) and builder-deployed perps (`xyz:TSLA`) keep the venue's name as instrument id:
resolving them needs spotMeta or that dex's meta, which ticklake does not fetch. Sizes are base
units (no contract multiplier); prices and sizes are decimal strings checked for exactness.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from normalize.book import L2Book, books_report, books_tops
from normalize.decimals import frame_has_inexact_decimal, parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import (
    DEPTH_LIMITED,
    DERIVED,
    FROM_REST,
    GAP_BEFORE,
    INEXACT,
    LAST,
    MAYBE_BAD_BOOK,
    SNAPSHOT,
    TS_EVENT_IMPUTED,
)
from normalize.instruments import InstrumentLog
from normalize.records import (
    Bbo,
    BookDeltas,
    FeedStatus,
    Funding,
    Instrument,
    Level,
    MarkIndex,
    OpenInterest,
    Trade,
)

VENUE = "hyperliquid"
MS = 1_000_000
HOUR_NS = 3600 * 1_000_000_000
FUNDING_INTERVAL_S = 3600
EIGHT_HOURLY_FUNDING_BEFORE_NS = int(dt.datetime(2023, 6, 8, 0, 30, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
"""Settlements before this time were 8-hourly (the last one at 2023-06-08 00:00 UTC), later hourly."""
TRADE_MEMORY = 1024
"""Trade ids remembered per coin; a subscription replays the last 30, so any seen one is among these."""
PERP_MAX_DECIMALS = 6
"""Perp prices may have at most 6 - szDecimals decimals (and at most 5 significant figures)."""
_SIDES = {"B": 1, "A": -1}
_CONNECTED_TEXT = b"Websocket connection established."


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


_message = msgspec.json.Decoder(Message, strict=False)
_request = msgspec.json.Decoder(InfoRequest)
_meta = msgspec.json.Decoder(Meta, strict=False)
_funding_history = msgspec.json.Decoder(list[FundingEntry], strict=False)
_book_body = msgspec.json.Decoder(WsBook, strict=False)


def is_perp(coin: str) -> bool:
    """Main-dex perps have plain names; spot is `@<index>` or `BASE/QUOTE`, builder perps `dex:COIN`."""
    return not ("@" in coin or "/" in coin or ":" in coin)


def instrument_id(coin: str) -> str:
    """BTC -> BTC-USDC-PERP; spot and builder-dex names are kept (see the module docstring)."""
    return f"{coin}-USDC-PERP" if is_perp(coin) else coin


def funding_interval_s(settled_ns: int) -> int:
    return 8 * FUNDING_INTERVAL_S if settled_ns < EIGHT_HOURLY_FUNDING_BEFORE_NS else FUNDING_INTERVAL_S


def meta_instruments(body: bytes, ts_recv: int, flags: int) -> list[Instrument]:
    """Instrument records of the main dex's perpetuals. `meta` carries no time: ts_event is ts_recv.

    tick_size is the finest tick, 10^-(6 - szDecimals); prices are also limited to 5 significant
    figures, so the tick at price p is coarser above 10^(5 - (6 - szDecimals)). min_size is None:
    the venue's minimum is a notional (10 USDC), not a size.
    """
    universe = _meta.decode(body).universe
    out = []
    for index, asset in enumerate(universe):
        out.append(Instrument(
            VENUE, asset.name, instrument_id(asset.name), ts_recv, ts_recv, None, None,
            flags | (LAST if index == len(universe) - 1 else 0), "perpetual", asset.name, "USDC", "USDC", False,
            1.0, float(f"1e{asset.szDecimals - PERP_MAX_DECIMALS}"), float(f"1e-{asset.szDecimals}"), None,
            FUNDING_INTERVAL_S, None, "delisted" if asset.isDelisted else None,
        ))
    return out


def _diff(previous: dict[float, float], levels: list[WsLevel]) -> list[Level]:
    """The changes from `previous` to the side as `levels` has it: new or changed levels in the
    venue's order, then the removed ones with size 0."""
    side = {level.px: level.sz for level in levels if level.sz}
    get = previous.get
    changes: list[Level] = [(price, size) for price, size in side.items() if get(price) != size]
    if changes or len(side) != len(previous):  # else every level is unchanged and none left
        changes += [(price, 0.0) for price in previous if price not in side]
    return changes


@dataclass
class BookState:
    """One coin's book: the last snapshot, held as an L2Book (for tops and the derived BBO)."""

    symbol: str
    instrument: str
    book: L2Book = field(default_factory=L2Book)
    fresh: bool = True
    """The next snapshot is a subscription's first: it replaces the book."""
    applied: int = 0
    """Snapshots processed."""
    ts_event: int = 0
    breaks: int = 0
    """Resets after a frame of the coin could not be handled (snapshots carry no sequence or
    checksum to break)."""
    seq: None = None
    resyncing: bool = False
    """A reset was journaled: the next snapshot ends it with resync_done."""

    @property
    def synced(self) -> bool:
        return self.applied > 0


@dataclass
class Tape:
    """One coin's recent trade ids, to drop what a subscription's replay repeats."""

    symbol: str
    instrument: str
    seen: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)
    replay_pending: bool = False
    """A trades subscription was acknowledged: its next trades message is the replay."""


class Hyperliquid:
    """The Hyperliquid normalizer: feed it frames in receive order; it keeps one book per coin."""

    venue: Literal["hyperliquid"] = "hyperliquid"

    def __init__(self, connection_id: str = "offline", trade_memory: int = TRADE_MEMORY) -> None:
        self.connection_id = connection_id
        self.trade_memory = trade_memory
        self.instruments: dict[str, str] = {}
        self.instrument_log = InstrumentLog()
        self.books: dict[str, BookState] = {}
        self.tapes: dict[str, Tape] = {}
        self.last_settlement: dict[str, int] = {}
        """Per coin, the latest funding settlement emitted (ns)."""

    def instrument(self, coin: str) -> str:
        found = self.instruments.get(coin)
        if found is None:
            found = self.instruments[coin] = instrument_id(coin)
        return found

    # -- websocket ---------------------------------------------------------------------------
    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            message = _message.decode(payload)
        except msgspec.DecodeError as exc:
            if payload.strip() != _CONNECTED_TEXT:  # the greeting some venue versions send
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(message)
        if kind is TradesMsg:
            self._on_trades(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is L2BookMsg:
            extra = INEXACT if frame_has_inexact_decimal(payload) else 0
            try:
                self._on_book(message.data, ts_recv, out, extra)  # type: ignore[union-attr,arg-type]
            except ValueError as exc:  # a level no book can hold (negative size, nan price)
                # the book may be half-replaced: the next message (a full book) goes out as a snapshot
                self._book(message.data.coin).fresh = True  # type: ignore[union-attr]
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad l2Book frame: {exc}", payload))
        elif kind is BboMsg:
            self._on_bbo(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is ActiveAssetCtxMsg:
            self._on_asset_ctx(message.data, payload, ts_recv, out)  # type: ignore[union-attr,arg-type]
        elif kind is SubscriptionResponseMsg:
            self._on_subscription(message.data)  # type: ignore[union-attr,arg-type]
        elif kind is ErrorMsg:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"venue error: {message.data}", payload))  # type: ignore[union-attr]

    def _on_subscription(self, ack: SubscriptionAck) -> None:
        sub = ack.subscription
        if ack.method != "subscribe" or sub.coin is None:
            return
        if sub.type == "l2Book":
            self._book(sub.coin).fresh = True
        elif sub.type == "trades":
            self._tape(sub.coin).replay_pending = True

    def _tape(self, coin: str) -> Tape:
        tape = self.tapes.get(coin)
        if tape is None:
            tape = self.tapes[coin] = Tape(coin, self.instrument(coin))
        return tape

    def _on_trades(self, trades: list[WsTrade], payload: bytes, ts_recv: int, out: Emitted) -> None:
        """The hot path. Decimals are checked for exactness by length first (text of at most 15
        characters cannot hold 16 significant digits), as for Binance."""
        if not trades:
            return
        tape = self._tape(trades[0].coin)
        seen = tape.seen
        fresh = [t for t in trades if t.tid not in seen] if seen else trades
        gap = tape.replay_pending and bool(seen) and len(fresh) == len(trades)
        tape.replay_pending = False
        if not fresh:
            return
        records = []
        instrument = tape.instrument
        last = len(fresh) - 1
        try:
            for index, t in enumerate(fresh):
                price, size, inexact = parse_decimals(t.px, t.sz)
                flags = (LAST if index == last else 0) | (INEXACT if inexact else 0)
                records.append(Trade(VENUE, t.coin, instrument, t.time * MS, ts_recv, None, None, flags,
                                     price, size, _SIDES.get(t.side, 0), str(t.tid)))
        except ValueError as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad trade decimal: {exc}", payload))
            return
        if gap:
            first = records[0]
            records[0] = msgspec.structs.replace(first, flags=first.flags | GAP_BEFORE)
            out.records.append(FeedStatus(
                VENUE, tape.symbol, instrument, first.ts_event, ts_recv, None, None, 0, "gap", self.connection_id,
                "trades: no trade of the subscription replay was seen before; trades may be missing"))
        out.records.extend(records)
        order, memory = tape.order, self.trade_memory
        for t in fresh:
            if len(order) >= memory:
                seen.discard(order.popleft())
            order.append(t.tid)
            seen.add(t.tid)

    def _on_bbo(self, data: WsBbo, payload: bytes, ts_recv: int, out: Emitted) -> None:
        levels = data.bbo
        bid = levels[0] if levels else None
        ask = levels[1] if len(levels) > 1 else None
        flags = LAST | (INEXACT if frame_has_inexact_decimal(payload) else 0)
        out.records.append(Bbo(VENUE, data.coin, self.instrument(data.coin), data.time * MS, ts_recv, None, None,
                               flags, bid.px if bid else None, bid.sz if bid else None,
                               ask.px if ask else None, ask.sz if ask else None))

    def _on_asset_ctx(self, data: WsActiveAssetCtx, payload: bytes, ts_recv: int, out: Emitted) -> None:
        ctx, coin = data.ctx, data.coin
        instrument = self.instrument(coin)
        flags = TS_EVENT_IMPUTED | (INEXACT if frame_has_inexact_decimal(payload) else 0)
        next_funding = (ts_recv // HOUR_NS + 1) * HOUR_NS
        out.records += (
            MarkIndex(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags, ctx.markPx, ctx.oraclePx),
            Funding(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags, ctx.funding, None,
                    FUNDING_INTERVAL_S, next_funding, ctx.markPx, ctx.oraclePx),
            OpenInterest(VENUE, coin, instrument, ts_recv, ts_recv, None, None, flags | LAST, ctx.openInterest),
        )

    # -- order books --------------------------------------------------------------------------
    def _book(self, coin: str) -> BookState:
        state = self.books.get(coin)
        if state is None:
            state = self.books[coin] = BookState(coin, self.instrument(coin))
        return state

    def _on_book(self, data: WsBook, ts_recv: int, out: Emitted, extra: int) -> None:
        """Diff a full snapshot against the coin's book and emit the changes (see module docstring)."""
        state = self._book(data.coin)
        book = state.book
        bid_levels, ask_levels = data.levels
        flags = extra
        if state.fresh:
            # a subscription's first snapshot replaces the book; an empty one cannot be sent as
            # SNAPSHOT rows (there are none), so it is sent as the removal of every level held
            if state.applied:
                flags |= GAP_BEFORE
            if bid_levels or ask_levels:
                flags |= SNAPSHOT
                book.clear()
            state.fresh = False
            if state.resyncing:
                state.resyncing = False
                out.records.append(FeedStatus(VENUE, state.symbol, state.instrument, data.time * MS, ts_recv, None,
                                              None, 0, "resync_done", self.connection_id,
                                              "book replaced by a snapshot"))
        held_bids, held_asks = book.top(len(book))  # best first, the order the venue sent them in
        bid_changes = _diff(dict(held_bids), bid_levels)
        ask_changes = _diff(dict(held_asks), ask_levels)
        packed_bids, packed_asks = book.apply_levels(bid_changes, ask_changes)
        ts_event = data.time * MS
        state.ts_event = ts_event
        state.applied += 1
        if not (bid_changes or ask_changes):
            return
        symbol, instrument = state.symbol, state.instrument
        records = out.records
        records.append(BookDeltas(VENUE, symbol, instrument, ts_event, ts_recv, None, None, flags | DEPTH_LIMITED,
                                  packed_bids, packed_asks))
        derived = DERIVED | LAST | (flags & (GAP_BEFORE | INEXACT | FROM_REST))
        if book.crossed():
            derived |= MAYBE_BAD_BOOK
        records.append(Bbo(VENUE, symbol, instrument, ts_event, ts_recv, None, None, derived, *book.bbo()))

    def book_report(self) -> dict[str, tuple[int, int, bool]]:
        return books_report(self.books)

    def reset_book(self, symbol: str, ts_recv: int, reason: str, out: Emitted) -> None:
        """Every l2Book message is the whole book: the next one, asked for by resubscribing, goes
        out as a snapshot replacing it (GAP_BEFORE)."""
        state = self.books.get(symbol)
        if state is None or state.fresh:
            return
        state.fresh = state.resyncing = True
        state.breaks += 1
        for event, detail in (("gap", reason), ("resync_start", "resubscribing to l2Book")):
            out.records.append(FeedStatus(VENUE, symbol, state.instrument, ts_recv, ts_recv, None, None,
                                          TS_EVENT_IMPUTED, event, self.connection_id, detail))
        out.snapshot_requests.add(symbol)

    def book_tops(self, depth: int, ts_recv: int, out: Emitted) -> None:
        out.records.extend(books_tops(self.books, VENUE, depth, ts_recv))

    # -- REST ---------------------------------------------------------------------------------
    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        try:
            request = _request.decode(url.partition("#")[2])
            extra = INEXACT if frame_has_inexact_decimal(payload) else 0
            if request.type == "meta":
                instruments = meta_instruments(payload, ts_recv, FROM_REST | TS_EVENT_IMPUTED | extra)
                for record in instruments:
                    self.instruments[record.symbol] = record.instrument
                out.records.extend(self.instrument_log.news(instruments))
            elif request.type == "fundingHistory":
                self._on_funding_history(_funding_history.decode(payload), ts_recv, out, extra)
            elif request.type == "l2Book":
                self._on_book(_book_body.decode(payload), ts_recv, out, FROM_REST | extra)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown info request {request.type}", payload))
        except (msgspec.DecodeError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))

    def _on_funding_history(self, entries: list[FundingEntry], ts_recv: int, out: Emitted, extra: int) -> None:
        """Settled rates, newer than the last settlement emitted for their coin (module docstring)."""
        records = []
        for entry in entries:
            settled = entry.time * MS
            if settled <= self.last_settlement.get(entry.coin, -1):
                continue
            self.last_settlement[entry.coin] = settled
            records.append(Funding(VENUE, entry.coin, self.instrument(entry.coin), settled, ts_recv, None, None,
                                   FROM_REST | extra, entry.fundingRate, None, funding_interval_s(settled),
                                   settled))
        if records:
            records[-1] = msgspec.structs.replace(records[-1], flags=records[-1].flags | LAST)
        out.records.extend(records)
