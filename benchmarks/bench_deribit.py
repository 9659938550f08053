"""Normalizing real Deribit frames: ticklake vs cryptofeed, in one run, on the same frames.

* books: the capture's 46 real `book` messages of ten options (10 snapshots, then 36 changes), in order,
  repeated R times (each pass starts at the snapshots, so every pass is a valid rebuild); the change_id
  chain is checked on both sides (cryptofeed raises on a break); ticklake also emits the packed book_delta
  message and the derived BBO.
* tickers: the capture's 89 real option `ticker` messages, cycled to N (cryptofeed: ticker, open interest
  when it changed; ticklake: mark_index, option_summary with implied volatilities, open interest when it
  changed).
* trades: N `trades.BTC-PERPETUAL` frames of one trade, built from the fixture's real trade with trade_seq
  counting up by one (the capture recorded no trade), so ticklake's trade_seq check sees no repeat or gap;
  inverse sizes become base units (ticklake) or stay USD (cryptofeed).

cryptofeed is given the captured instruments answers, as its own REST call would, so it needs no network,
and no callbacks are registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_deribit [--messages N] [--book-passes R] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from functools import partial

from benchmarks.versus import best_of, feed_rate, loaded, on_ws_rate, print_per_item, print_rates
from ingest.capture_formats import read_capture
from normalize.venues.deribit import Deribit
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "deribit"
WS = DATA / "ws_book_raw+ticker.cryptofeed.DERIBIT.ws.1.0.txt"
INSTRUMENTS = DATA / "rest_instruments+config.cryptofeed.DERIBIT.0.txt"
TRADES = DATA / "trades.tardis-fixture.jsonl"
PREFIX = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"'


def load_frames() -> tuple[list[bytes], list[bytes]]:
    payloads = [f.payload for f in read_capture(WS)]
    return [p for p in payloads if p.startswith(PREFIX + b"book.")], [p for p in payloads
                                                                      if p.startswith(PREFIX + b"ticker.")]


def trade_frames(count: int) -> list[bytes]:
    template = json.loads(next(read_capture(TRADES)).payload)
    trade = template["params"]["data"][0]
    return [json.dumps(template | {"params": template["params"] | {"data": [
        trade | {"trade_seq": seq, "trade_id": str(seq), "timestamp": trade["timestamp"] + seq}]}},
        separators=(",", ":")).encode() for seq in range(1, count + 1)]


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges.deribit import Deribit as CryptofeedDeribit
    from cryptofeed.symbols import Symbols

    bodies = [json.loads(f.payload) for f in read_capture(INSTRUMENTS)]
    Symbols.set(CryptofeedDeribit.id, *CryptofeedDeribit._parse_symbol_data(bodies))
    # raw channels need keys in cryptofeed; none is used: no connection is made
    feed = CryptofeedDeribit(symbols=["BTC-8000-21U24-put", "BTC-USD-PERP"], channels=[L2_BOOK, TRADES, TICKER],
                             config={"deribit": {"key_id": "none", "key_secret": "none"}})
    feed._Deribit__reset()  # what its subscribe does
    return feed


def cryptofeed_rate(messages: list[bytes], passes: int = 1) -> float:
    """Messages/s through cryptofeed's message_handler; its books are reset at each pass (as its
    subscribe does) so that every pass is a rebuild from the snapshots."""
    feed = _cryptofeed_feed()
    texts = [m.decode() for m in messages]
    if passes == 1:
        return feed_rate(feed, texts)

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(passes):
            feed._Deribit__reset()
            for text in texts:
                await feed.message_handler(text, None, 1.0)
        return time.perf_counter() - start

    return len(texts) * passes / asyncio.run(run())


def ticklake_rate(messages: list[bytes], passes: int = 1) -> float:
    return on_ws_rate(loaded(Deribit(), INSTRUMENTS), messages * passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--book-passes", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    books, tickers = load_frames()
    ticker_messages = list(itertools.islice(itertools.cycle(tickers), args.messages))
    trades = trade_frames(args.messages)
    levels = sum(len(m["params"]["data"]["bids"]) + len(m["params"]["data"]["asks"]) for m in map(json.loads, books))
    rows = []
    for name, messages, passes in (("trades", trades, 1), ("tickers", ticker_messages, 1),
                                   ("books", books, args.book_passes)):
        rows.append(best_of(name, len(messages) * passes, partial(ticklake_rate, messages, passes),
                            partial(cryptofeed_rate, messages, passes), args.repeat))
    print_rates(rows)
    print_per_item("book levels", levels / len(books), "message", "levels", rows[2])


if __name__ == "__main__":
    main()
