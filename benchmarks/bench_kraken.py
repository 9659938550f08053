"""Normalizing real Kraken frames: ticklake vs cryptofeed, in one run, on the same frames.

* kraken-futures book: the capture's 7,024 `book_snapshot`/`book` messages (10 products, 7,014
  one-level deltas, per-product seq checked), in order, repeated R times (each pass starts at the
  snapshots); ticklake also converts contracts to base units and emits the packed message and the
  derived BBO.
* kraken-futures trades: the 1,003 real trades of the capture as single `trade` frames (the 3
  recorded ones and the entries of the 10 `trade_snapshot` frames, each written as the `trade`
  message it is; cryptofeed drops snapshots), cycled to N messages.
* kraken (spot, v1) book: the capture's 4,279 `book-1000` messages (10 snapshots, 4,269 updates),
  repeated R times, with every update's CRC32 checked on both sides (cryptofeed with
  `checksum_validation=True`).
* kraken trades: the 8 real v1 `trade` frames, cycled to N messages.

Both are given the captured instruments / AssetPairs bodies, as their own REST calls would, and
cryptofeed has no callbacks registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_kraken [--trades N] [--book-passes R] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks.versus import best_of, feed_rate, loaded, on_ws_rate, print_rates
from ingest.capture_formats import read_capture
from normalize.venues.interface import VenueNormalizer
from normalize.venues.kraken import Kraken
from normalize.venues.kraken_futures import KrakenFutures
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS
FUTURES_WS = DATA / "kraken_futures" / "ws_book+ticker+trade.cryptofeed.KRAKEN_FUTURES.ws.1.0.txt"
FUTURES_INSTRUMENTS = DATA / "kraken_futures" / "rest_instruments+config.cryptofeed.KRAKEN_FUTURES.0.txt"
SPOT_BOOK = DATA / "kraken" / "ws_book1000.cryptofeed.KRAKEN.ws.50.0.txt"
SPOT_TRADES = DATA / "kraken" / "ws_trade.cryptofeed.KRAKEN.ws.48.0.txt"
SPOT_PAIRS = DATA / "kraken" / "rest_AssetPairs+config.cryptofeed.KRAKEN.0.txt"


def futures_frames() -> tuple[list[bytes], list[bytes]]:
    books, trades = [], []
    for frame in read_capture(FUTURES_WS):
        if frame.payload.startswith((b'{"feed":"book_snapshot"', b'{"feed":"book"')):
            books.append(frame.payload)
        elif frame.payload.startswith(b'{"feed":"trade_snapshot"'):
            trades += [json.dumps(t, separators=(",", ":")).encode() for t in json.loads(frame.payload)["trades"][::-1]]
        elif frame.payload.startswith(b'{"feed":"trade"'):
            trades.append(frame.payload)
    return books, trades


def spot_frames() -> tuple[list[bytes], list[bytes]]:
    books = [f.payload for f in read_capture(SPOT_BOOK) if f.payload.startswith(b"[")]
    trades = [f.payload for f in read_capture(SPOT_TRADES) if f.payload.startswith(b"[")]
    return books, trades


def ticklake_rate(make: Callable[[], VenueNormalizer], metadata: Path, messages: list[bytes]) -> float:
    return on_ws_rate(loaded(make(), metadata), messages)


def _cryptofeed_futures():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.kraken_futures import KrakenFutures as Feed
    from cryptofeed.symbols import Symbols

    body = next(json.loads(f.payload) for f in read_capture(FUTURES_INSTRUMENTS) if f.kind == "rest")
    Symbols.set(Feed.id, *Feed._parse_symbol_data(body))
    symbols = json.loads(FUTURES_INSTRUMENTS.read_text().split("configuration: ", 1)[1])["l2_book"]
    feed = Feed(symbols=symbols, channels=[TRADES, L2_BOOK])
    feed._KrakenFutures__reset()  # what its subscribe() does first: the per-connection book state
    return feed


def _cryptofeed_spot():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.kraken import Kraken as Feed
    from cryptofeed.symbols import Symbols

    body = next(json.loads(f.payload) for f in read_capture(SPOT_PAIRS) if f.kind == "rest")
    Symbols.set(Feed.id, *Feed._parse_symbol_data(body))
    symbols = json.loads(SPOT_PAIRS.read_text().split("configuration: ", 1)[1])["l2_book"]
    return Feed(symbols=symbols, channels=[TRADES, L2_BOOK], checksum_validation=True)


def cryptofeed_rate(feed_factory: Callable[[], object], messages: list[bytes], passes: int = 1) -> float:
    """A fresh feed for each pass over a book capture: cryptofeed's Kraken Futures feed does not reset
    a product's seq at a snapshot, so a second pass would fail its own seq check."""
    texts = [m.decode() for m in messages]
    size = len(texts) // passes
    seconds = sum(size / feed_rate(feed_factory(), texts[i:i + size]) for i in range(0, len(texts), size))
    return len(texts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=50_000)
    parser.add_argument("--book-passes", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    futures_books, futures_trades = futures_frames()
    spot_books, spot_trades = spot_frames()
    passes = args.book_passes
    cases = [
        ("futures book", KrakenFutures, FUTURES_INSTRUMENTS, _cryptofeed_futures, futures_books * passes, passes),
        ("futures trades", KrakenFutures, FUTURES_INSTRUMENTS, _cryptofeed_futures,
         list(itertools.islice(itertools.cycle(futures_trades), args.trades)), 1),
        ("spot book+crc32", Kraken, SPOT_PAIRS, _cryptofeed_spot, spot_books * passes, passes),
        ("spot trades", Kraken, SPOT_PAIRS, _cryptofeed_spot,
         list(itertools.islice(itertools.cycle(spot_trades), args.trades)), 1),
    ]
    rows = []
    for name, make, metadata, feed, messages, chunks in cases:
        rows.append(best_of(name, len(messages), partial(ticklake_rate, make, metadata, messages),
                            partial(cryptofeed_rate, feed, messages, chunks), args.repeat))
    print_rates(rows)


if __name__ == "__main__":
    main()
