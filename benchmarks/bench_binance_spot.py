"""Normalizing real Binance spot frames: ticklake vs cryptofeed, in one run, on the same frames.

* aggTrade: the 9,757 real raw trades of the hftbacktest BTCUSDT session restated as aggTrade frames
  (one each, `a` = `t`; cryptofeed's spot feed reads aggTrade only, and the recording holds raw
  trades), cycled to N messages, each pass moving the ids on so they run without a jump.
* depthUpdate+book: the session's 3,449 real depth@100ms diffs after its REST snapshot, book apply
  included (cryptofeed: its OrderBook; ticklake: L2Book plus the packed book_delta message and the
  derived BBO), spot's U == previous u + 1 rule checked by both.
* bookTicker: the session's 28,040 real bookTicker frames (no time in them: ticklake stamps the
  receive time; cryptofeed's ticker likewise).

cryptofeed is given an exchangeInfo body in Binance's documented shape (tests/binance_spot_data.py:
the samples hold no recording of it) so it needs no network. Neither side has callbacks registered.
Run: `python -m benchmarks.bench_binance_spot [--trades N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from functools import partial

from benchmarks.versus import best_of, feed_rate, print_per_item, print_rates
from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.venues.binance_spot import BinanceSpot
from tests.binance_spot_data import BTCUSDT_SESSION, exchange_info_body

SNAPSHOT_URL = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"


def load_frames() -> tuple[list[bytes], bytes, list[bytes], list[bytes]]:
    frames = list(read_capture(BTCUSDT_SESSION))
    trades = []
    for f in frames:
        if b'"e":"trade"' in f.payload:
            t = json.loads(f.payload)["data"]
            agg = {"e": "aggTrade", "E": t["E"], "s": t["s"], "a": t["t"], "p": t["p"], "q": t["q"], "f": t["t"],
                   "l": t["t"], "T": t["T"], "m": t["m"], "M": True}
            trades.append(json.dumps({"stream": "btcusdt@aggTrade", "data": agg}, separators=(",", ":")).encode())
    snapshot = next(f.payload for f in frames if f.kind == "rest")
    last_id = json.loads(snapshot)["lastUpdateId"]
    diffs = [f.payload for f in frames
             if b'"e":"depthUpdate"' in f.payload and json.loads(f.payload)["data"]["u"] > last_id]
    tickers = [f.payload for f in frames if b"@bookTicker" in f.payload[:40]]
    return trades, snapshot, diffs, tickers


def cycled(trades: list[bytes], count: int) -> list[bytes]:
    """`count` aggTrade frames: the trades over and over, each pass's ids moved past the last pass's."""
    ids = [json.loads(t)["data"]["a"] for t in trades]
    span = ids[-1] - ids[0] + 1
    return [trades[n % len(trades)].replace(b'"a":%d,' % ids[n % len(trades)],
                                            b'"a":%d,' % (ids[n % len(trades)] + n // len(trades) * span), 1)
            for n in range(count)]


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges.binance import Binance
    from cryptofeed.symbols import Symbols

    Symbols.set(Binance.id, *Binance._parse_symbol_data(json.loads(exchange_info_body())))
    return Binance(symbols=["BTC-USDT"], channels=[TRADES, L2_BOOK, TICKER])


def cryptofeed_rate(messages: list[bytes], snapshot: bytes | None) -> float:
    from cryptofeed.types import OrderBook

    feed = _cryptofeed_feed()
    if snapshot is not None:
        body = json.loads(snapshot, parse_float=Decimal)
        feed._l2_book["BTC-USDT"] = OrderBook(feed.id, "BTC-USDT", max_depth=feed.max_depth,
                                              bids={Decimal(p): Decimal(q) for p, q in body["bids"]},
                                              asks={Decimal(p): Decimal(q) for p, q in body["asks"]})
        feed.last_update_id["BTC-USDT"] = body["lastUpdateId"]
    return feed_rate(feed, [m.decode() for m in messages])


def ticklake_rate(messages: list[bytes], snapshot: bytes | None) -> float:
    """Frames/s through BinanceSpot.on_ws, each into a fresh Emitted handed on and dropped, as the
    live handler does; no frame may fail (dead letter, book break or trade gap)."""
    normalizer = BinanceSpot()
    if snapshot is not None:
        normalizer.on_rest(SNAPSHOT_URL, snapshot, 0, Emitted())
    dead = 0
    start = time.perf_counter()
    for i, message in enumerate(messages):
        out = Emitted()
        normalizer.on_ws(message, i, out)
        dead += len(out.dead_letters) + len(out.backfill_requests)
    elapsed = time.perf_counter() - start
    assert not dead and not any(sync.breaks for sync in normalizer.books.values())
    return len(messages) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades, snapshot, diffs, tickers = load_frames()
    levels = sum(len(json.loads(d)["data"]["b"]) + len(json.loads(d)["data"]["a"]) for d in diffs)
    rows = []
    for name, messages, snap in (("aggTrade", cycled(trades, args.trades), None),
                                 ("depthUpdate+book", diffs, snapshot), ("bookTicker", tickers, None)):
        rows.append(best_of(name, len(messages), partial(ticklake_rate, messages, snap),
                            partial(cryptofeed_rate, messages, snap), args.repeat))
    print_rates(rows)
    print_per_item("depth levels", levels / len(diffs), "message", "levels", rows[1])


if __name__ == "__main__":
    main()
