"""Normalizing real Binance USD-M frames: ticklake vs cryptofeed, in one run, on the same frames.

* trades: the 91 real aggTrade frames of the cryptofeed capture, cycled to N messages, through
  cryptofeed's `BinanceFutures.message_handler` and through `BinanceUsdm.on_ws`. Each pass
  continues every symbol's aggregate trade ids, as a live stream does (ticklake checks them).
* depth: the 6,547 real depthUpdate diffs of the hftbacktest BTCUSDT capture applied after its
  REST snapshot, book apply included (cryptofeed: its OrderBook; ticklake: L2Book plus the
  packed book_delta message and the derived BBO it emits per message).

cryptofeed is given the captured exchangeInfo so it needs no network. Both get a timestamp per
frame; cryptofeed has no callbacks registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_normalize [--trades N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from decimal import Decimal

from benchmarks.versus import feed_rate, print_per_item, print_rates
from ingest.capture_formats import read_capture
from normalize.emitted import Emitted
from normalize.venues.binance_usdm import BinanceUsdm
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "binance_usdm"
AGG_TRADES = DATA / "ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt"
DEPTH = DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"
EXCHANGE_INFO = DATA / "rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt"


def load_frames() -> tuple[list[bytes], bytes, list[bytes]]:
    trades = [f.payload for f in read_capture(AGG_TRADES) if b'"e":"aggTrade"' in f.payload]
    frames = list(read_capture(DEPTH))
    snapshot_index = next(i for i, f in enumerate(frames) if f.kind == "rest")
    snapshot = frames[snapshot_index].payload
    last_id = json.loads(snapshot)["lastUpdateId"]
    diffs = [f.payload for f in frames
             if b'"e":"depthUpdate"' in f.payload and json.loads(f.payload)["data"]["u"] >= last_id]
    return trades, snapshot, diffs


def cycled_trades(trades: list[bytes], count: int) -> list[bytes]:
    """`count` frames: the trades over and over, each pass with every symbol's trade ids moved on
    past the last pass's, so the ids run on without a jump or a repeat."""
    ids = [(re.search(rb'"s":"([A-Z0-9_]+)"', t).group(1), int(re.search(rb'"a":(\d+)', t).group(1))) for t in trades]  # type: ignore[union-attr]
    span = {symbol: max(i for s, i in ids if s == symbol) - min(i for s, i in ids if s == symbol) + 1
            for symbol, _ in ids}
    out: list[bytes] = []
    for n in range(count):
        trade, (symbol, trade_id) = trades[n % len(trades)], ids[n % len(trades)]
        shifted = trade_id + n // len(trades) * span[symbol]
        out.append(trade.replace(b'"a":%d,' % trade_id, b'"a":%d,' % shifted, 1))
    return out


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.binance_futures import BinanceFutures
    from cryptofeed.symbols import Symbols

    info = json.loads(EXCHANGE_INFO.read_text().splitlines()[0].split(": ", 1)[1])
    Symbols.set(BinanceFutures.id, *BinanceFutures._parse_symbol_data(info))
    return BinanceFutures(symbols=["BTC-USDT-PERP", "CTK-USDT-PERP", "AKRO-USDT-PERP", "SUSHI-USDT-PERP",
                                   "KEEP-USDT-PERP"], channels=[TRADES, L2_BOOK])


def cryptofeed_rate(messages: list[bytes], snapshot: bytes | None) -> float:
    from cryptofeed.types import OrderBook

    feed = _cryptofeed_feed()
    texts = [m.decode() for m in messages]
    if snapshot is not None:
        body = json.loads(snapshot, parse_float=Decimal)
        feed._l2_book["BTC-USDT-PERP"] = OrderBook(
            feed.id, "BTC-USDT-PERP", max_depth=feed.max_depth,
            bids={Decimal(p): Decimal(q) for p, q in body["bids"]},
            asks={Decimal(p): Decimal(q) for p, q in body["asks"]})
        feed.last_update_id["BTC-USDT-PERP"] = body["lastUpdateId"]
    return feed_rate(feed, texts)


def ticklake_rate(messages: list[bytes], snapshot: bytes | None) -> tuple[float, int]:
    """Frames/s through BinanceUsdm.on_ws, each into a fresh Emitted handed on and dropped, as the
    live handler does (its publisher holds records for at most one envelope); cryptofeed's
    results are dropped likewise."""
    normalizer = BinanceUsdm()
    if snapshot is not None:
        normalizer.on_rest("https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT", snapshot, 0, Emitted())
    records = 0
    dead = 0
    start = time.perf_counter()
    for i, message in enumerate(messages):
        out = Emitted()
        normalizer.on_ws(message, i, out)
        records += len(out.records)
        dead += len(out.dead_letters)
    elapsed = time.perf_counter() - start
    assert not dead
    return len(messages) / elapsed, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trades, snapshot, diffs = load_frames()
    trade_messages = cycled_trades(trades, args.trades)
    assert ticklake_rate(trade_messages, None)[1] == len(trade_messages), "a trade a frame: no id repeated, no gap"
    levels = sum(len(json.loads(d)["data"]["b"]) + len(json.loads(d)["data"]["a"]) for d in diffs)

    rows = []
    for name, messages, snap in (("aggTrade", trade_messages, None), ("depthUpdate+book", diffs, snapshot)):
        # in pairs, so a shift in the shared machine's load falls on both sides alike
        runs = [(ticklake_rate(messages, snap)[0], cryptofeed_rate(messages, snap)) for _ in range(args.repeat)]
        rows.append((name, len(messages), max(r[0] for r in runs), max(r[1] for r in runs)))
    print_rates(rows)
    print_per_item("depth levels", levels / len(diffs), "message", "levels", rows[1])


if __name__ == "__main__":
    main()
