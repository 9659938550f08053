"""Capture retention: by age, by size, oldest first, never a day the lake has not sealed; `ticklake
capture prune --dry-run` prints what would go and removes nothing."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

from ingest.capture_log import hour_path
from normalize.records import Bbo, Trade
from storage.lake_write import write_records
from storage.parquet_files import filesystem_for
from storage.seal_manifest import SEALED, SealManifest, write_manifest
from tests.cli_replay import TICKLAKE
from ticklake.capture_retention import capture_files, prune_captures

TODAY = dt.datetime.now(dt.UTC).date()
"""The CLI prunes relative to the real day, so the files are laid out relative to it too."""
VENUE = "binance-usdm"


def _ns(day: dt.date, hour: int = 0) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp()) * 10**9


def _capture(root: Path, day: dt.date, hour: int, size: int) -> Path:
    path = hour_path(root, VENUE, _ns(day, hour))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(size - 4))
    return path


def _lake_day(lake: Path, day: dt.date, sealed: tuple[str, ...]) -> None:
    """A trade and a bbo partition of the day; a seal manifest (the seal's commit record) for `sealed`."""
    ts = _ns(day, 12)
    write_records(str(lake), [Trade(VENUE, "BTCUSDT", "BTC-USDT-PERP", ts, ts, None, None, 0, 1.0, 1.0, 1, "1"),
                              Bbo(VENUE, "BTCUSDT", "BTC-USDT-PERP", ts, ts, None, None, 0, 1.0, 1.0, 2.0, 1.0)],
                  "test")
    filesystem, base = filesystem_for(str(lake))
    for record_type in sealed:
        write_manifest(filesystem, base, SealManifest(record_type, VENUE, day.isoformat(), SEALED, 1, [], [], [], 1,
                                                      1))


def _day(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    """Days 6..1 back: 6 half sealed (trade only), 5, 4 and 2 sealed, 3 and 1 not sealed; 1 KiB an hour, two
    hours a day, plus today's open hour."""
    root, lake = tmp_path / "home" / "capture", tmp_path / "lake"
    for n in (6, 5, 4, 3, 2, 1):
        for hour in (0, 1):
            _capture(root, _day(n), hour, 1024)
    _capture(root, TODAY, 0, 1024)
    _lake_day(lake, _day(6), ("trade",))
    for n in (5, 4, 2):
        _lake_day(lake, _day(n), ("trade", "bbo"))
    for n in (3, 1):
        _lake_day(lake, _day(n), ())
    return root, lake


def _days(root: Path) -> list[int]:
    return sorted({(TODAY - f.day).days for f in capture_files(root)}, reverse=True)


def test_days_past_the_kept_ones_go_only_when_sealed(tmp_path: Path) -> None:
    root, lake = _setup(tmp_path)
    plan = prune_captures(root, str(lake), TODAY, keep_days=2, max_bytes=None)
    assert {(TODAY - f.day).days for f, _ in plan.remove} == {5, 4}
    assert all(why == "older than 2 days" for _, why in plan.remove)
    assert _days(root) == [6, 3, 2, 1, 0]  # 6: its bbo not sealed; 3: not sealed at all
    assert not (root / VENUE / _day(5).isoformat()).exists()


def test_over_the_size_the_oldest_sealed_go_first(tmp_path: Path) -> None:
    root, lake = _setup(tmp_path)
    plan = prune_captures(root, str(lake), TODAY, keep_days=None, max_bytes=10 * 1024)
    assert [(TODAY - f.day).days for f, _ in plan.remove] == [5, 5, 4]  # 13 KiB down to 10
    assert plan.over_by == 0 and _days(root) == [6, 4, 3, 2, 1, 0]


def test_unsealed_days_are_kept_even_over_the_size(tmp_path: Path) -> None:
    root, lake = _setup(tmp_path)
    plan = prune_captures(root, str(lake), TODAY, keep_days=0, max_bytes=1024)
    assert {(TODAY - f.day).days for f, _ in plan.remove} == {5, 4, 2}
    assert plan.kept_unsealed == 7 and plan.over_by == 7 * 1024 - 1024
    assert _days(root) == [6, 3, 1, 0]


def test_the_cli_dry_run_removes_nothing_then_prune_does(tmp_path: Path) -> None:
    root, lake = _setup(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_HOME=str(tmp_path / "home"), TICKLAKE_LAKE=str(lake))
    before = sorted(p.name for p in root.rglob("*.tlcap.zst"))
    dry = subprocess.run([TICKLAKE, "capture", "prune", "--keep-days", "3", "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count(" bytes, older than 3 days)") == 4
    assert "would remove 4 capture files, 4,096 bytes" in dry.stdout
    assert sorted(p.name for p in root.rglob("*.tlcap.zst")) == before
    real = subprocess.run([TICKLAKE, "capture", "prune", "--keep-days", "3"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert real.returncode == 0 and "removed 4 capture files" in real.stdout, real.stdout + real.stderr
    assert len(list(root.rglob("*.tlcap.zst"))) == len(before) - 4
    none = subprocess.run([TICKLAKE, "capture", "prune"], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert none.returncode == 2 and "nothing to prune by" in none.stderr
