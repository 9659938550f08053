"""The capacity benchmark's short version runs end to end (synthetic venue, handler, bus, both
sinks), stores every generated trade and at least half its target rate (the books keep their diffs:
bench_capacity's own assertions); its figures are for benchmarks/, not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_quick_capacity_run_stores_every_generated_trade() -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_capacity", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if "rec/s" in line]
    assert len(lines) == 1 and all("kept up" in line or "BEHIND" in line for line in lines)
    assert "normalize, same" in result.stdout and "cryptofeed" in result.stdout
