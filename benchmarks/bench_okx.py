"""Normalizing real OKX frames: ticklake vs cryptofeed, in one run, on the same frames.

* trades: the 74 real `trades` frames of the cryptofeed capture (an inverse future, an inverse
  swap and a spot pair), cycled to N messages, through cryptofeed's `OKX.message_handler` and
  through `Okx.on_ws` (which converts contracts to base units).
* books: the capture's 290 real `books` messages (3 snapshots of up to 400 levels a side, then
  287 updates), in order, repeated R times (each pass starts at the snapshots, so every pass is
  a valid rebuild), book apply and the CRC32 checksum of every message included on both sides
  (cryptofeed with `checksum_validation=True`; ticklake also emits the packed book_delta
  message, its native sizes and the derived BBO).

cryptofeed is given the captured instruments bodies, as its own REST call would, so it needs no
network. cryptofeed has no callbacks registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_okx [--trades N] [--book-passes R] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from functools import partial

from benchmarks.versus import best_of, feed_rate, loaded, on_ws_rate, print_per_item, print_rates
from ingest.capture_formats import read_capture
from normalize.venues.okx import Okx
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "okx"
WS = DATA / "ws_books+trades+tickers.cryptofeed.OKX.ws.1.0.txt"
INSTRUMENTS = DATA / "rest_instruments_spot+swap+futures.cryptofeed.OKX.0.txt"


def load_frames() -> tuple[list[bytes], list[bytes]]:
    payloads = [f.payload for f in read_capture(WS)]
    trades = [p for p in payloads if p.startswith(b'{"arg":{"channel":"trades"')]
    books = [p for p in payloads if p.startswith(b'{"arg":{"channel":"books"')]
    return trades, books


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.okx import OKX
    from cryptofeed.symbols import Symbols

    bodies = [json.loads(f.payload) for f in read_capture(INSTRUMENTS)]
    Symbols.set(OKX.id, *OKX._parse_symbol_data(bodies))
    return OKX(symbols=["BTC-USD-22K27", "UNI-USD-PERP", "BTC-USDT"], channels=[TRADES, L2_BOOK],
               checksum_validation=True)


def cryptofeed_rate(messages: list[bytes]) -> float:
    feed = _cryptofeed_feed()
    texts = [m.decode() for m in messages]
    return feed_rate(feed, texts)


def ticklake_rate(messages: list[bytes]) -> float:
    return on_ws_rate(loaded(Okx(), INSTRUMENTS), messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--book-passes", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades, books = load_frames()
    trade_messages = list(itertools.islice(itertools.cycle(trades), args.trades))
    book_messages = books * args.book_passes
    levels = sum(len(d["bids"]) + len(d["asks"]) for m in books for d in json.loads(m)["data"]) * args.book_passes

    rows = []
    for name, messages in (("trades", trade_messages), ("books+checksum", book_messages)):
        rows.append(best_of(name, len(messages), partial(ticklake_rate, messages), partial(cryptofeed_rate, messages),
                            args.repeat))
    print_rates(rows)
    print_per_item("book levels", levels / len(book_messages), "message", "levels", rows[1])


if __name__ == "__main__":
    main()
