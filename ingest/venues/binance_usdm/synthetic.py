"""Binance USD-M frames for a synthetic market (ingest/synthetic), shaped as the recorded ones.

Shapes follow ticklake/recordings/binance_usdm (cryptofeed, hftbacktest and Tardis captures) and the
venue's documentation: combined-stream envelopes `{"stream":"btcusdt@aggTrade","data":{...}}`;
depth diffs chained per symbol (`U` = previous `u` + 1, `pu` = previous `u`); bookTicker on every
change of the touch, carrying the diff's update id; aggTrade ids increasing by one per symbol with
one raw trade each (`f` = `l`); markPrice@1s once a second per symbol with the funding rate and the
next 8-hourly funding time; forceOrder for liquidations. REST: exchangeInfo (each symbol built
from the recorded BTCUSDT entry), an empty fundingInfo (every symbol on the 8 h default), a depth
snapshot and open interest per symbol, from the market's opening state; the replay protocol
(ingest/venues/binance_usdm/replay.py) keeps them current as frames play.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

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
from ingest.venues.binance_usdm.connection import CHANNELS, REST_BASE, family

_SYMBOL_TEMPLATE = {
    "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
    "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
    "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
    "liquidationFee": "0.012000", "marketTakeBound": "0.30",
    "filters": [{"minPrice": "556.72", "maxPrice": "1000000", "filterType": "PRICE_FILTER", "tickSize": "0.01"},
                {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
                {"stepSize": "0.001", "filterType": "MARKET_LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
                {"limit": 200, "filterType": "MAX_NUM_ORDERS"}, {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
                {"notional": "5", "filterType": "MIN_NOTIONAL"},
                {"multiplierDown": "0.8500", "multiplierUp": "1.1500", "multiplierDecimal": "4",
                 "filterType": "PERCENT_PRICE"}],
    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                   "TRAILING_STOP_MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
}
"""BTCUSDT as the recorded exchangeInfo (2021-07-21) lists it."""
RATE = Grid(8, 1)
"""Funding rates: 1e-8 units to 8 decimals, as markPrice writes them."""
SUPPORTED = ("aggTrade", "depth", "bookTicker", "markPrice", "forceOrder")


def _padded(text: str, decimals: int) -> str:
    """A price with the 8 decimals markPrice writes ('61800.1' -> '61800.10000000')."""
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(decimals, '0')}"


class BinanceUsdmSynthetic:
    def __init__(self, specs: Sequence[InstrumentSpec], channels: Sequence[str] = CHANNELS) -> None:
        unsupported = [c for c in channels if family(c) not in SUPPORTED or c.startswith(("depth5", "depth10",
                                                                                           "depth20"))]
        if unsupported:
            raise ValueError(f"binance-usdm synthetic mode does not send {', '.join(unsupported)} (it sends "
                             f"{', '.join(SUPPORTED)}; depth as diffs)")
        self.specs = list(specs)
        self.symbols = [f"{s.base}{s.quote}" for s in self.specs]
        self.lower = [s.lower() for s in self.symbols]
        self.prices = [s.price_grid for s in self.specs]
        self.sizes = [s.size_grid for s in self.specs]
        self.channel = {family(c): c for c in channels}
        self.last_u = [7_000_000_000 + 1_000_000 * n for n in range(len(self.specs))]
        mark = self.channel.get("markPrice")
        self.periodic = {mark: 1.0 if mark.endswith("@1s") else 3.0} if mark else {}

    def rest_frames(self, market: Market, ts: int) -> list[Frame]:
        ms = ts // 1_000_000
        symbols = []
        for spec, symbol in zip(self.specs, self.symbols, strict=True):
            entry = json.loads(json.dumps(_SYMBOL_TEMPLATE))
            entry.update(symbol=symbol, pair=symbol, baseAsset=spec.base, quoteAsset=spec.quote,
                         pricePrecision=spec.price_grid.decimals, quantityPrecision=spec.size_grid.decimals)
            entry["filters"][0].update(tickSize=spec.tick, minPrice=spec.tick)
            entry["filters"][1].update(stepSize=spec.lot, minQty=spec.lot)
            entry["filters"][2].update(stepSize=spec.lot, minQty=spec.lot)
            symbols.append(entry)
        info = {"timezone": "UTC", "serverTime": ms, "futuresType": "U_MARGINED", "rateLimits": [],
                "exchangeFilters": [], "assets": [], "symbols": symbols}
        frames = [Frame(ts, "rest", json.dumps([]).encode(), f"{REST_BASE}/fapi/v1/fundingInfo"),
                  Frame(ts, "rest", _dumps(info), f"{REST_BASE}/fapi/v1/exchangeInfo")]
        for n, symbol in enumerate(self.symbols):
            book, price, size = market.books[n], self.prices[n], self.sizes[n]
            snapshot = {"lastUpdateId": self.last_u[n], "E": ms, "T": ms,
                        "bids": [[price.text(p), size.text(book.bids[p])] for p in sorted(book.bids, reverse=True)],
                        "asks": [[price.text(p), size.text(book.asks[p])] for p in sorted(book.asks)]}
            frames.append(Frame(ts, "rest", _dumps(snapshot), f"{REST_BASE}/fapi/v1/depth?symbol={symbol}&limit=1000"))
            frames.append(Frame(ts, "rest", _dumps({"symbol": symbol, "openInterest": size.text(
                market.open_interest(n)), "time": ms}), f"{REST_BASE}/fapi/v1/openInterest?symbol={symbol}"))
        return frames

    def frames(self, event: Event, market: Market) -> list[bytes]:
        n = event.instrument
        ms = event.ts // 1_000_000
        symbol, lower, price, size = self.symbols[n], self.lower[n], self.prices[n], self.sizes[n]
        if isinstance(event, BookUpdate):
            out = []
            depth = self.channel.get("depth")
            first, last = self.last_u[n] + 1, self.last_u[n] + max(1, len(event.changes))
            if depth and event.changes:
                bids = ",".join(f'["{price.text(p)}","{size.text(q)}"]' for side, p, q in event.changes if side == 1)
                asks = ",".join(f'["{price.text(p)}","{size.text(q)}"]' for side, p, q in event.changes if side == -1)
                out.append(f'{{"stream":"{lower}@{depth}","data":{{"e":"depthUpdate","E":{ms},"T":{ms},'
                           f'"s":"{symbol}","U":{first},"u":{last},"pu":{self.last_u[n]},"b":[{bids}],'
                           f'"a":[{asks}]}}}}'.encode())
            if event.changes:
                self.last_u[n] = last
            ticker = self.channel.get("bookTicker")
            if ticker and event.top_changed:
                bid, bid_lots, ask, ask_lots = market.books[n].top()
                out.append(f'{{"stream":"{lower}@{ticker}","data":{{"e":"bookTicker","u":{self.last_u[n]},'
                           f'"s":"{symbol}","b":"{price.text(bid)}","B":"{size.text(bid_lots)}",'
                           f'"a":"{price.text(ask)}","A":"{size.text(ask_lots)}","T":{ms},"E":{ms}}}}}'.encode())
            return out
        if isinstance(event, TradeEvent):
            channel = self.channel.get("aggTrade")
            if not channel:
                return []
            maker = "true" if event.side == -1 else "false"
            return [f'{{"stream":"{lower}@{channel}","data":{{"e":"aggTrade","E":{ms},"a":{event.trade_id},'
                    f'"s":"{symbol}","p":"{price.text(event.price)}","q":"{size.text(event.lots)}",'
                    f'"f":{event.trade_id},"l":{event.trade_id},"T":{ms},"m":{maker}}}}}'.encode()]
        if isinstance(event, LiquidationEvent):
            channel = self.channel.get("forceOrder")
            if not channel:
                return []
            side = "SELL" if event.side == -1 else "BUY"
            quantity = size.text(event.lots)
            return [f'{{"stream":"{lower}@{channel}","data":{{"e":"forceOrder","E":{ms},"o":{{"s":"{symbol}",'
                    f'"S":"{side}","o":"LIMIT","f":"IOC","q":"{quantity}","p":"{price.text(event.price)}",'
                    f'"ap":"{price.text(event.price)}","X":"FILLED","l":"{quantity}","z":"{quantity}",'
                    f'"T":{ms}}}}}}}'.encode()]
        if isinstance(event, Periodic):
            mark, index = market.mark(n)
            rate, next_funding = market.funding(n, event.ts)
            return [f'{{"stream":"{lower}@{event.channel}","data":{{"e":"markPriceUpdate","E":{ms},"s":"{symbol}",'
                    f'"p":"{_padded(price.text(mark), 8)}","P":"{_padded(price.text(index), 8)}",'
                    f'"i":"{_padded(price.text(index), 8)}","r":"{RATE.text(rate)}",'
                    f'"T":{next_funding // 1_000_000}}}}}'.encode()]
        return []

    def trade_row(self, event: TradeEvent) -> tuple[str, str, str, str]:
        """(symbol, trade id, price, size in base units) as the venue sends them."""
        n = event.instrument
        return self.symbols[n], str(event.trade_id), self.prices[n].text(event.price), self.sizes[n].text(event.lots)


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
