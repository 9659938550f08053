"""Wire codec throughput: msgpack rows vs Arrow IPC, with orjson of dicts as the baseline.

Measured in one run on the same records, batched as the publisher does (500 per envelope).
Reports records/s for encode, decode to records, and decode to Arrow (what columnar sinks use),
and each rate as a ratio to the orjson baseline. Run: `make bench` or
`python -m benchmarks.bench_codec [--records N]`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

import msgspec
import orjson

from normalize import codec
from normalize.arrow_schema import to_arrow
from normalize.flags import Flag
from normalize.records import BookDelta, Record, Trade

BATCH = 500


def make_trades(n: int, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    ts = 1_721_687_141_062_170_000
    return [
        Trade(venue="binance-usdm", symbol="BTCUSDT", instrument="BTC-USDT-PERP", ts_event=ts + i * 1_000_000,
              ts_recv=ts + i * 1_000_000 + 1_270_000, ts_exch=None, exch_seq=5_000_000 + i, flags=int(Flag.LAST),
              price=round(65_000 + rng.random() * 100, 1), size=round(rng.random(), 3),
              side=rng.choice((-1, 1)), trade_id=str(5_933_014_251 + i))
        for i in range(n)
    ]


def make_deltas(n: int, seed: int = 11) -> list[Record]:
    rng = random.Random(seed)
    ts = 1_721_687_141_062_170_000
    return [
        BookDelta(venue="binance-usdm", symbol="BTCUSDT", instrument="BTC-USDT-PERP", ts_event=ts + (i // 40) * 100,
                  ts_recv=ts + (i // 40) * 100 + 7, ts_exch=None, exch_seq=9_000_000 + i // 40,
                  flags=int(Flag.LAST) if i % 40 == 39 else 0, side=1 if i % 2 else -1,
                  price=round(65_000 + rng.random() * 50, 1), size=round(rng.random() * 3, 3))
        for i in range(n)
    ]


def _rate(fn: Callable[[], object], records: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return records / best


def _batches(records: Sequence[Record]) -> list[Sequence[Record]]:
    return [records[i : i + BATCH] for i in range(0, len(records), BATCH)]


def bench(records: list[Record]) -> dict[str, dict[str, float]]:
    batches = _batches(records)
    n = len(records)
    results: dict[str, dict[str, float]] = {}
    dict_batches = [[msgspec.structs.asdict(r) for r in batch] for batch in batches]
    json_payloads = [orjson.dumps(batch) for batch in dict_batches]
    results["orjson dicts (baseline)"] = {
        "encode": _rate(lambda: [orjson.dumps(b) for b in dict_batches], n),
        "decode": _rate(lambda: [orjson.loads(p) for p in json_payloads], n),
        "decode_arrow": float("nan"),
        "bytes_per_record": sum(map(len, json_payloads)) / n,
    }
    for encoding in codec.Encoding:
        payloads = [codec.encode(batch, encoding) for batch in batches]
        results[f"{encoding.name.lower()}"] = {
            "encode": _rate(lambda enc=encoding: [codec.encode(b, enc) for b in batches], n),
            "decode": _rate(lambda ps=payloads: [codec.decode(p) for p in ps], n),
            "decode_arrow": _rate(lambda ps=payloads: [codec.decode_arrow(p) for p in ps], n),
            "bytes_per_record": sum(map(len, payloads)) / n,
        }
    results["to_arrow only (records -> Arrow)"] = {
        "encode": _rate(lambda: [to_arrow(b) for b in batches], n),
        "decode": float("nan"), "decode_arrow": float("nan"), "bytes_per_record": float("nan"),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    for name, records in (("trade", make_trades(args.records)), ("book_delta", make_deltas(args.records))):
        results = bench(records)
        base = results["orjson dicts (baseline)"]
        print(f"\n{name}: {args.records:,} records in envelopes of {BATCH}")
        print(f"{'codec':<34}{'encode rec/s':>14}{'x base':>8}{'decode rec/s':>14}{'x base':>8}"
              f"{'->arrow rec/s':>15}{'B/rec':>7}")
        for codec_name, r in results.items():
            print(f"{codec_name:<34}{r['encode']:>14,.0f}{r['encode'] / base['encode']:>8.2f}"
                  f"{r['decode']:>14,.0f}{r['decode'] / base['decode']:>8.2f}"
                  f"{r['decode_arrow']:>15,.0f}{r['bytes_per_record']:>7.1f}")


if __name__ == "__main__":
    main()
