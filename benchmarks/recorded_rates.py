"""Rows per second per instrument in the bundled real recordings: the inputs of docs/capacity.md.

The capacity model multiplies a venue's instrument count by per-instrument rates. Those rates come
from what the venues actually sent in the continuous recordings we ship (not from fixtures or
documentation examples, which are single messages): each capture is normalized offline by the
live normalizer and its stored rows are counted per record type and instrument, over the capture's
own receive-time span (its event-time span where the capture has no receive times: Bybit's
history files). Raw bytes per frame are counted too (the raw capture's cost).

Run: `python -m benchmarks.recorded_rates [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from normalize.records import BookDeltas
from ticklake.recordings import RECORDINGS


@dataclass(frozen=True)
class Recording:
    """One continuous real capture: which venue's normalizer reads it and what it is."""

    venue: str
    files: tuple[str, ...]
    what: str


_HFT = "ws_depth{depth}+trade+bookTicker+rest_snapshot.{symbol}_20240808.hftbacktest.gz"
CONTINUOUS = (
    Recording("binance-usdm", ("binance_usdm/" + _HFT.format(depth="0ms", symbol="btcusdt"),),
              "BTCUSDT depth@0ms + trade + bookTicker, 2024-08-08"),
    Recording("binance-usdm", ("binance_usdm/" + _HFT.format(depth="0ms", symbol="ethusdt"),),
              "ETHUSDT depth@0ms + trade + bookTicker, 2024-08-08"),
    Recording("binance-usdm", ("binance_usdm/rest_depth_snapshot.cryptofeed.BINANCE_FUTURES.http.0.0.txt",
                               "binance_usdm/ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt"),
              "4 symbols depth@100ms + aggTrade + bookTicker, 2021-07-22"),
    Recording("binance-spot", ("binance_spot/" + _HFT.format(depth="100ms", symbol="btcusdt"),),
              "BTCUSDT spot depth@100ms + trade + bookTicker, 2024-08-08"),
    Recording("okx", ("okx/ws_books+trades+tickers.cryptofeed.OKX.ws.1.0.txt",),
              "3 instruments books + trades + tickers, 2022-05-13"),
    Recording("bybit", ("bybit/orderbook.500.XRPUSDT_2024-12-01.jsonl",), "XRPUSDT orderbook.500, 2024-12-01"),
    Recording("hyperliquid", ("hyperliquid/ws_l2Book+trades.btc_20250126.hftbacktest.gz",),
              "BTC l2Book + trades, 2025-01-26"),
)


def measure(recording: Recording) -> dict[str, object]:
    frames = [f for name in recording.files for f in read_capture(RECORDINGS / name)]
    ws = [f for f in frames if f.kind == "ws"]
    out, _ = normalize_frames(recording.venue, frames)
    rows: Counter[tuple[str, str]] = Counter()
    for record in out.records:
        count = record.row_count() if isinstance(record, BookDeltas) else 1
        rows[(record.record_type, record.instrument)] += count
    stamps = [f.ts_recv for f in ws if f.ts_recv] or [r.ts_event for r in out.records if r.ts_event]
    seconds = (max(stamps) - min(stamps)) / 1e9
    instruments = sorted({i for _, i in rows if i})
    per_type: Counter[str] = Counter()
    for (kind, _), n in rows.items():
        per_type[kind] += n
    return {"venue": recording.venue, "what": recording.what, "seconds": round(seconds, 1),
            "instruments": len(instruments), "frames": len(ws),
            "frames_per_s_per_instrument": round(len(ws) / seconds / max(len(instruments), 1), 1),
            "raw_bytes_per_frame": round(sum(len(f.payload) for f in ws) / max(len(ws), 1), 1),
            "rows_per_s": {kind: round(n / seconds, 1) for kind, n in sorted(per_type.items())},
            "rows_per_s_per_instrument": {kind: round(n / seconds / max(len(instruments), 1), 1)
                                          for kind, n in sorted(per_type.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    results = [measure(r) for r in CONTINUOUS]
    for r in results:
        rates = ", ".join(f"{k} {v:,.1f}" for k, v in r["rows_per_s_per_instrument"].items())  # type: ignore[attr-defined]
        print(f"{r['venue']:<13} {r['what']:<55} {r['seconds']:>7} s  {r['instruments']} instr  "
              f"{r['raw_bytes_per_frame']:>7} B/frame  rows/s per instrument: {rates}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
