"""Shared benchmark plumbing: the report every ticklake-vs-cryptofeed normalize benchmark prints, how
each side is timed (a normalizer loaded with the recorded metadata, frames through on_ws; a cryptofeed
feed's message_handler), and interleaved runs of both (on a shared machine load shifts between runs, not
within one: the best of each is reported)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.venues.interface import VenueNormalizer

T = TypeVar("T")
N = TypeVar("N", bound=VenueNormalizer)

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


def best_of(name: str, count: int, ours: Callable[[], float], theirs: Callable[[], float], repeat: int) -> Row:
    """The report row of `repeat` runs of each side, interleaved, best of each."""
    runs = [(ours(), theirs()) for _ in range(repeat)]
    return name, count, max(r[0] for r in runs), max(r[1] for r in runs)


def loaded(normalizer: N, metadata: Path) -> N:
    """The normalizer after the REST bodies of a recorded metadata capture (instruments, contract
    sizes), as the live handler starts; the capture's WebSocket frames, if any, are skipped."""
    for frame in read_capture(metadata):
        if frame.kind == "rest":
            normalizer.on_rest(frame.url, frame.payload, frame.ts_recv, Emitted())
    return normalizer


def on_ws_rate(normalizer: VenueNormalizer, messages: Sequence[bytes]) -> float:
    """Frames/s through on_ws, each into a fresh Emitted handed on and dropped, as the live handler
    does; no frame may fail (dead letter or book break)."""
    dead = 0
    start = time.perf_counter()
    for i, message in enumerate(messages):
        out = Emitted()
        normalizer.on_ws(message, i, out)
        dead += len(out.dead_letters)
    elapsed = time.perf_counter() - start
    breaks = sum(breaks for _, breaks, _ in normalizer.book_report().values())
    assert not dead and not breaks, (dead, breaks)
    return len(messages) / elapsed


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
