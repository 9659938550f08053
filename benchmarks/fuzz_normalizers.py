"""A long fuzz of every normalizer: `python -m benchmarks.fuzz_normalizers [--frames N] [--seed S]`.

N frames in all (100,000 by default), spread over every bundled capture group, half of them
mutated (ingest.fuzz: values replaced by odd text, extreme numbers or other types, fields removed,
frames cut short, reordered and repeated). Prints, per venue, the frames fed, dead letters and
records; then every exception that escaped a normalizer, grouped by where it was raised, with one
example; exits 1 if there is any. CI runs a bounded version (tests/test_fuzz_normalizers.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from ingest.capture_formats import read_frames
from ingest.fuzz import Escape, fuzz
from ingest.venues.registry import NORMALIZERS
from tests.captures import all_captures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    groups = all_captures()
    per_group = max(1, args.frames // len(groups))
    escapes: list[Escape] = []
    fed: Counter[str] = Counter()
    letters: Counter[str] = Counter()
    records: Counter[str] = Counter()
    started = time.perf_counter()
    for index, (venue, paths) in enumerate(groups):
        frames = list(read_frames(paths))
        found, out = fuzz(venue, NORMALIZERS[venue], frames, per_group, seed=args.seed * 1000 + index)
        escapes += found
        fed[venue] += per_group
        letters[venue] += len(out.dead_letters)
        records[venue] += len(out.records)
    seconds = time.perf_counter() - started
    print(f"{sum(fed.values()):,} frames over {len(groups)} capture groups in {seconds:.1f} s")
    print(f"{'venue':<14}{'frames':>10}{'dead letters':>14}{'records':>10}")
    for venue in sorted(fed):
        print(f"{venue:<14}{fed[venue]:>10,}{letters[venue]:>14,}{records[venue]:>10,}")
    by_place = Counter((e.venue, e.where, e.exception.split(":")[0]) for e in escapes)
    print(f"exceptions escaped: {len(escapes)}")
    for (venue, where, kind), count in by_place.most_common():
        example = next(e for e in escapes if (e.venue, e.where) == (venue, where))
        print(f"  {count:>6} {venue} {where} {kind}: {example.exception[:120]} | mutation {example.mutation[:100]}")
    sys.exit(1 if escapes else 0)


if __name__ == "__main__":
    main()
