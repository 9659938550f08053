"""An L2 book for venues whose checksum covers the top levels as the venue wrote them.

OKX's CRC32 runs over the best 25 bids and asks in the venue's own price and size strings
("30261", not 30261.0), so those strings must be kept per level, and the best 25 must be found
after every message. `L2Book` finds its best level from a heap, which is right for one level and
wrong for 25 on every message, and keeps no text: here each side keeps its prices in a sorted
list (bisect: a C memmove of at most a few hundred floats per new or removed level, OKX books
being 400 levels deep), so the best N are a slice. Sizes in the dicts are base units (converted
by the caller's `to_base` where the venue counts contracts); the text is the venue's.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Sequence

from normalize.records import Level

ToBase = Callable[[float, float, str], float]
"""(native size, price, native size text) -> size in base units."""


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

    def apply_text(self, levels: Sequence[Sequence[str]], bid: bool,
                   to_base: ToBase | None = None) -> tuple[list[Level], list[float] | None]:
        """Apply one side of a message whose levels are the venue's strings `[price, size, ...]`
        (size "0" deletes). Returns the (price, size) pairs to publish, in the venue's order, and
        the native sizes when `to_base` converts them."""
        if bid:
            sizes, prices, text = self.bids, self.bid_prices, self.bid_text
        else:
            sizes, prices, text = self.asks, self.ask_prices, self.ask_text
        out: list[Level] = []
        native: list[float] = []
        for level in levels:
            px = level[0]
            sz = level[1]
            price = float(px)
            size = float(sz)
            if to_base is not None:
                native.append(size)
                if size:
                    size = to_base(size, price, sz)
            out.append((price, size))
            if size:
                if price not in sizes:
                    insort(prices, price)
                sizes[price] = size
                text[price] = px + ":" + sz
            elif sizes.pop(price, None) is not None:
                del text[price]
                del prices[bisect_left(prices, price)]
        return out, native if to_base is not None else None

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
