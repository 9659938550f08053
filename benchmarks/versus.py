"""Shared benchmark plumbing: the report every ticklake-vs-cryptofeed normalize benchmark prints, and
interleaved timing of variants (on a shared machine load shifts between runs, not within one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

Row = tuple[str, int, float, float]
"""(frames, count, ticklake msg/s, cryptofeed msg/s)."""


def print_rates(rows: Sequence[Row]) -> None:
    print(f"{'frames':<18}{'count':>9}{'ticklake msg/s':>16}{'cryptofeed msg/s':>18}{'ratio':>8}")
    for name, count, ours, theirs in rows:
        print(f"{name:<18}{count:>9,}{ours:>16,.0f}{theirs:>18,.0f}{ours / theirs:>7.1f}x")


def print_per_item(what: str, per: float, per_what: str, unit: str, row: Row) -> None:
    """Message rates turned into item rates, e.g. book levels/s from `per` levels a message."""
    _, _, ours, theirs = row
    print(f"{what}: {per:.1f} per {per_what}; ticklake {ours * per:,.0f} {unit}/s, "
          f"cryptofeed {theirs * per:,.0f} {unit}/s")


def interleaved(variants: Mapping[str, Callable[[], T]], repeat: int) -> tuple[dict[str, list[float]], dict[str, T]]:
    """Run every variant `repeat` times, one after the other in turn: (seconds per run, last result) by name."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, T] = {}
    for _ in range(repeat):
        for name, run in variants.items():
            started = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - started)
    return times, results


def feed_rate(feed: object, texts: Sequence[str]) -> float:
    """Messages/s through a cryptofeed feed's `message_handler`, awaited one by one as its connection
    loop does (no callbacks registered)."""
    import asyncio

    async def run() -> float:
        start = time.perf_counter()
        for text in texts:
            await feed.message_handler(text, None, 1.0)  # type: ignore[attr-defined]
        return time.perf_counter() - start

    return len(texts) / asyncio.run(run())
