"""A synthetic venue's session: the market's events as the venue's frames, generated lazily as the
replay server plays them, and the ground truth of what was generated.

The replay server plays these frames through the venue's ReplayProtocol exactly as it plays a
capture: the protocol observes every frame (sent or withheld) so its REST answers (book
snapshots, trade history) and resubscription snapshots are the venue's state at the playback
position, and a handler that resyncs after an outage finds the book and the trades it missed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.frames import Frame
from ingest.synthetic.market import Market, Rates, Scenario, TradeEvent, instruments, instruments_named
from ingest.venues.interface import SyntheticVenue
from ingest.venues.registry import VENUES

BOOK_LEVELS = 20
"""Levels a side of each final book written to the ground truth."""


@dataclass
class Truth:
    """What the synthetic venue generated, for a test or benchmark to compare with what landed."""

    trades: list[tuple[str, str, str, str, int, int]] = field(default_factory=list)
    """(venue symbol, trade id, price, size in base units, taker side, ts_event ns) of every trade."""
    withheld: list[tuple[str, int]] = field(default_factory=list)
    """(venue symbol, ts ns) of every frame an outage kept from the clients."""


class SyntheticFeed:
    def __init__(self, venue: str, market: Market, encoder: SyntheticVenue, keep_truth: bool = False) -> None:
        self.venue, self.market, self.encoder = venue, market, encoder
        self.truth = Truth() if keep_truth else None
        self.withheld: set[int] = set()
        """Playback indexes of the frames an outage kept back: the replay server observes them and
        sends none (ReplayServer's `withheld`)."""
        self.generated = 0

    def rest_frames(self) -> list[Frame]:
        return self.encoder.rest_frames(self.market, self.market.start_ns)

    def __iter__(self) -> Iterator[Frame]:
        market, encoder, truth = self.market, self.encoder, self.truth
        for event in market.events():
            payloads = encoder.frames(event, market)
            if not payloads:
                continue
            out = market.withheld(event.ts)
            if truth is not None and isinstance(event, TradeEvent):
                symbol, trade_id, price, size = encoder.trade_row(event)
                truth.trades.append((symbol, trade_id, price, size, event.side, event.ts // 1_000_000 * 1_000_000))
            for payload in payloads:
                if out:
                    self.withheld.add(self.generated)
                    if truth is not None:
                        truth.withheld.append((encoder.symbols[event.instrument], event.ts))
                self.generated += 1
                yield Frame(event.ts, "ws", payload)

    def write_truth(self, path: Path, skipped: Sequence[int] = ()) -> None:
        """The ground truth as JSON: every trade, the final books (BOOK_LEVELS a side), the frames
        withheld by outages and skipped by faults, and each scenario with the best prices reached."""
        market, symbols = self.market, self.encoder.symbols
        books = {}
        for n, book in enumerate(market.books):
            price, size = market.specs[n].price_grid, market.specs[n].size_grid
            bids, asks = sorted(book.bids, reverse=True)[:BOOK_LEVELS], sorted(book.asks)[:BOOK_LEVELS]
            books[symbols[n]] = {"bids": [[price.text(p), size.text(book.bids[p])] for p in bids],
                                 "asks": [[price.text(p), size.text(book.asks[p])] for p in asks]}
        truth = self.truth or Truth()
        document = {
            "venue": self.venue, "start_ns": market.start_ns, "end_ns": market.now, "frames": self.generated,
            "symbols": symbols, "trades": truth.trades, "books": books, "withheld": truth.withheld,
            "skipped": sorted(skipped),
            "scenarios": [_scenario(s, n, market, symbols) for n, s in enumerate(market.scenarios)]}
        path.write_text(json.dumps(document, separators=(",", ":")))


def _scenario(scenario: Scenario, number: int, market: Market, symbols: Sequence[str]) -> dict[str, object]:
    bounds = {}
    for (index, instrument), reached in market.bounds.items():
        if index == number:
            grid = market.specs[instrument].price_grid
            bounds[symbols[instrument]] = [grid.text(reached.low), grid.text(reached.high)]
    return {"kind": scenario.kind, "at_s": scenario.at_s, "for_s": scenario.for_s, "factor": scenario.factor,
            "best_price_bounds": bounds}


def synthetic_feed(venue: str, names: int | Sequence[str], rates: Rates, start_ns: int, duration_s: float | None,
                   seed: int = 0, scenarios: Sequence[Scenario] = (), channels: Sequence[str] = (),
                   keep_truth: bool = False) -> SyntheticFeed:
    """A venue's synthetic session: `names` is a count of instruments or their base assets; channels
    are the venue's own names (default: its connection's default set). ValueError for a venue
    without a synthetic mode, or a channel it cannot send."""
    spec = VENUES[venue]
    if spec.synthetic is None:
        raise ValueError(f"{venue} has no synthetic mode yet (venues with one: "
                         f"{', '.join(v for v, s in VENUES.items() if s.synthetic)})")
    specs = instruments(names) if isinstance(names, int) else instruments_named(names)
    encoder = spec.synthetic(specs, channels) if channels else spec.synthetic(specs)
    market = Market(encoder.specs, rates, encoder.periodic, start_ns, duration_s, seed, scenarios)
    return SyntheticFeed(venue, market, encoder, keep_truth)
