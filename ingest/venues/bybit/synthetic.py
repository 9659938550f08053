"""Bybit v5 linear frames for a synthetic market (ingest/synthetic), shaped as the recorded ones.

Shapes follow ticklake/recordings/bybit (Bybit's own order-book history for XRPUSDT, the tardis-node
fixtures and the docs' tickers example) and Bybit's v5 documentation
(bybit-exchange.github.io/docs/v5/websocket/public/*, market/instrument):

* Instruments are USDT perpetuals, `BTCUSDT`; sizes are base units (linear contracts). Prices are
  written with the instrument's `priceScale` decimals, at least two as Bybit writes them
  (`"60000.00"` for a 0.10 tick): the encoder states those grids (`specs`).
* `orderbook.200.<symbol>`: a `snapshot` of each instrument when the session starts (what Bybit
  answers the subscription with), then a `delta` per book event with the levels that changed
  (size "0" deletes), `u` increasing by one per message and `seq` the instrument's cross
  sequence, `cts` the matching time. After an outage the handler resubscribes and the replay
  protocol answers with a snapshot of the book it observed.
* `publicTrade.<symbol>`: one message per trade; `i` is a UUID as on Bybit's derivatives (version
  5, named after the instrument and the market's trade number: unique, not ordered), `seq` the
  cross sequence (increasing), `L` the tick direction, `BT` and `RPI` false.
* `tickers.<symbol>` every 100 ms per instrument (linear tickers push "snapshot + deltas @100 ms"):
  a `snapshot` with every field first, then a `delta` with the fields that changed (none: no
  message): mark and index, funding rate and next 8-hourly funding time, open interest and its
  value, the touch, last price and the day's statistics.
* `allLiquidation.<symbol>`: one message per liquidation, `S` the liquidated position's side
  ("Buy": a long was liquidated) and `p` the bankruptcy price.

REST: `/v5/market/instruments-info?category=linear`, one page, each instrument built from the
docs' BTCUSDT example (tests/bybit_data.py holds it).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Sequence
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
from ingest.venues.bybit.connection import BOOK_DEPTH, CHANNELS, REST_BASE
from ingest.venues.bybit.replay import INSTRUMENTS_PATH

_INSTRUMENT_TEMPLATE = {
    "symbol": "BTCUSDT", "symbolId": 5, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
    "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
    "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                      "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
    "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
    "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": False, "preListingInfo": None,
    "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}, "symbolType": "",
}
"""BTCUSDT as Bybit's v5 docs example of Get Instruments Info lists it (no recorded body exists)."""
SUPPORTED = ("publicTrade", "orderbook", "tickers", "allLiquidation")
TICKERS_EVERY_S = 0.1
FUNDING_INTERVAL_HOURS = 8
_TRADE_IDS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
"""The namespace of the synthetic trade ids (RFC 4122's URL namespace)."""
_CENT = Decimal("0.01")
RATE = Grid(8, 1)
"""Funding rates: 1e-8 units, written without trailing zeros as Bybit does ('0.0001', '-0.000212')."""


def bybit_spec(spec: InstrumentSpec) -> InstrumentSpec:
    """The instrument on Bybit's grid: its tick written with `priceScale` decimals, at least two
    (BTCUSDT's 0.1 is "0.10"); the same prices, written as Bybit writes them."""
    grid = spec.price_grid
    scale = max(2, grid.decimals)
    if scale == grid.decimals:
        return spec
    scaled = Grid(scale, grid.step * 10 ** (scale - grid.decimals))
    return dataclasses.replace(spec, tick=scaled.text(1), price=scaled.text(scaled.steps(spec.price)))


class BybitSynthetic:
    def __init__(self, specs: Sequence[InstrumentSpec], channels: Sequence[str] = CHANNELS) -> None:
        unsupported = [c for c in channels if c not in SUPPORTED]
        if unsupported:
            raise ValueError(f"bybit synthetic mode does not send {', '.join(unsupported)} (it sends "
                             f"{', '.join(SUPPORTED)})")
        self.specs = [bybit_spec(spec) for spec in specs]
        self.symbols = [f"{s.base}{s.quote}" for s in self.specs]
        self.prices = [s.price_grid for s in self.specs]
        self.sizes = [s.size_grid for s in self.specs]
        self.channels = set(channels)
        self.periodic = {"tickers": TICKERS_EVERY_S} if "tickers" in self.channels else {}
        count = len(self.specs)
        self.u = [7_000_000 + 100_000 * n for n in range(count)]
        self.seq = [50_000_000_000 + 1_000_000_000 * n for n in range(count)]
        """Each instrument's cross sequence: one more per book message and per trade."""
        self.started = False
        self.tickers: list[dict[str, str] | None] = [None] * count
        """Per instrument: the ticker fields as last sent (None: no snapshot yet)."""
        starts = [s.price_grid.steps(s.price) for s in self.specs]
        self.day = [[start, start, start, start] for start in starts]
        """Per instrument: [open, high, low, last] trade prices of the day, in ticks."""
        self.direction = ["ZeroPlusTick"] * count
        self.volume = [0] * count
        """Lots traded since the start."""
        self.turnover = [Decimal(0)] * count

    # -- REST ----------------------------------------------------------------------------------------
    def rest_frames(self, market: Market, ts: int) -> list[Frame]:
        items = []
        for number, (spec, symbol) in enumerate(zip(self.specs, self.symbols, strict=True)):
            item = json.loads(json.dumps(_INSTRUMENT_TEMPLATE))
            tick, lot = spec.price_grid, spec.size_grid
            item.update(symbol=symbol, symbolId=1000 + number, baseCoin=spec.base, quoteCoin=spec.quote,
                        settleCoin=spec.quote, priceScale=str(tick.decimals))
            item["priceFilter"].update(minPrice=tick.text(1), maxPrice=tick.text(tick.steps(spec.price) * 30),
                                       tickSize=tick.text(1))
            item["lotSizeFilter"].update(minOrderQty=lot.text(1), qtyStep=lot.text(1), maxOrderQty=lot.text(1_000_000),
                                         postOnlyMaxOrderQty=lot.text(1_000_000), maxMktOrderQty=lot.text(500_000))
            items.append(item)
        body = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": items, "nextPageCursor": ""},
                "retExtInfo": {}, "time": ts // 1_000_000}
        return [Frame(ts, "rest", _dumps(body), f"{REST_BASE}{INSTRUMENTS_PATH}?category=linear&limit=1000")]

    # -- WebSocket -----------------------------------------------------------------------------------
    def frames(self, event: Event, market: Market) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:  # what Bybit answers the book subscriptions with, as the session starts
            self.started = True
            if "orderbook" in self.channels:
                out += [self._book(n, "snapshot", market.books[n].bids.items(), market.books[n].asks.items(), event.ts)
                        for n in range(len(self.specs))]
            if isinstance(event, BookUpdate):  # already inside the snapshot
                return out
        if isinstance(event, BookUpdate):
            if "orderbook" in self.channels and event.changes:
                net = {(side, price): lots for side, price, lots in event.changes}  # each level once, its last size
                bids = [(p, q) for (s, p), q in net.items() if s == 1]
                asks = [(p, q) for (s, p), q in net.items() if s == -1]
                out.append(self._book(event.instrument, "delta", bids, asks, event.ts))
            return out
        if isinstance(event, TradeEvent):
            return out + self._trade(event)
        if isinstance(event, LiquidationEvent):
            if "allLiquidation" not in self.channels:
                return out
            n, ms = event.instrument, event.ts // 1_000_000
            side = "Buy" if event.side == -1 else "Sell"  # the position's side: a sell order liquidates a long
            return [*out, (f'{{"topic":"allLiquidation.{self.symbols[n]}","type":"snapshot","ts":{ms},"data":[{{'
                           f'"T":{ms},"s":"{self.symbols[n]}","S":"{side}","v":"{self.sizes[n].text(event.lots)}",'
                           f'"p":"{self.prices[n].text(event.price)}"}}]}}').encode()]
        if isinstance(event, Periodic):
            return out + self._ticker(event, market)
        return out

    def _book(self, n: int, kind: str, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]],
              ts: int) -> bytes:
        """One orderbook message of (price, lots) levels, bids best first and asks best first."""
        price, size = self.prices[n], self.sizes[n]
        b = ",".join(f'["{price.text(p)}","{size.text(q) if q else "0"}"]' for p, q in sorted(bids, reverse=True))
        a = ",".join(f'["{price.text(p)}","{size.text(q) if q else "0"}"]' for p, q in sorted(asks))
        if kind == "delta":
            self.u[n] += 1
            self.seq[n] += 1
        ms = ts // 1_000_000
        return (f'{{"topic":"orderbook.{BOOK_DEPTH}.{self.symbols[n]}","type":"{kind}","ts":{ms},"data":{{'
                f'"s":"{self.symbols[n]}","b":[{b}],"a":[{a}],"u":{self.u[n]},"seq":{self.seq[n]}}},'
                f'"cts":{ms}}}').encode()

    def _trade(self, event: TradeEvent) -> list[bytes]:
        n, ms = event.instrument, event.ts // 1_000_000
        day = self.day[n]
        if event.price != day[3]:
            self.direction[n] = "PlusTick" if event.price > day[3] else "MinusTick"
        elif not self.direction[n].startswith("Zero"):
            self.direction[n] = f"Zero{self.direction[n]}"
        day[1], day[2], day[3] = max(day[1], event.price), min(day[2], event.price), event.price
        self.volume[n] += event.lots
        self.turnover[n] += Decimal(self.sizes[n].text(event.lots)) * Decimal(self.prices[n].text(event.price))
        self.seq[n] += 1
        if "publicTrade" not in self.channels:
            return []
        side = "Buy" if event.side == 1 else "Sell"
        return [(f'{{"topic":"publicTrade.{self.symbols[n]}","type":"snapshot","ts":{ms},"data":[{{"T":{ms},'
                 f'"s":"{self.symbols[n]}","S":"{side}","v":"{self.sizes[n].text(event.lots)}",'
                 f'"p":"{self.prices[n].text(event.price)}","L":"{self.direction[n]}","i":"{self._trade_id(event)}",'
                 f'"BT":false,"RPI":false,"seq":{self.seq[n]}}}]}}').encode()]

    def _trade_id(self, event: TradeEvent) -> str:
        return str(uuid.uuid5(_TRADE_IDS, f"{self.symbols[event.instrument]}:{event.trade_id}"))

    def _ticker(self, event: Periodic, market: Market) -> list[bytes]:
        n, ms = event.instrument, event.ts // 1_000_000
        price, size = self.prices[n], self.sizes[n]
        mark, index = market.mark(n)
        rate, next_funding = market.funding(n, event.ts)
        oi = market.open_interest(n)
        bid, bid_lots, ask, ask_lots = market.books[n].top()
        opened, high, low, last = self.day[n]
        change = (Decimal(last - opened) / Decimal(opened)).quantize(Decimal("0.000001"))
        fields = {
            "symbol": self.symbols[n], "tickDirection": self.direction[n], "price24hPcnt": str(change),
            "lastPrice": price.text(last), "prevPrice24h": price.text(opened), "highPrice24h": price.text(high),
            "lowPrice24h": price.text(low), "prevPrice1h": price.text(opened), "markPrice": price.text(mark),
            "indexPrice": price.text(index), "openInterest": size.text(oi),
            "openInterestValue": str((Decimal(size.text(oi)) * Decimal(price.text(mark))).quantize(_CENT)),
            "turnover24h": str(self.turnover[n].quantize(Decimal("0.0001"))), "volume24h": size.text(self.volume[n]),
            "nextFundingTime": str(next_funding // 1_000_000), "fundingRate": RATE.short(rate),
            "bid1Price": price.text(bid), "bid1Size": size.text(bid_lots), "ask1Price": price.text(ask),
            "ask1Size": size.text(ask_lots), "fundingIntervalHour": str(FUNDING_INTERVAL_HOURS),
        }
        sent = self.tickers[n]
        self.tickers[n] = fields
        if sent is None:
            kind, data = "snapshot", fields
        else:
            kind, data = "delta", {k: v for k, v in fields.items() if k == "symbol" or sent.get(k) != v}
            if len(data) == 1:
                return []
        return [_dumps({"topic": f"tickers.{self.symbols[n]}", "type": kind, "data": data, "cs": self.seq[n],
                        "ts": ms})]

    def trade_row(self, event: TradeEvent) -> tuple[str, str, str, str]:
        """(symbol, trade id, price, size in base units) as the venue sends them."""
        n = event.instrument
        return (self.symbols[n], self._trade_id(event), self.prices[n].text(event.price),
                self.sizes[n].text(event.lots))


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
