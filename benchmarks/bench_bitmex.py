"""Normalizing real BitMEX frames: ticklake vs cryptofeed, in one run, on the same frames.

* books: the capture's 1,979 real `orderBookL2` messages of ten symbols (10 partials of up to 9,346 levels,
  then 445 inserts, 1,090 updates and 434 deletes keyed by level id), in order, repeated R times (each pass
  starts at the partials: cryptofeed's books are reset at each pass, as its subscribe does); both keep the
  id -> price map the 2021 updates and deletes need; ticklake also checks every id, converts contracts to
  base units with the instruments' multipliers, and emits the packed book_delta message, its contracts and
  the derived BBO.
* quotes+trades: the capture's 93 `quote` and 17 `trade` frames in order, cycled to N.

cryptofeed is given the captured instruments body, as its own REST call would, so it needs no network,
and no callbacks are registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_bitmex [--messages N] [--book-passes R] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from functools import partial

from benchmarks.versus import best_of, loaded, on_ws_rate, print_per_item, print_rates
from ingest.capture_formats import read_capture
from normalize.venues.bitmex import Bitmex
from normalize.venues.bitmex.wire import iso_ns
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "bitmex"
WS = DATA / "ws_orderBookL2+quote+trade.cryptofeed.BITMEX.ws.1.0.txt"
INSTRUMENTS = DATA / "rest_instrument_active+config.cryptofeed.BITMEX.0.txt"
SYMBOLS = ["XRP-BTC-21U24", "UNI-USDT-PERP", "BTC-USD-PERP", "ADA-USDT-PERP", "SOL-USDT-PERP", "TRX-BTC-21U24",
           "EOS-USDT-PERP", "TRX-USDT-PERP", "BCH-USD-PERP", "MATIC-USDT-PERP"]
"""cryptofeed's names of the capture's ten symbols (its configuration line)."""


def load_frames() -> tuple[list[bytes], list[bytes]]:
    payloads = [f.payload for f in read_capture(WS)]
    books = [p for p in payloads if p.startswith(b'{"table":"orderBookL2"')]
    others = [p for p in payloads if p.startswith((b'{"table":"quote"', b'{"table":"trade"'))]
    return books, others


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges.bitmex import Bitmex as CryptofeedBitmex
    from cryptofeed.symbols import Symbols

    body = json.loads(next(read_capture(INSTRUMENTS)).payload)
    for entry in body:  # cryptofeed's Symbol reads no ISO time: the expiry as epoch seconds
        if entry.get("expiry"):
            entry["expiry"] = iso_ns(entry["expiry"]) / 1e9
    Symbols.set(CryptofeedBitmex.id, *CryptofeedBitmex._parse_symbol_data(body))
    return CryptofeedBitmex(symbols=SYMBOLS, channels=[L2_BOOK, TRADES, TICKER])


def cryptofeed_rate(messages: list[bytes], passes: int) -> float:
    feed = _cryptofeed_feed()
    texts = [m.decode() for m in messages]

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(passes):
            feed._reset()  # what its subscribe does: empty books, no partial received
            for text in texts:
                await feed.message_handler(text, None, 1.0)
        return time.perf_counter() - start

    return len(texts) * passes / asyncio.run(run())


def ticklake_rate(messages: list[bytes], passes: int) -> float:
    return on_ws_rate(loaded(Bitmex(), INSTRUMENTS), messages * passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--book-passes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    books, others = load_frames()
    other_messages = list(itertools.islice(itertools.cycle(others), args.messages))
    levels = sum(len(json.loads(m)["data"]) for m in books)
    changes = [m for m in books if not m.startswith(b'{"table":"orderBookL2","action":"partial"')]
    rows = []
    for name, messages, passes in (("quotes+trades", other_messages, 1), ("books", books, args.book_passes)):
        rows.append(best_of(name, len(messages) * passes, partial(ticklake_rate, messages, passes),
                            partial(cryptofeed_rate, messages, passes), args.repeat))
    print_rates(rows)
    print_per_item("book levels", levels / len(books), "message", "levels", rows[1])
    print(f"of which {len(changes)} changes of {sum(len(json.loads(m)['data']) for m in changes) / len(changes):.1f} "
          "levels; the 10 partials hold the rest")


if __name__ == "__main__":
    main()
