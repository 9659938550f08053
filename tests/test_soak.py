"""The soak's short version (benchmarks/soak.py): `ticklake run --config` against a synthetic venue whose
clock crosses UTC midnight, both sinks and the handler killed with SIGKILL on the way (the restarted handler
fetches the trades it missed from the venue, ingest/resume.py); the finished day is sealed and its captures
pruned by the schedule, every generated trade is in both stores exactly once, and the live bars are the
bars of every stored trade."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_short_soak_keeps_every_trade_once_across_kills_and_midnight(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--duration", "60", "--rate", "5000",
                             "--kill-every", "15", "--lead", "15", "--schedule-every", "20", "--nats-memory-limit",
                             "1GiB", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    soak = json.loads((tmp_path / "soak.json").read_text())
    summary = soak["summary"]
    assert summary["exit_code"] == 0 and summary["tracebacks"] == 0
    assert [kill["child"] for kill in summary["kills"]] == ["sink-parquet", "sink-timescale", "ingest-binance-usdm"]
    assert summary["restarts"] == {"sink-parquet": 1, "sink-timescale": 1, "ingest-binance-usdm": 1,
                                   "live-bars": 0, "schedule": 0}
    assert summary["trade_gaps"] >= 1, "the restarted handler found what it missed"
    assert summary["trade_backfills"] == summary["trade_gaps"] and summary["trades_lost_journaled"] == 0
    assert summary["trades_generated"] > 5000
    assert summary["trades_timescale"] == summary["trades_lake"] == summary["trades_generated"]
    assert summary["duplicates_timescale"] == summary["duplicates_lake"] == 0 and summary["stores_equal"]
    assert summary["missing_trades"] == 0 and summary["unknown_trades"] == 0
    # every trade, the backfilled ones too, in the live bars (all stored late: the market's clock is behind)
    assert summary["live_bars_equal_stored"], summary["live_bars"]
    assert summary["sealed_days"] == [summary["market_start"][:10]]  # the day before midnight, sealed on time
    assert summary["captures_pruned"] >= 1
    assert (tmp_path / "soak-memory.png").stat().st_size > 10_000
    # nats-server ran with the limit given, and its heap was sampled with the RSS (its profile port)
    assert summary["nats_gomemlimit"] == "1GiB"
    assert all(sample["nats_heap_mib"]["HeapAlloc"] > 0 for sample in soak["samples"])
    assert summary["bus_messages_per_s"] > 0
