"""The capacity model of docs/capacity.md: what running a venue in full takes, from measured costs.

Two measured inputs: rows and frames per second per instrument in the venues' own recordings
(`benchmarks.recorded_rates --json`), and what a row costs on this machine
(`benchmarks.bench_capacity --json`: CPU microseconds per record by process, resident memory,
bytes per row in each store). The model is linear in rows: cores = rows/s x CPU per row,
storage = rows/day x bytes per row. It is checked against the benchmark's own steps: calibrated
on one step, it predicts the CPU of the others, and the error is printed.

The instrument counts per venue are assumptions (the venues' listings change weekly; set yours
with `--listing venue=N`); each venue's per-instrument rates come from the recording named.

Run: `python -m benchmarks.capacity_model --bench FILE --rates FILE [--listing binance-usdm=450 ...]`.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY_S = 86_400
BUSY = 0.5
"""Provision cores for half busy: bursts (x10 in a liquidation cascade, docs/synthetic.md) then
eat the headroom and the backlog stays in JetStream rather than in a handler's socket."""
PROCESSES = ("handler", "nats-server", "sink timescale", "sink parquet", "postgres")


@dataclass(frozen=True)
class Listing:
    """A venue in full: every perpetual, trades + depth + BBO at the venue's documented rates.

    Two tiers: `majors` instruments at the rate of the busiest recording we have for the venue, the
    rest at the long-tail rate (the venue's own alt recording, else Binance's 2021 alts at 100 ms)."""

    venue: str
    perpetuals: int
    majors: int
    major_recording: str
    tail_recording: str


LISTINGS = (
    Listing("binance-usdm", 450, 2, "BTCUSDT depth@0ms", "4 symbols depth@100ms"),
    Listing("bybit", 500, 2, "XRPUSDT orderbook.500", "4 symbols depth@100ms"),
    Listing("okx", 250, 2, "3 instruments books", "4 symbols depth@100ms"),
    Listing("hyperliquid", 200, 2, "BTC l2Book", "BTC l2Book"),
)
"""Perpetual counts: assumptions for late 2026 (our recorded listings are older: Binance's
exchangeInfo of 2021-07 had 119 perpetuals, OKX's of 2022-05 had 166 swaps)."""


def _recording(rates: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(r for r in rates if str(r["what"]).startswith(prefix))


def _per_instrument(recording: dict[str, Any]) -> tuple[dict[str, float], float, float]:
    """(rows/s by table, frames/s, raw bytes a frame) of one instrument of a recording."""
    return (dict(recording["rows_per_s_per_instrument"]), float(recording["frames_per_s_per_instrument"]),
            float(recording["raw_bytes_per_frame"]))


@dataclass(frozen=True)
class Costs:
    """What a row costs, from one benchmark step."""

    cpu_us: dict[str, float]
    rss_mb: dict[str, float]
    disk: dict[str, float]

    @property
    def cpu_us_total(self) -> float:
        return sum(self.cpu_us.get(name, 0.0) for name in PROCESSES)


def calibration(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The realistic mix's kept-up step with the highest rate: the costs the model uses."""
    kept = [s for s in steps if s["mix"] == "realistic mix" and s["kept_up"]]
    return max(kept or steps, key=lambda s: s["rate"])


def costs(step: dict[str, Any]) -> Costs:
    return Costs(dict(step["cpu_us"]), dict(step["rss_mb"]), dict(step["disk"]))


def requirement(listing: Listing, rates: list[dict[str, Any]], cost: Costs) -> dict[str, float]:
    major_rows, major_frames, major_bytes = _per_instrument(_recording(rates, listing.major_recording))
    tail_rows, tail_frames, tail_bytes = _per_instrument(_recording(rates, listing.tail_recording))
    tail = listing.perpetuals - listing.majors
    rows = {t: listing.majors * major_rows.get(t, 0.0) + tail * tail_rows.get(t, 0.0)
            for t in {*major_rows, *tail_rows}}
    rows_s = sum(rows.values())
    frames_s = listing.majors * major_frames + tail * tail_frames
    raw_bytes_s = listing.majors * major_frames * major_bytes + tail * tail_frames * tail_bytes
    capture_ratio = cost.disk.get("capture B/frame", 0.0) / max(cost.disk.get("raw B/frame", 1.0), 1.0)
    busy = rows_s * cost.cpu_us_total / 1e6

    def per_day(prefix: str) -> float:
        """Bytes a day in a store, by table where measured (other tables at the trade row's size)."""
        fallback = cost.disk.get(f"{prefix} trade B/row", 0.0)
        return sum(n * DAY_S * cost.disk.get(f"{prefix} {t} B/row", fallback) for t, n in rows.items())

    return {"rows/s": rows_s, "frames/s": frames_s, "cores busy": busy, "cores": math.ceil(busy / BUSY),
            "timescale GB/day": per_day("timescale") / 1e9, "lake GB/day": per_day("lake") / 1e9,
            "capture GB/day": raw_bytes_s * capture_ratio * DAY_S / 1e9,
            "nats GB/day": rows_s * cost.disk.get("jetstream B/record", 0.0) * DAY_S / 1e9}


def check(steps: list[dict[str, Any]], cost: Costs) -> list[tuple[str, float, float, float]]:
    """(step, measured CPU seconds, predicted, error) for every other kept-up step of the benchmark."""
    out = []
    for step in steps:
        if not step["kept_up"] or not step["records"]:
            continue
        measured = sum(step["cpu_us"].get(name, 0.0) for name in PROCESSES) * step["records"] / 1e6
        predicted = cost.cpu_us_total * step["records"] / 1e6
        label = f"{step['mix']}, {step['instruments']} instruments, {step['rate']:,.0f} rec/s"
        out.append((label, measured, predicted, predicted / measured - 1 if measured else math.nan))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, required=True, help="bench_capacity --json output")
    parser.add_argument("--rates", type=Path, required=True, help="recorded_rates --json output")
    parser.add_argument("--listing", action="append", default=[], help="venue=perpetuals, overriding the default")
    args = parser.parse_args()
    steps = json.loads(args.bench.read_text())
    rates = json.loads(args.rates.read_text())
    counts = dict(item.split("=", 1) for item in args.listing)
    base = calibration(steps)
    cost = costs(base)
    print(f"calibration: {base['mix']}, {base['instruments']} instruments, {base['rate']:,.0f} records/s: "
          f"{cost.cpu_us_total:.1f} CPU us a record (" +
          ", ".join(f"{n} {cost.cpu_us.get(n, 0):.1f}" for n in PROCESSES) + ")\n")
    print("| venue | perpetuals | rows/s | cores busy | cores (50% busy) | TimescaleDB GB/day | lake GB/day "
          "| raw capture GB/day | JetStream GB/day |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    total: dict[str, float] = {}
    for listing in LISTINGS:
        if listing.venue in counts:
            listing = Listing(listing.venue, int(counts[listing.venue]), listing.majors, listing.major_recording,
                              listing.tail_recording)
        need = requirement(listing, rates, cost)
        for key, value in need.items():
            total[key] = total.get(key, 0.0) + value
        print(f"| {listing.venue} | {listing.perpetuals} | {need['rows/s']:,.0f} | {need['cores busy']:.1f} "
              f"| {need['cores']:.0f} | {need['timescale GB/day']:,.0f} | {need['lake GB/day']:,.1f} "
              f"| {need['capture GB/day']:,.0f} | {need['nats GB/day']:,.0f} |")
    cores = math.ceil(total["cores busy"] / BUSY)
    print(f"| all four | | {total['rows/s']:,.0f} | {total['cores busy']:.1f} | {cores} "
          f"| {total['timescale GB/day']:,.0f} | {total['lake GB/day']:,.1f} | {total['capture GB/day']:,.0f} "
          f"| {total['nats GB/day']:,.0f} |")
    print("\nthe model against the benchmark's other steps (CPU seconds of handler, bus, sinks and PostgreSQL):\n")
    print("| step | measured | model | error |")
    print("|---|---:|---:|---:|")
    for label, measured, predicted, error in check(steps, cost):
        print(f"| {label} | {measured:.1f} | {predicted:.1f} | {error:+.0%} |")
    rss = ", ".join(f"{name} {value:.0f}" for name, value in base["rss_mb"].items())
    print(f"\nresident memory at the calibration step (MiB): {rss}")


if __name__ == "__main__":
    main()
