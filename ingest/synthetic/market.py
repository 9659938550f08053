"""A synthetic market: per instrument an L2 book, trades, marks and liquidations, as integers on
the instrument's tick and lot grids, advanced on a seeded clock.

Venue-neutral: each venue's `synthetic` module (ingest/venues/<venue>/synthetic.py) turns these
events into the venue's own frames. Everything is integers so a price or size the venue would send
is exact by construction (Grid.text), and the same seed gives the same market.

Books stay uncrossed (best bid < best ask, each level on the tick grid with a positive size).
Prices follow a random walk of one or two ticks per move; a flash crash drives the mid down by a
tenth within a second and back, thinning the book and multiplying trades and liquidations.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

NS = 1_000_000_000
FUNDING_PERIOD_NS = 8 * 3600 * NS


@dataclass(frozen=True)
class Grid:
    """A decimal grid (a tick or lot size) as integer steps: '0.10' is step 10 at 2 decimals."""

    decimals: int
    step: int

    @classmethod
    def of(cls, text: str) -> Grid:
        value = Decimal(text)
        decimals = max(0, -value.as_tuple().exponent)  # type: ignore[operator]
        return cls(decimals, int(value.scaleb(decimals)))

    def text(self, steps: int) -> str:
        """`steps` grid steps as the venue writes them: every decimal of the grid, no exponent."""
        units = steps * self.step
        if not self.decimals:
            return str(units)
        sign, digits = ("-", str(-units)) if units < 0 else ("", str(units))
        digits = digits.rjust(self.decimals + 1, "0")
        return f"{sign}{digits[:-self.decimals]}.{digits[-self.decimals:]}"

    def short(self, steps: int) -> str:
        """`steps` grid steps without trailing zeros ('61800.10' -> '61800.1', '60000.0' -> '60000'),
        as venues that trim their decimals write them (OKX, Hyperliquid)."""
        text = self.text(steps)
        return text.rstrip("0").rstrip(".") if "." in text else text

    def steps(self, text: str) -> int:
        """The nearest whole number of steps to a decimal text."""
        return round(Decimal(text).scaleb(self.decimals) / self.step)


@dataclass(frozen=True)
class InstrumentSpec:
    """One synthetic instrument, in venue-neutral terms; each venue names it its own way."""

    base: str
    quote: str
    price: str
    """The starting price (on the tick grid)."""
    tick: str
    lot: str

    @property
    def price_grid(self) -> Grid:
        return Grid.of(self.tick)

    @property
    def size_grid(self) -> Grid:
        return Grid.of(self.lot)


KNOWN = (
    InstrumentSpec("BTC", "USDT", "60000.0", "0.1", "0.001"),
    InstrumentSpec("ETH", "USDT", "3000.00", "0.01", "0.001"),
    InstrumentSpec("SOL", "USDT", "150.000", "0.001", "0.1"),
    InstrumentSpec("XRP", "USDT", "0.6000", "0.0001", "1"),
    InstrumentSpec("DOGE", "USDT", "0.150000", "0.000001", "1"),
)
"""Familiar instruments first; further ones are S0001, S0002... at a price of 10.000."""


def instruments(count: int) -> list[InstrumentSpec]:
    """`count` instruments: the KNOWN ones, then synthetic bases."""
    return list(KNOWN[:count]) + instruments_named([f"S{n:04d}" for n in range(1, count - len(KNOWN) + 1)])


@dataclass(frozen=True)
class Scenario:
    """A named stretch of the session: `burst` multiplies every event rate by `factor`;
    `flash-crash` takes the price down by a tenth within the first second (or `for_s` if shorter)
    and back by the end, with thin books, ten times the trades and fifty times the liquidations;
    `outage` is a venue that stops sending (the feed marks the frames withheld) and then resumes."""

    kind: str
    at_s: float
    for_s: float
    factor: float = 10.0

    KINDS = ("burst", "flash-crash", "outage")

    def covers(self, offset_ns: int) -> bool:
        return self.at_s * NS <= offset_ns < (self.at_s + self.for_s) * NS


def parse_scenario(text: str) -> Scenario:
    """`burst:at=10,for=5,x=20`, `flash-crash:at=30`, `outage:at=20,for=3`."""
    kind, _, options = text.partition(":")
    if kind not in Scenario.KINDS:
        raise ValueError(f"unknown scenario '{kind}' (known: {', '.join(Scenario.KINDS)})")
    values = {"at": 5.0, "for": {"burst": 5.0, "flash-crash": 3.0, "outage": 3.0}[kind], "x": 10.0}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in values:
            raise ValueError(f"scenario option '{key}' unknown (known: at, for, x)")
        try:
            values[key] = float(value)
        except ValueError:
            raise ValueError(f"scenario option {key}={value!r} is not a number") from None
    if values["for"] <= 0 or values["at"] < 0 or values["x"] <= 0:
        raise ValueError(f"scenario '{text}': at must be >= 0, for and x > 0")
    return Scenario(kind, values["at"], values["for"], values["x"])


@dataclass(frozen=True)
class Rates:
    """Messages per second over all instruments together, before scenarios."""

    trades: float = 50.0
    book: float = 200.0
    liquidations: float = 0.1



def parse_rates(text: str) -> Rates:
    """`trades=1000,book=5000,liquidations=1`: messages per second over all instruments (by the
    standard channel names; bbo follows the book, marks and funding the venue's own schedule)."""
    values = {"trades": Rates.trades, "book": Rates.book, "liquidations": Rates.liquidations}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in values:
            raise ValueError(f"no rate for '{key}' (rates: trades, book, liquidations; bbo follows the book, "
                             "marks and funding the venue's schedule)")
        try:
            values[key] = float(value)
        except ValueError:
            raise ValueError(f"rate {key}={value!r} is not a number") from None
        if values[key] < 0:
            raise ValueError(f"rate {key}={value} is negative")
    return Rates(**values)


def instruments_named(bases: Sequence[str]) -> list[InstrumentSpec]:
    """Instruments by base asset ('BTC', 'ETH'): the KNOWN ones' grids and prices, others at 10.000."""
    known = {spec.base: spec for spec in KNOWN}
    return [known.get(base.upper(), InstrumentSpec(base.upper(), "USDT", "10.000", "0.001", "0.1")) for base in bases]


@dataclass(slots=True)
class BookUpdate:
    instrument: int
    ts: int
    changes: list[tuple[int, int, int]]
    """(side: +1 bid, -1 ask; price steps; new size in lots, 0 deletes the level)."""
    top_changed: bool


@dataclass(slots=True)
class TradeEvent:
    instrument: int
    ts: int
    trade_id: int
    price: int
    lots: int
    side: int
    """The taker's side: +1 buy, -1 sell."""


@dataclass(slots=True)
class LiquidationEvent:
    instrument: int
    ts: int
    side: int
    """The liquidation order's side: -1 sells a long, +1 buys back a short."""
    price: int
    lots: int


@dataclass(slots=True)
class Periodic:
    """A scheduled message of a venue channel (marks, funding, tickers) for one instrument."""

    instrument: int
    ts: int
    channel: str


Event = BookUpdate | TradeEvent | LiquidationEvent | Periodic


class Book:
    """Levels within WINDOW ticks of each best price, some ticks left empty, as a venue's book
    around the touch looks."""

    WINDOW = 40
    FILL = 0.7

    def __init__(self, mid: int, rng: random.Random) -> None:
        self.rng = rng
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid, self.best_ask = mid - 1, mid + 1
        self.thin = False
        for price in range(self.best_bid - self.WINDOW, self.best_bid + 1):
            if price > 0 and (price == self.best_bid or rng.random() < self.FILL):
                self.bids[price] = self._lots()
        for price in range(self.best_ask, self.best_ask + self.WINDOW + 1):
            if price == self.best_ask or rng.random() < self.FILL:
                self.asks[price] = self._lots()

    def _lots(self) -> int:
        return 1 + int(self.rng.expovariate(1 / (5 if self.thin else 60)))

    def top(self) -> tuple[int, int, int, int]:
        """(bid price, bid lots, ask price, ask lots)."""
        return self.best_bid, self.bids[self.best_bid], self.best_ask, self.asks[self.best_ask]

    def mid2(self) -> int:
        """Twice the mid price, in ticks (exact)."""
        return self.best_bid + self.best_ask

    def move_to(self, best_bid: int, spread: int) -> list[tuple[int, int, int]]:
        """Recenter on a new best bid: levels crossing or leaving the window go, newly exposed
        ticks fill in. Returns the level changes."""
        best_bid = max(1, best_bid)
        best_ask = best_bid + max(1, spread)
        changes: list[tuple[int, int, int]] = []
        for price in [p for p in self.bids if p > best_bid or p < best_bid - self.WINDOW]:
            del self.bids[price]
            changes.append((1, price, 0))
        for price in [p for p in self.asks if p < best_ask or p > best_ask + self.WINDOW]:
            del self.asks[price]
            changes.append((-1, price, 0))
        fill = 0.25 if self.thin else self.FILL
        for price in range(max(1, best_bid - self.WINDOW), best_bid + 1):
            if price not in self.bids and (price == best_bid or ((price > self.best_bid or price < self.best_bid
                                                                  - self.WINDOW) and self.rng.random() < fill)):
                self.bids[price] = lots = self._lots()
                changes.append((1, price, lots))
        for price in range(best_ask, best_ask + self.WINDOW + 1):
            if price not in self.asks and (price == best_ask or ((price < self.best_ask or price > self.best_ask
                                                                  + self.WINDOW) and self.rng.random() < fill)):
                self.asks[price] = lots = self._lots()
                changes.append((-1, price, lots))
        self.best_bid, self.best_ask = best_bid, best_ask
        return changes

    def churn(self) -> list[tuple[int, int, int]]:
        """One to four levels near the touch change size, appear or go (never the best ones). A level
        picked twice is listed once, with its final size, as a venue's diff lists each level once (a
        repeated level would be two rows of one key in the stores, and only the first is kept)."""
        changes: dict[tuple[int, int], int] = {}
        for _ in range(self.rng.randint(1, 4)):
            side = 1 if self.rng.random() < 0.5 else -1
            levels, best = (self.bids, self.best_bid) if side == 1 else (self.asks, self.best_ask)
            price = best - side * min(self.WINDOW, int(self.rng.expovariate(0.25)))
            if price <= 0:
                continue
            if price != best and price in levels and self.rng.random() < 0.3:
                del levels[price]
                changes[side, price] = 0
            else:
                levels[price] = changes[side, price] = self._lots()
        return [(side, price, lots) for (side, price), lots in changes.items()]


@dataclass
class Bounds:
    """The lowest and highest best prices an instrument had during a scenario."""

    low: int
    high: int


class Market:
    """Events in time order from `start_ns` for `duration_s` (None: endless).

    `periodic` maps each venue channel pushed on a timer to its interval per instrument (seconds).
    """

    MOVE = 0.3
    """The share of book updates that move the price (one or two ticks)."""

    def __init__(self, specs: Sequence[InstrumentSpec], rates: Rates, periodic: Mapping[str, float], start_ns: int,
                 duration_s: float | None, seed: int = 0, scenarios: Sequence[Scenario] = ()) -> None:
        self.specs = list(specs)
        self.rates, self.periodic = rates, dict(periodic)
        self.start_ns, self.duration_s = start_ns, duration_s
        self.scenarios = list(scenarios)
        self.rng = random.Random(seed)
        self.books = [Book(spec.price_grid.steps(spec.price), self.rng) for spec in self.specs]
        self.start_mid2 = [book.mid2() for book in self.books]
        self.trade_ids = [1_000_000 * (n + 1) for n in range(len(self.specs))]
        self.funding_e8 = [self.rng.randint(-2_000, 8_000) for _ in self.specs]
        """Funding rate per instrument, in units of 1e-8 (0.0001 is 10,000)."""
        self.open_interest_lots = [self.rng.randint(10_000, 1_000_000) for _ in self.specs]
        self.bounds: dict[tuple[int, int], Bounds] = {}
        """(scenario index, instrument) -> the best prices reached during that scenario."""
        self.now = start_ns

    def rate_factor(self, offset_ns: int) -> float:
        factor = 1.0
        for scenario in self.scenarios:
            if scenario.covers(offset_ns):
                if scenario.kind == "burst":
                    factor *= scenario.factor
                elif scenario.kind == "flash-crash":
                    factor *= 10
        return factor

    def crash_depth(self, offset_ns: int) -> float | None:
        """How far below its start a flash crash holds the price now (0 to 0.1), or None."""
        for scenario in self.scenarios:
            if scenario.kind == "flash-crash" and scenario.covers(offset_ns):
                into = (offset_ns / NS - scenario.at_s)
                fall = min(1.0, scenario.for_s / 2)
                if into < fall:
                    return 0.1 * into / fall
                return 0.1 * max(0.0, 1 - (into - fall) / (scenario.for_s - fall))
        return None

    def withheld(self, ts: int) -> bool:
        """Whether the venue is out (an `outage` scenario) at this time: its frames are not sent."""
        offset = ts - self.start_ns
        return any(s.kind == "outage" and s.covers(offset) for s in self.scenarios)

    def events(self) -> Iterator[Event]:
        rng = self.rng
        end = None if self.duration_s is None else self.start_ns + int(self.duration_s * NS)
        queue: list[tuple[int, int, str, int]] = []
        """(due ns, tie-breaker, kind, instrument or -1)."""
        order = 0
        for kind, rate in (("trade", self.rates.trades), ("book", self.rates.book),
                           ("liquidation", self.rates.liquidations)):
            if rate > 0:
                queue.append((self.start_ns + int(rng.expovariate(rate) * NS), order, kind, -1))
                order += 1
        count = len(self.specs)
        for channel, interval in self.periodic.items():
            for n in range(count):  # staggered, as a venue's timers are
                queue.append((self.start_ns + int(interval * NS * (n + 1) / (count + 1)), order, channel, n))
                order += 1
        heapq.heapify(queue)
        while queue:
            due, _, kind, instrument = queue[0]
            if end is not None and due >= end:
                return
            self.now = due
            offset = due - self.start_ns
            factor = self.rate_factor(offset)
            if instrument >= 0:  # a timer
                heapq.heapreplace(queue, (due + int(self.periodic[kind] * NS), order, kind, instrument))
                order += 1
                yield Periodic(instrument, due, kind)
                continue
            base = {"trade": self.rates.trades, "book": self.rates.book}.get(kind, self.rates.liquidations)
            crash = self.crash_depth(offset)
            if kind == "liquidation" and crash is not None:
                factor *= 5
            heapq.heapreplace(queue, (due + max(1, int(rng.expovariate(base * factor) * NS)), order, kind, -1))
            order += 1
            instrument = rng.randrange(count)
            if kind == "book":
                yield self._book_update(instrument, due, crash)
            elif kind == "trade":
                yield self._trade(instrument, due)
            else:
                yield self._liquidation(instrument, due, crash is not None)

    def _book_update(self, instrument: int, ts: int, crash: float | None) -> BookUpdate:
        book = self.books[instrument]
        top = book.top()
        book.thin = crash is not None and crash > 0
        if crash is not None:
            target = int(self.start_mid2[instrument] * (1 - crash) / 2)
            changes = book.move_to(target - self.rng.randint(0, 2), self.rng.choice((1, 1, 2)))
        elif self.rng.random() < self.MOVE:
            step = self.rng.choice((-2, -1, -1, 1, 1, 2))
            changes = book.move_to(book.best_bid + step, self.rng.choice((1, 1, 1, 2, 3)))
        else:
            changes = book.churn()
        self._track(instrument, ts)
        return BookUpdate(instrument, ts, changes, book.top() != top)

    def _trade(self, instrument: int, ts: int) -> TradeEvent:
        book = self.books[instrument]
        side = 1 if self.rng.random() < 0.5 else -1
        price = book.best_ask if side == 1 else book.best_bid
        available = book.asks[price] if side == 1 else book.bids[price]
        self.trade_ids[instrument] += 1
        return TradeEvent(instrument, ts, self.trade_ids[instrument], price,
                          self.rng.randint(1, max(1, min(available, 50))), side)

    def _liquidation(self, instrument: int, ts: int, crashing: bool) -> LiquidationEvent:
        book = self.books[instrument]
        side = -1 if crashing or self.rng.random() < 0.5 else 1
        price = book.best_bid - self.rng.randint(0, 5) if side == -1 else book.best_ask + self.rng.randint(0, 5)
        return LiquidationEvent(instrument, ts, side, max(1, price), self.rng.randint(1, 200))

    def _track(self, instrument: int, ts: int) -> None:
        book = self.books[instrument]
        for number, scenario in enumerate(self.scenarios):
            if scenario.covers(ts - self.start_ns):
                bounds = self.bounds.setdefault((number, instrument), Bounds(book.best_bid, book.best_ask))
                bounds.low, bounds.high = min(bounds.low, book.best_bid), max(bounds.high, book.best_ask)

    def mark(self, instrument: int) -> tuple[int, int]:
        """(mark, index) in ticks: the mid rounded down, and an index a tick or two off it."""
        mark = self.books[instrument].mid2() // 2
        return mark, max(1, mark + self.rng.randint(-2, 2))

    def funding(self, instrument: int, ts: int) -> tuple[int, int]:
        """(rate in 1e-8 units, next funding time ns): the rate drifts slowly, paid every 8 hours."""
        rate = self.funding_e8[instrument] = max(-75_000, min(75_000, self.funding_e8[instrument]
                                                              + self.rng.randint(-50, 50)))
        return rate, (ts // FUNDING_PERIOD_NS + 1) * FUNDING_PERIOD_NS

    def open_interest(self, instrument: int) -> int:
        lots = self.open_interest_lots[instrument] = max(1, self.open_interest_lots[instrument]
                                                         + self.rng.randint(-100, 100))
        return lots
