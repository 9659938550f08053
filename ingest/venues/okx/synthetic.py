"""OKX v5 frames for a synthetic market (ingest/synthetic), shaped as the recorded ones.

Shapes follow ticklake/recordings/okx (the cryptofeed capture of 2022 and the tardis-node fixtures, the
funding-rate one of 2026) and OKX's v5 documentation (www.okx.com/docs-v5, public channels):

* Instruments are USDT-margined perpetuals, `BTC-USDT-SWAP`. Their sizes are contracts: each
  instrument's contract value `ctVal` is the market's lot (ctMult 1, lotSz 1 contract), so a size
  of n lots is n contracts and the normalizer's contracts x ctVal is exactly the market's size.
* Numbers are written as OKX writes them, without trailing zeros (`"60000"`, `"0.15"`).
* `books`: a `snapshot` of each instrument when the session starts (what OKX answers the
  subscription with), then an `update` per book event with the levels that changed, as
  `[px, sz, "0", orders]` (sz "0" deletes), `prevSeqId` = the previous message's `seqId` and a
  CRC32 `checksum` of the best 25 levels after the update, computed by the replay module's
  `checksum`. (OKX has sent checksum 0 since 2026-06-23; the synthetic venue keeps sending a
  real one so the handler's check is exercised, as before that date.) After an outage the
  handler resubscribes and the replay protocol answers with a snapshot of the book it observed.
* `bbo-tbt`: the touch, on every change of it, with the book's `seqId`.
* `trades`: one message per trade (`count` 1, `source` "0"), `tradeId` increasing by one per
  instrument, sizes in contracts.
* `funding-rate` every 30 s per instrument ("pushed in 30s to 90s"): the current rate with 16
  decimals, `fundingTime` the next 8-hourly settlement, `nextFundingTime` the one after.
* `mark-price` every 200 ms while the mark moves, else every 10 s; `index-tickers` (of the
  `BTC-USDT` index) every 100 ms while the index moves, else once a minute; `open-interest` every
  3 s when it changed (`oi` contracts, `oiCcy` base units, `oiUsd` at the mark).
* `liquidation-orders` (subscribed per instType, `SWAP`): one message per liquidation, its size
  in contracts, `posSide` the liquidated position. OKX samples at most one a contract a second;
  the market's liquidation rate (`--rate liquidations=`) is what is sent.

REST: `/api/v5/public/instruments?instType=SWAP`, each instrument built from the recorded
BTC-USDT-SWAP entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from ingest.frames import Frame
from ingest.synthetic.market import (
    FUNDING_PERIOD_NS,
    BookUpdate,
    Event,
    Grid,
    InstrumentSpec,
    LiquidationEvent,
    Market,
    Periodic,
    TradeEvent,
)
from ingest.venues.okx.connection import CHANNELS, REST_BASE
from ingest.venues.okx.replay import CHECKSUM_DEPTH, checksum

_SWAP_TEMPLATE = {
    "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear", "ctVal": "0.01",
    "ctValCcy": "BTC", "expTime": "", "instId": "BTC-USDT-SWAP", "instType": "SWAP", "lever": "125",
    "listTime": "1611916828000", "lotSz": "1", "maxIcebergSz": "100000000", "maxLmtSz": "100000000",
    "maxMktSz": "1600", "maxStopSz": "1600", "maxTriggerSz": "100000000", "maxTwapSz": "100000000", "minSz": "1",
    "optType": "", "quoteCcy": "", "settleCcy": "USDT", "state": "live", "stk": "", "tickSz": "0.1",
    "uly": "BTC-USDT",
}
"""BTC-USDT-SWAP as the recorded instruments body (2022-05-13) lists it."""
RATE = Grid(16, 10**8)
"""Funding rates: 1e-8 units written with 16 decimals, as funding-rate sends them."""
SUPPORTED = ("trades", "books", "bbo-tbt", "funding-rate", "mark-price", "open-interest", "index-tickers",
             "liquidation-orders")
SCHEDULE = {"funding-rate": 30.0, "mark-price": 0.2, "index-tickers": 0.1, "open-interest": 3.0}
"""Seconds between two checks of a timed channel, per instrument (OKX's documented push intervals)."""
UNCHANGED_EVERY_NS = {"mark-price": 10_000_000_000, "index-tickers": 60_000_000_000}
"""A timed channel whose value did not change is still pushed this often (none: not pushed)."""
FIRST_SEQ_ID = 10_000_000_000


def _orders(lots: int) -> str:
    """An order count for a level (OKX's 4th field): any positive number the size allows."""
    return str(1 + lots % 7 if lots else 0)


class OkxSynthetic:
    def __init__(self, specs: Sequence[InstrumentSpec], channels: Sequence[str] = CHANNELS) -> None:
        unsupported = [c for c in channels if c not in SUPPORTED]
        if unsupported:
            raise ValueError(f"okx synthetic mode does not send {', '.join(unsupported)} (it sends "
                             f"{', '.join(SUPPORTED)})")
        self.specs = list(specs)
        self.symbols = [f"{s.base}-{s.quote}-SWAP" for s in self.specs]
        self.indexes = [f"{s.base}-{s.quote}" for s in self.specs]
        self.prices = [s.price_grid for s in self.specs]
        self.sizes = [s.size_grid for s in self.specs]
        self.channels = set(channels)
        self.periodic = {channel: every for channel, every in SCHEDULE.items() if channel in self.channels}
        self.seq_ids = [FIRST_SEQ_ID + 1_000_000_000 * n for n in range(len(self.specs))]
        self.started = False
        self.sent: dict[tuple[str, int], tuple[int, int]] = {}
        """(timed channel, instrument) -> (value last sent, when, ns)."""
        self.index_day: list[tuple[int, int, int]] = []
        for spec in self.specs:
            start = spec.price_grid.steps(spec.price)
            self.index_day.append((start, start, start))
        """Per instrument: (open, high, low) of its index, in ticks."""

    # -- REST ----------------------------------------------------------------------------------------
    def rest_frames(self, market: Market, ts: int) -> list[Frame]:
        entries = []
        for spec, symbol in zip(self.specs, self.symbols, strict=True):
            entry = dict(_SWAP_TEMPLATE)
            entry.update(ctVal=spec.size_grid.short(1), ctValCcy=spec.base, instId=symbol, settleCcy=spec.quote,
                         tickSz=spec.price_grid.short(1), uly=f"{spec.base}-{spec.quote}")
            entries.append(entry)
        body = {"code": "0", "data": entries, "msg": ""}
        return [Frame(ts, "rest", _dumps(body), f"{REST_BASE}/api/v5/public/instruments?instType=SWAP")]

    # -- WebSocket -----------------------------------------------------------------------------------
    def frames(self, event: Event, market: Market) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:  # what OKX answers the book subscriptions with, as the session starts
            self.started = True
            if "books" in self.channels:
                out += [self._snapshot(n, market, event.ts) for n in range(len(self.specs))]
            if isinstance(event, BookUpdate):  # already inside the snapshot
                return out + self._bbo(event, market)
        if isinstance(event, BookUpdate):
            return out + self._update(event, market) + self._bbo(event, market)
        if isinstance(event, TradeEvent):
            return out + self._trade(event)
        if isinstance(event, LiquidationEvent):
            return out + self._liquidation(event)
        if isinstance(event, Periodic):
            return out + self._periodic(event, market)
        return out

    def _levels(self, n: int, changes: Sequence[tuple[int, int]]) -> str:
        price = self.prices[n]  # sizes are contracts: one per lot
        return ",".join(f'["{price.short(p)}","{q}","0","{_orders(q)}"]' for p, q in changes)

    def _checksum(self, n: int, market: Market) -> int:
        book, price = market.books[n], self.prices[n]
        bids = [[price.short(p), str(book.bids[p])] for p in sorted(book.bids, reverse=True)[:CHECKSUM_DEPTH]]
        asks = [[price.short(p), str(book.asks[p])] for p in sorted(book.asks)[:CHECKSUM_DEPTH]]
        return checksum(bids, asks)

    def _snapshot(self, n: int, market: Market, ts: int) -> bytes:
        book = market.books[n]
        bids = self._levels(n, [(p, book.bids[p]) for p in sorted(book.bids, reverse=True)])
        asks = self._levels(n, [(p, book.asks[p]) for p in sorted(book.asks)])
        return (f'{{"arg":{{"channel":"books","instId":"{self.symbols[n]}"}},"action":"snapshot","data":[{{'
                f'"asks":[{asks}],"bids":[{bids}],"ts":"{ts // 1_000_000}","checksum":{self._checksum(n, market)},'
                f'"prevSeqId":-1,"seqId":{self.seq_ids[n]}}}]}}').encode()

    def _update(self, event: BookUpdate, market: Market) -> list[bytes]:
        if "books" not in self.channels or not event.changes:
            return []
        n = event.instrument
        net = {(side, price): lots for side, price, lots in event.changes}  # one level once, its last size
        bids = self._levels(n, sorted(((p, q) for (s, p), q in net.items() if s == 1), reverse=True))
        asks = self._levels(n, sorted((p, q) for (s, p), q in net.items() if s == -1))
        previous = self.seq_ids[n]
        self.seq_ids[n] += 1
        return [(f'{{"arg":{{"channel":"books","instId":"{self.symbols[n]}"}},"action":"update","data":[{{'
                 f'"asks":[{asks}],"bids":[{bids}],"ts":"{event.ts // 1_000_000}",'
                 f'"checksum":{self._checksum(n, market)},"prevSeqId":{previous},'
                 f'"seqId":{self.seq_ids[n]}}}]}}').encode()]

    def _bbo(self, event: BookUpdate, market: Market) -> list[bytes]:
        if "bbo-tbt" not in self.channels or not event.top_changed:
            return []
        n = event.instrument
        bid, bid_lots, ask, ask_lots = market.books[n].top()
        return [(f'{{"arg":{{"channel":"bbo-tbt","instId":"{self.symbols[n]}"}},"data":[{{'
                 f'"asks":[{self._levels(n, [(ask, ask_lots)])}],"bids":[{self._levels(n, [(bid, bid_lots)])}],'
                 f'"ts":"{event.ts // 1_000_000}","seqId":{self.seq_ids[n]}}}]}}').encode()]

    def _trade(self, event: TradeEvent) -> list[bytes]:
        if "trades" not in self.channels:
            return []
        n = event.instrument
        side = "buy" if event.side == 1 else "sell"
        return [(f'{{"arg":{{"channel":"trades","instId":"{self.symbols[n]}"}},"data":[{{'
                 f'"instId":"{self.symbols[n]}","tradeId":"{event.trade_id}","px":"{self.prices[n].short(event.price)}",'
                 f'"sz":"{event.lots}","side":"{side}","ts":"{event.ts // 1_000_000}","count":"1",'
                 f'"source":"0"}}]}}').encode()]

    def _liquidation(self, event: LiquidationEvent) -> list[bytes]:
        if "liquidation-orders" not in self.channels:
            return []
        n = event.instrument
        side, position = ("sell", "long") if event.side == -1 else ("buy", "short")
        index = self.indexes[n]
        return [(f'{{"arg":{{"channel":"liquidation-orders","instType":"SWAP"}},"data":[{{"details":[{{'
                 f'"bkLoss":"0","bkPx":"{self.prices[n].short(event.price)}","ccy":"","posSide":"{position}",'
                 f'"side":"{side}","sz":"{event.lots}","ts":"{event.ts // 1_000_000}"}}],"instFamily":"{index}",'
                 f'"instId":"{self.symbols[n]}","instType":"SWAP","uly":"{index}"}}]}}').encode()]

    def _due(self, channel: str, n: int, value: int, ts: int) -> bool:
        """Whether a timed channel pushes now: its value changed, or it has not been sent for long."""
        last = self.sent.get((channel, n))
        every = UNCHANGED_EVERY_NS.get(channel)
        if last is not None and last[0] == value and (every is None or ts - last[1] < every):
            return False
        self.sent[channel, n] = (value, ts)
        return True

    def _periodic(self, event: Periodic, market: Market) -> list[bytes]:
        n, ms, channel = event.instrument, event.ts // 1_000_000, event.channel
        symbol, price = self.symbols[n], self.prices[n]
        if channel == "mark-price":
            mark, _ = market.mark(n)
            if not self._due(channel, n, mark, event.ts):
                return []
            return [(f'{{"arg":{{"channel":"mark-price","instId":"{symbol}"}},"data":[{{"instId":"{symbol}",'
                     f'"instType":"SWAP","markPx":"{price.short(mark)}","ts":"{ms}"}}]}}').encode()]
        if channel == "index-tickers":
            _, index = market.mark(n)
            if not self._due(channel, n, index, event.ts):
                return []
            opened, high, low = self.index_day[n]
            self.index_day[n] = opened, high, low = opened, max(high, index), min(low, index)
            name = self.indexes[n]
            return [(f'{{"arg":{{"channel":"index-tickers","instId":"{name}"}},"data":[{{"instId":"{name}",'
                     f'"idxPx":"{price.short(index)}","open24h":"{price.short(opened)}","high24h":"{price.short(high)}",'
                     f'"low24h":"{price.short(low)}","sodUtc0":"{price.short(opened)}",'
                     f'"sodUtc8":"{price.short(opened)}","ts":"{ms}"}}]}}').encode()]
        if channel == "open-interest":
            lots = market.open_interest(n)
            if not self._due(channel, n, lots, event.ts):
                return []
            mark, _ = market.mark(n)
            base = Decimal(self.sizes[n].text(lots))
            usd = base * Decimal(price.text(mark))
            return [(f'{{"arg":{{"channel":"open-interest","instId":"{symbol}"}},"data":[{{"instId":"{symbol}",'
                     f'"instType":"SWAP","oi":"{lots}","oiCcy":"{_plain(base)}","oiUsd":"{_plain(usd)}",'
                     f'"ts":"{ms}"}}]}}').encode()]
        if channel == "funding-rate":
            rate, next_funding = market.funding(n, event.ts)
            following, previous = next_funding + FUNDING_PERIOD_NS, next_funding - FUNDING_PERIOD_NS
            return [(f'{{"arg":{{"channel":"funding-rate","instId":"{symbol}"}},"data":[{{"formulaType":"withRate",'
                     f'"fundingRate":"{RATE.text(rate)}","fundingTime":"{next_funding // 1_000_000}",'
                     f'"impactValue":"20000.0000000000000000","instId":"{symbol}","instType":"SWAP",'
                     f'"interestRate":"0.0001000000000000","maxFundingRate":"0.00375","method":"current_period",'
                     f'"minFundingRate":"-0.00375","nextFundingRate":"","nextFundingTime":"{following // 1_000_000}",'
                     f'"premium":"{RATE.text(rate - 10_000)}","prevFundingTime":"{previous // 1_000_000}",'
                     f'"settFundingRate":"{RATE.text(rate)}","settState":"settled","ts":"{ms}"}}]}}').encode()]
        return []

    def trade_row(self, event: TradeEvent) -> tuple[str, str, str, str]:
        """(instId, trade id, price, size in base units): contracts x ctVal, ctVal being the lot."""
        n = event.instrument
        return self.symbols[n], str(event.trade_id), self.prices[n].short(event.price), self.sizes[n].text(event.lots)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros, as OKX writes it."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
