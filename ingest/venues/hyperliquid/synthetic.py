"""Hyperliquid frames for a synthetic market (ingest/synthetic), shaped as the recorded ones.

Shapes follow ticklake/recordings/hyperliquid (the hftbacktest capture of BTC l2Book and trades of
2025-01-26, the tardis-node fixtures, the recorded `meta` and `fundingHistory` bodies) and
Hyperliquid's documentation (hyperliquid.gitbook.io: websocket subscriptions, tick and lot size,
oracle, funding):

* Coins are the main dex's perpetuals, named by their base (`BTC`), quoted in USDC. Each coin's
  `szDecimals` is the market's lot decimals, and its tick is chosen so every price keeps the
  venue's rules: at most 5 significant figures (whole prices always allowed) and at most
  6 - szDecimals decimals, at the starting price's magnitude (BTC at 60000 trades in whole
  dollars, ETH at 3000 in tenths): the encoder states those grids (`specs`), which the market
  keeps. Numbers are written as the venue writes them: no trailing zeros, and `.0` on a whole
  number (`"60000.0"`, `"0.15"`, `"12.0"`).
* `l2Book`: the whole book, the best 20 levels a side (`{"n","px","sz"}`), when the session
  starts and after every book event that changed those levels (the venue pushes at most one a
  block; how often the book changes is the market's rate). Every message is a full book, so after
  an outage the next one is right again: there is no sequence to break.
* `bbo`: the touch, on every change of it.
* `trades`: one message per trade, `tid` increasing per coin, `side` "B" when the taker bought,
  `hash` and `users` (buyer, seller) derived from the tid.
* `activeAssetCtx` every 3 s per coin, the validators' oracle cadence: `funding` (the current
  rate, read as the hourly one), `openInterest`, `oraclePx` (the index), `markPx`, `midPx`,
  `impactPxs`, `premium` and the day's figures.
* No liquidations: Hyperliquid publishes no liquidation stream (the connection maps
  `liquidations` to no channel).

REST (`POST /info`): `{"type":"meta"}`, the universe in the recorded shape, and for each coin a
`fundingHistory` of the hourly settlements in the lookback the handler asks for (it polls hourly).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal

from ingest.frames import Frame
from ingest.synthetic.market import (
    BookUpdate,
    Event,
    Grid,
    InstrumentSpec,
    LiquidationEvent,
    Market,
    Periodic,
    TradeEvent,
)
from ingest.venues.hyperliquid.connection import CHANNELS, FUNDING_LOOKBACK_H, HOUR_MS, REST_BASE

SUPPORTED = ("l2Book", "trades", "bbo", "activeAssetCtx")
BOOK_LEVELS = 20
"""Levels a side of an l2Book message."""
ASSET_CTX_EVERY_S = 3.0
"""Validators publish the oracle prices every 3 s (docs: HyperCore, Oracle)."""
PERP_MAX_DECIMALS = 6
SIGNIFICANT_FIGURES = 5
MAX_LEVERAGE = 50
INTEREST_E8 = 1250
"""The interest component of funding, 0.00125 % an hour, in 1e-8 units."""
FIRST_TID = 100_000_000_000_000
RATE = Grid(8, 1)
"""Funding rates and premiums: 1e-8 units ('0.00004863')."""


def hyperliquid_spec(spec: InstrumentSpec) -> InstrumentSpec:
    """The instrument on a grid Hyperliquid allows at its starting price: a tick of at most 5
    significant figures there (a whole unit at most: whole prices are always allowed) and at most
    6 - szDecimals decimals, or the market's own tick if coarser; the starting price on that tick."""
    size_decimals = spec.size_grid.decimals
    price = Decimal(spec.price)
    exponent = max(min(price.adjusted() - SIGNIFICANT_FIGURES + 1, 0), size_decimals - PERP_MAX_DECIMALS)
    tick = max(Decimal(spec.tick), Decimal(1).scaleb(exponent))
    grid = Grid.of(format(tick, "f"))
    return dataclasses.replace(spec, tick=format(tick, "f"), price=grid.text(grid.steps(spec.price)))


def _dotted(text: str) -> str:
    """A trimmed decimal as Hyperliquid writes it: `.0` on a whole number ('60000' -> '60000.0')."""
    return text if "." in text else f"{text}.0"


def _number(grid: Grid, steps: int) -> str:
    """`steps` of a grid as Hyperliquid writes them: no trailing zeros, `.0` on a whole number."""
    return _dotted(grid.short(steps))


def _decimal(value: Decimal) -> str:
    return _dotted(format(value.normalize(), "f"))


def _hex(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _orders(lots: int) -> int:
    """An order count for a level (`n`): any positive number the size allows."""
    return 1 + lots % 7


class HyperliquidSynthetic:
    def __init__(self, specs: Sequence[InstrumentSpec], channels: Sequence[str] = CHANNELS) -> None:
        unsupported = [c for c in channels if c not in SUPPORTED]
        if unsupported:
            raise ValueError(f"hyperliquid synthetic mode does not send {', '.join(unsupported)} (it sends "
                             f"{', '.join(SUPPORTED)})")
        self.specs = [hyperliquid_spec(spec) for spec in specs]
        self.symbols = [s.base for s in self.specs]
        self.prices = [s.price_grid for s in self.specs]
        self.sizes = [s.size_grid for s in self.specs]
        self.channels = set(channels)
        self.periodic = {"activeAssetCtx": ASSET_CTX_EVERY_S} if "activeAssetCtx" in self.channels else {}
        self.started = False
        self.books_sent: list[tuple[list[tuple[int, int]], list[tuple[int, int]]] | None] = [None] * len(self.specs)
        """Per coin: the (bids, asks) of the last l2Book sent."""
        self.notional = [Decimal(0)] * len(self.specs)
        """Per coin: the day's traded notional (dayNtlVlm)."""

    # -- REST ----------------------------------------------------------------------------------------
    def rest_frames(self, market: Market, ts: int) -> list[Frame]:
        universe = [{"maxLeverage": MAX_LEVERAGE, "name": coin, "szDecimals": spec.size_grid.decimals}
                    for coin, spec in zip(self.symbols, self.specs, strict=True)]
        frames = [Frame(ts, "rest", _dumps({"universe": universe}), f'{REST_BASE}/info#{{"type":"meta"}}')]
        ms = ts // 1_000_000
        hour = ms // HOUR_MS
        start = (hour - FUNDING_LOOKBACK_H) * HOUR_MS
        for n, coin in enumerate(self.symbols):
            history = []
            for k in range(FUNDING_LOOKBACK_H, -1, -1):  # the settlements on the hours before the start
                settled = (hour - k) * HOUR_MS + 48
                rate = market.funding_e8[n] + 37 * k - 50  # a past rate near today's, without moving the market
                if start < settled <= ms:
                    history.append({"coin": coin, "fundingRate": _dotted(RATE.short(rate)),
                                    "premium": _dotted(RATE.short(rate - INTEREST_E8)), "time": settled})
            request = _dumps({"type": "fundingHistory", "coin": coin, "startTime": start}).decode()
            frames.append(Frame(ts, "rest", _dumps(history), f"{REST_BASE}/info#{request}"))
        return frames

    # -- WebSocket -----------------------------------------------------------------------------------
    def frames(self, event: Event, market: Market) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:  # the state a subscription is answered with, as the session starts
            self.started = True
            out += [book for n in range(len(self.specs)) if (book := self._l2book(n, market, event.ts))]
            if isinstance(event, BookUpdate):
                return out + self._bbo(event, market)
        if isinstance(event, BookUpdate):
            book = self._l2book(event.instrument, market, event.ts)
            return out + ([book] if book else []) + self._bbo(event, market)
        if isinstance(event, TradeEvent):
            return out + self._trade(event)
        if isinstance(event, LiquidationEvent):
            return out  # no liquidation stream
        if isinstance(event, Periodic):
            return out + self._asset_ctx(event, market)
        return out

    def _level(self, n: int, price: int, lots: int) -> str:
        return (f'{{"n":{_orders(lots)},"px":"{_number(self.prices[n], price)}",'
                f'"sz":"{_number(self.sizes[n], lots)}"}}')

    def _l2book(self, n: int, market: Market, ts: int) -> bytes | None:
        """The coin's l2Book if its best 20 levels a side changed since the last one sent."""
        if "l2Book" not in self.channels:
            return None
        book = market.books[n]
        bids = [(p, book.bids[p]) for p in sorted(book.bids, reverse=True)[:BOOK_LEVELS]]
        asks = [(p, book.asks[p]) for p in sorted(book.asks)[:BOOK_LEVELS]]
        if self.books_sent[n] == (bids, asks):
            return None
        self.books_sent[n] = (bids, asks)
        levels = (",".join(self._level(n, p, q) for p, q in bids), ",".join(self._level(n, p, q) for p, q in asks))
        return (f'{{"channel":"l2Book","data":{{"coin":"{self.symbols[n]}","levels":[[{levels[0]}],[{levels[1]}]],'
                f'"time":{ts // 1_000_000}}}}}').encode()

    def _bbo(self, event: BookUpdate, market: Market) -> list[bytes]:
        if "bbo" not in self.channels or not event.top_changed:
            return []
        n = event.instrument
        bid, bid_lots, ask, ask_lots = market.books[n].top()
        price, size = self.prices[n], self.sizes[n]
        sides = ",".join(f'{{"px":"{_number(price, p)}","sz":"{_number(size, q)}","n":{_orders(q)}}}'
                         for p, q in ((bid, bid_lots), (ask, ask_lots)))
        return [(f'{{"channel":"bbo","data":{{"coin":"{self.symbols[n]}","time":{event.ts // 1_000_000},'
                 f'"bbo":[{sides}]}}}}').encode()]

    def _tid(self, event: TradeEvent) -> int:
        return FIRST_TID + event.trade_id

    def _trade(self, event: TradeEvent) -> list[bytes]:
        n = event.instrument
        coin, tid = self.symbols[n], self._tid(event)
        px, sz = _number(self.prices[n], event.price), _number(self.sizes[n], event.lots)
        self.notional[n] += Decimal(px) * Decimal(sz)
        if "trades" not in self.channels:
            return []
        side = "B" if event.side == 1 else "A"
        buyer, seller = f"0x{_hex(coin, tid, 'buyer')[:40]}", f"0x{_hex(coin, tid, 'seller')[:40]}"
        return [(f'{{"channel":"trades","data":[{{"coin":"{coin}","hash":"0x{_hex(coin, tid)}","px":"{px}",'
                 f'"side":"{side}","sz":"{sz}","tid":{tid},"time":{event.ts // 1_000_000},'
                 f'"users":["{buyer}","{seller}"]}}]}}').encode()]

    def _asset_ctx(self, event: Periodic, market: Market) -> list[bytes]:
        n = event.instrument
        price, tick = self.prices[n], Decimal(self.specs[n].tick)
        mark, oracle = market.mark(n)
        rate, _ = market.funding(n, event.ts)
        lots = market.open_interest(n)
        bid, _, ask, _ = market.books[n].top()
        premium = ((Decimal(mark) - Decimal(oracle)) / Decimal(oracle)).quantize(Decimal("1e-8"))
        start = price.steps(self.specs[n].price)
        ctx = {"funding": _dotted(RATE.short(rate)), "openInterest": _number(self.sizes[n], lots),
               "prevDayPx": _number(price, start), "dayNtlVlm": _decimal(self.notional[n]),
               "premium": _decimal(premium), "oraclePx": _number(price, oracle), "markPx": _number(price, mark),
               "midPx": _decimal(Decimal(bid + ask) * tick / 2),
               "impactPxs": [_number(price, bid), _number(price, ask)]}
        return [_dumps({"channel": "activeAssetCtx", "data": {"coin": self.symbols[n], "ctx": ctx}})]

    def trade_row(self, event: TradeEvent) -> tuple[str, str, str, str]:
        """(coin, tid, price, size in base units) as the venue sends them."""
        n = event.instrument
        return (self.symbols[n], str(self._tid(event)), _number(self.prices[n], event.price),
                _number(self.sizes[n], event.lots))


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
