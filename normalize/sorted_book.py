"""An L2 book for venues whose checksum covers the top levels as the venue wrote them: Kraken spot's.

Kraken's CRC32 runs over the best 10 asks and bids in the venue's own price and quantity text, so
those strings are kept per level, and the best 10 found after every message (and the book cut to
the subscribed depth). `L2Book` finds its best level from a heap, which is right for one level and
wrong for N on every message, and keeps no text: here each side keeps its prices in a sorted
list (bisect: a C memmove of at most a few hundred floats per new or removed level), so the best
N are a slice. OKX, whose checksum is of the same kind over 400-level books, moved to the compiled
`TextBook` (normalize/_l2book.c), which does the same in C (OKX's books went from 1.7x to over 10x
cryptofeed's speed); Kraken's books, cut to 10-1000 levels, have not been moved yet.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

from normalize.records import Level


class SortedBook:
    """Price -> size per side, plus ascending price lists and each level's "price:size" text."""

    __slots__ = ("ask_prices", "ask_text", "asks", "bid_prices", "bid_text", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_prices: list[float] = []
        self.ask_prices: list[float] = []
        self.bid_text: dict[float, str] = {}
        self.ask_text: dict[float, str] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bid_prices.clear()
        self.ask_prices.clear()
        self.bid_text.clear()
        self.ask_text.clear()

    def apply_text(self, levels: Sequence[Sequence[str]], bid: bool) -> list[Level]:
        """Apply one side of a message whose levels are the venue's strings `[price, size, ...]`
        (size "0" deletes). Returns the (price, size) pairs to publish, in the venue's order."""
        if bid:
            sizes, prices, text = self.bids, self.bid_prices, self.bid_text
        else:
            sizes, prices, text = self.asks, self.ask_prices, self.ask_text
        out: list[Level] = []
        for level in levels:
            px = level[0]
            sz = level[1]
            price = float(px)
            size = float(sz)
            out.append((price, size))
            if size:
                if price not in sizes:
                    insort(prices, price)
                sizes[price] = size
                text[price] = px + ":" + sz
            elif sizes.pop(price, None) is not None:
                del text[price]
                del prices[bisect_left(prices, price)]
        return out

    def bbo(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(bid price, bid size, ask price, ask size); None for an empty side."""
        bid = self.bid_prices[-1] if self.bid_prices else None
        ask = self.ask_prices[0] if self.ask_prices else None
        return (bid, self.bids[bid] if bid is not None else None, ask, self.asks[ask] if ask is not None else None)

    def crossed(self) -> bool:
        return bool(self.bid_prices and self.ask_prices and self.bid_prices[-1] >= self.ask_prices[0])

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids, asks = self.bids, self.asks
        return ([(p, bids[p]) for p in self.bid_prices[:-depth - 1:-1]],
                [(p, asks[p]) for p in self.ask_prices[:depth]])

    def top_text(self, depth: int) -> tuple[list[str], list[str]]:
        """The venue's "price:size" strings of the best `depth` levels per side, best first."""
        bid_text, ask_text = self.bid_text, self.ask_text
        return ([bid_text[p] for p in self.bid_prices[:-depth - 1:-1]],
                [ask_text[p] for p in self.ask_prices[:depth]])
