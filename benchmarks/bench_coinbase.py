"""Normalizing Coinbase frames: ticklake vs cryptofeed, in one run, on the same frames.

cryptofeed (2.4) reads only Advanced Trade messages, and the one real Coinbase recording is of the
Exchange feed (2021, 10 products, 31 s). So the compared frames are that recording's events restated
as Advanced Trade messages (tests/coinbase_data.py: the same books, trades and prices; one
connection's sequence_num, which ticklake checks on every message):

* market_trades: the 97 `update` trades (cryptofeed skips the subscription snapshots), cycled to N
  messages, each pass moving the trade ids on so they run without a jump (ticklake checks them).
* l2_data+book: the 10 snapshots and 9,719 updates in order, book apply included (cryptofeed: its
  OrderBook; ticklake: L2Book plus the packed book_delta message and the derived BBO).

ticklake alone is also timed on the recorded Exchange-feed frames themselves (snapshot, l2update,
match, ticker), which cryptofeed no longer reads. cryptofeed is given the products as its own REST
call would (restated from the recorded /products body); neither side has callbacks registered.
Run: `python -m benchmarks.bench_coinbase [--trades N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

from benchmarks.versus import best_of, feed_rate, print_rates
from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.venues.coinbase import Coinbase
from tests.coinbase_data import CAPTURE, PRODUCT_IDS, PRODUCTS, advanced_trade


def load_frames() -> tuple[list[bytes], list[bytes], list[bytes]]:
    recorded = [f for f in read_capture(CAPTURE) if f.kind == "ws"]
    restated = [f.payload for f in advanced_trade(recorded)]
    trades = [p for p in restated if p.startswith(b'{"channel":"market_trades"') and b'"type":"update"' in p]
    books = [p for p in restated if p.startswith(b'{"channel":"l2_data"')]
    exchange = [f.payload for f in recorded if not f.payload.startswith(b'{"type":"subscriptions"')]
    return trades, books, exchange


def numbered(messages: list[bytes], count: int | None = None) -> list[bytes]:
    """The messages (cycled to `count`) with sequence_num 0, 1, ... and each product's trade ids moved
    on past the last pass's."""
    count = count or len(messages)
    ids: dict[str, list[int]] = {}
    for m in messages:
        for event in json.loads(m)["events"]:
            for t in event.get("trades", ()):
                ids.setdefault(t["product_id"], []).append(int(t["trade_id"]))
    span = {product: max(i) - min(i) + 1 for product, i in ids.items()}
    out = []
    for n in range(count):
        body = json.loads(messages[n % len(messages)])
        body["sequence_num"] = n
        for event in body["events"]:
            for t in event.get("trades", ()):
                t["trade_id"] = str(int(t["trade_id"]) + n // len(messages) * span[t["product_id"]])
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.coinbase import Coinbase as CryptofeedCoinbase
    from cryptofeed.symbols import Symbols

    recorded = json.loads(next(read_capture(PRODUCTS)).payload)
    products = [{"product_id": p["id"], "base_currency_id": p["base_currency"], "quote_currency_id":
                 p["quote_currency"], "quote_increment": p["quote_increment"]} for p in recorded]
    Symbols.set(CryptofeedCoinbase.id, *CryptofeedCoinbase._parse_symbol_data({"products": products}))
    return CryptofeedCoinbase(symbols=PRODUCT_IDS, channels=[L2_BOOK, TRADES])


def cryptofeed_rate(messages: list[bytes]) -> float:
    return feed_rate(_cryptofeed_feed(), [m.decode() for m in messages])


def ticklake_rate(messages: list[bytes]) -> float:
    """Frames/s through Coinbase.on_ws, each into a fresh Emitted handed on and dropped, as the live
    handler does; no frame may fail (dead letter, sequence or trade id gap, book break)."""
    normalizer = Coinbase()
    bad = 0
    start = time.perf_counter()
    for i, message in enumerate(messages):
        out = Emitted()
        normalizer.on_ws(message, i, out)
        bad += len(out.dead_letters) + len(out.backfill_requests) + len(out.snapshot_requests)
    elapsed = time.perf_counter() - start
    assert not bad and not any(sync.breaks for sync in normalizer.books.values())
    return len(messages) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades, books, exchange = load_frames()
    rows = []
    for name, messages in (("market_trades", numbered(trades, args.trades)), ("l2_data+book", numbered(books))):
        rows.append(best_of(name, len(messages), partial(ticklake_rate, messages), partial(cryptofeed_rate, messages),
                            args.repeat))
    print_rates(rows)
    alone = max(ticklake_rate(exchange) for _ in range(args.repeat))
    print(f"recorded Exchange feed ({len(exchange):,} frames: snapshot, l2update, match, ticker), ticklake only: "
          f"{alone:,.0f} msg/s")


if __name__ == "__main__":
    main()
