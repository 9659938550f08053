"""Normalizing Bybit v5 frames: ticklake vs cryptofeed's Bybit feed, in one run, on the same frames.

* publicTrade: the fixture's two frames (BTCUSD: 3 trades, LTCUSDT: 1), cycled to N messages,
  through cryptofeed's `Bybit.message_handler` and through `Bybit.on_ws`.
* orderbook: the real ob500 capture (XRPUSDT, 49 deltas of about 60 levels) replayed R times,
  each time after its snapshot (untimed), book apply included (cryptofeed: its OrderBook;
  ticklake: L2Book plus the packed book_delta message and the derived BBO per message).

cryptofeed 2.4.1 speaks the v5 topics (`publicTrade`, `orderbook.N`) on the linear endpoint; it is
given symbol metadata in the v5 instruments-info shape so it needs no network (BTCUSD listed as
linear: cryptofeed has no inverse mapping, so it does not convert contracts, ticklake does). It
has no callbacks registered, so it does strictly less work than ticklake.
Run: `python -m benchmarks.bench_bybit [--trades N] [--book-rounds R] [--repeat K]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from types import SimpleNamespace

from benchmarks.versus import print_per_item, print_rates
from normalize.emitted import Emitted
from normalize.venues.bybit import Bybit
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "bybit"
TRADES = DATA / "publicTrade.tardis-fixture.jsonl"
OB500 = DATA / "orderbook.500.XRPUSDT_2024-12-01.jsonl"
CONNECTION = SimpleNamespace(address="wss://stream.bybit.com/v5/public/linear", uuid="bench", subscription={})
"""What cryptofeed's handler reads of its connection: the endpoint (linear vs spot)."""


def load_frames() -> tuple[list[bytes], bytes, list[bytes]]:
    trades = TRADES.read_bytes().splitlines()
    snapshot, *deltas = OB500.read_bytes().splitlines()
    return trades, snapshot, deltas


def _cryptofeed_feed():  # type: ignore[no-untyped-def]
    from cryptofeed.defines import L2_BOOK, TRADES
    from cryptofeed.exchanges.bybit import Bybit as CryptofeedBybit
    from cryptofeed.symbols import Symbols

    pairs = (("XRP", "USDT"), ("LTC", "USDT"), ("BTC", "USD"))
    listing = [{"symbol": f"{base}{quote}", "contractType": "LinearPerpetual", "baseCoin": base, "quoteCoin": quote,
                "priceFilter": {"tickSize": "0.0001"}} for base, quote in pairs]
    Symbols.set(CryptofeedBybit.id, *CryptofeedBybit._parse_symbol_data([{"result": {"list": listing}}]))
    return CryptofeedBybit(symbols=["XRP-USDT-PERP", "LTC-USDT-PERP", "BTC-USD-PERP"], channels=[TRADES, L2_BOOK])


def cryptofeed_rate(messages: list[bytes], snapshot: bytes | None, rounds: int) -> float:
    feed = _cryptofeed_feed()
    texts = [m.decode() for m in messages]
    start_text = snapshot.decode() if snapshot is not None else None

    async def run() -> float:
        elapsed = 0.0
        for _ in range(rounds):
            if start_text is not None:
                await feed.message_handler(start_text, CONNECTION, 1.0)
            start = time.perf_counter()
            for text in texts:
                await feed.message_handler(text, CONNECTION, 1.0)
            elapsed += time.perf_counter() - start
        return elapsed

    return len(texts) * rounds / asyncio.run(run())


def ticklake_rate(messages: list[bytes], snapshot: bytes | None, rounds: int) -> float:
    """Frames/s through Bybit.on_ws, each into a fresh Emitted handed on and dropped, as the live
    handler does; cryptofeed's results are dropped likewise. Every delta must apply (no gap)."""
    normalizer = Bybit()
    elapsed = 0.0
    dead = applied = 0
    for _ in range(rounds):
        if snapshot is not None:  # a fresh book: the snapshot again would be a reset journaled as a gap
            normalizer = Bybit()
            normalizer.on_ws(snapshot, 0, Emitted())
        start = time.perf_counter()
        for i, message in enumerate(messages):
            out = Emitted()
            normalizer.on_ws(message, i, out)
            dead += len(out.dead_letters)
        elapsed += time.perf_counter() - start
        applied += sum(diffs for diffs, _, _ in normalizer.book_report().values())
    assert not dead
    assert snapshot is None or applied == len(messages) * rounds
    return len(messages) * rounds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--book-rounds", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades, snapshot, deltas = load_frames()
    trade_messages = list(itertools.islice(itertools.cycle(trades), args.trades))
    levels = sum(len(json.loads(d)["data"]["b"]) + len(json.loads(d)["data"]["a"]) for d in deltas)

    rows = []
    for name, messages, snap, rounds in (("publicTrade", trade_messages, None, 1),
                                         ("orderbook delta", deltas, snapshot, args.book_rounds)):
        ours = max(ticklake_rate(messages, snap, rounds) for _ in range(args.repeat))
        theirs = max(cryptofeed_rate(messages, snap, rounds) for _ in range(args.repeat))
        rows.append((name, len(messages) * rounds, ours, theirs))
    print_rates(rows)
    print_per_item("book levels", levels / len(deltas), "delta", "levels", rows[1])
    print_per_item("trades", sum(len(json.loads(t)["data"]) for t in trades) / len(trades), "message", "trades",
                   rows[0])


if __name__ == "__main__":
    main()
