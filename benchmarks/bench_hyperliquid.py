"""Normalizing real Hyperliquid frames (the BTC hftbacktest capture), in one run.

* l2Book: the 46 real full snapshots (20 levels a side), cycled to N messages, through
  `Hyperliquid.on_ws`: decode, diff against the previous book, replace the book, emit the packed
  book_delta message and the derived BBO. The naive baseline treats every message as what it
  is on the wire, a snapshot: stdlib json, the book cleared and rebuilt with all 40 levels, all
  of them emitted. Rates are messages/s and snapshot levels (40 a message) read per second.
* trades: the 9 real trades messages (64 fills, the first message the 30-trade replay), cycled
  with trade ids made unique per cycle, so the dedupe by id admits every fill as on a live feed.

cryptofeed has no Hyperliquid feed, so there is no cryptofeed column.
Run: `python -m benchmarks.bench_hyperliquid [--messages N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from ingest.capture_formats import read_capture
from normalize.book import L2Book
from normalize.emitted import Emitted
from normalize.flags import DEPTH_LIMITED, SNAPSHOT
from normalize.records import BookDeltas
from normalize.venues.hyperliquid import VENUE, Hyperliquid
from ticklake.recordings import RECORDINGS

CAPTURE = RECORDINGS / "hyperliquid" / \
    "ws_l2Book+trades.btc_20250126.hftbacktest.gz"


def load_frames(messages: int) -> tuple[list[bytes], list[bytes]]:
    frames = [f.payload for f in read_capture(CAPTURE)]
    books = [f for f in frames if f.startswith(b'{"channel":"l2Book"')]
    trades = [json.loads(f) for f in frames if f.startswith(b'{"channel":"trades"')]
    cycled = []
    for cycle in itertools.count():
        for message in trades:
            data = [{**t, "tid": t["tid"] + cycle * 10**15} for t in message["data"]]
            cycled.append(json.dumps({"channel": "trades", "data": data}, separators=(",", ":")).encode())
        if len(cycled) >= messages:
            break
    return list(itertools.islice(itertools.cycle(books), messages)), cycled[:messages]


def ticklake_rate(messages: list[bytes]) -> tuple[float, int]:
    """Messages/s through Hyperliquid.on_ws, each into a fresh Emitted handed on and dropped, as
    the live handler does; also the rows emitted (book levels or trades)."""
    normalizer = Hyperliquid()
    rows = dead = 0
    start = time.perf_counter()
    for i, message in enumerate(messages):
        out = Emitted()
        normalizer.on_ws(message, i, out)
        rows += sum(r.row_count() if type(r) is BookDeltas else 1 for r in out.records)
        dead += len(out.dead_letters)
    elapsed = time.perf_counter() - start
    assert not dead
    return len(messages) / elapsed, rows


def naive_book_rate(messages: list[bytes]) -> float:
    """Every snapshot decoded with json, the book rebuilt from scratch, every level emitted."""
    book = L2Book()
    start = time.perf_counter()
    for i, message in enumerate(messages):
        data = json.loads(message)["data"]
        bids = [(float(level["px"]), float(level["sz"])) for level in data["levels"][0]]
        asks = [(float(level["px"]), float(level["sz"])) for level in data["levels"][1]]
        book.clear()
        packed_bids, packed_asks = book.apply_levels(bids, asks)
        out = Emitted()
        out.records.append(BookDeltas(VENUE, data["coin"], "BTC-USDC-PERP", data["time"] * 1_000_000, i, None, None,
                                      SNAPSHOT | DEPTH_LIMITED, packed_bids, packed_asks))
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    books, trades = load_frames(args.messages)
    levels = sum(len(level) for m in books for level in json.loads(m)["data"]["levels"]) / len(books)
    fills = sum(len(json.loads(m)["data"]) for m in trades) / len(trades)

    book_runs = [ticklake_rate(books) for _ in range(args.repeat)]
    ours, rows = max(book_runs)
    naive = max(naive_book_rate(books) for _ in range(args.repeat))
    trade_rate, trade_rows = max(ticklake_rate(trades) for _ in range(args.repeat))
    print(f"{'frames':<22}{'count':>9}{'msg/s':>12}{'levels or fills/s':>20}{'rows/msg':>10}")
    print(f"{'l2Book (diff+apply)':<22}{len(books):>9,}{ours:>12,.0f}{ours * levels:>20,.0f}"
          f"{rows / len(books):>10.1f}")
    print(f"{'l2Book naive rebuild':<22}{len(books):>9,}{naive:>12,.0f}{naive * levels:>20,.0f}{levels:>10.1f}")
    print(f"{'trades':<22}{len(trades):>9,}{trade_rate:>12,.0f}{trade_rate * fills:>20,.0f}"
          f"{trade_rows / len(trades):>10.1f}")
    print(f"l2Book: ticklake {ours / naive:.1f}x the naive rebuild, emitting {rows / len(books):.1f} rows a message "
          f"instead of {levels:.0f}")


if __name__ == "__main__":
    main()
