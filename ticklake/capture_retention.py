"""Capture retention: the raw captures under `$TICKLAKE_HOME/capture` kept for N days or up to M GiB.

The captures are what `ticklake backfill` rebuilds both stores from, so one goes only once the lake
holds its UTC day for good: every record type of that venue and day sealed (storage/seal_manifest.py).
Within that, the oldest go first (by day, then hour): a day past `keep_days`, then, while the captures
take more than `max_bytes`, the oldest sealed ones. An unsealed day is kept even over the limit, and
the plan says so (`over_by`), because losing unsealed data to save disk is the worse failure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ingest.capture_log import SUFFIX
from storage.seal_manifest import venue_days

GIB = 1 << 30


@dataclass(frozen=True)
class CaptureFile:
    path: Path
    venue: str
    day: dt.date
    size: int


@dataclass
class PrunePlan:
    remove: list[tuple[CaptureFile, str]] = field(default_factory=list)
    """Each file to remove with why: "older than N days" or "over M GiB"."""
    kept_unsealed: int = 0
    """Files kept because their day is not sealed yet (whatever the rules say)."""
    total_bytes: int = 0
    over_by: int = 0
    """Bytes still over max_bytes after the plan: what unsealed days hold."""


def capture_files(root: Path) -> list[CaptureFile]:
    """Every capture `<root>/<venue>/<YYYY-MM-DD>/*.tlcap.zst`, oldest first (day, then name: the hour)."""
    files = []
    for path in root.glob(f"*/*/*{SUFFIX}"):
        try:
            day = dt.date.fromisoformat(path.parent.name)
        except ValueError:
            continue  # not a day folder: not ours to remove
        files.append(CaptureFile(path, path.parent.parent.name, day, path.stat().st_size))
    return sorted(files, key=lambda f: (f.day, f.path.name, f.venue))


def plan_prune(files: list[CaptureFile], sealed: set[tuple[str, dt.date]], today: dt.date,
               keep_days: int | None, max_bytes: int | None) -> PrunePlan:
    """Which files go, by the rules of the module docstring (pure: the caller lists and removes)."""
    plan = PrunePlan(total_bytes=sum(f.size for f in files))
    left = plan.total_bytes
    oldest_kept = today - dt.timedelta(days=keep_days) if keep_days is not None else None
    for file in files:
        if (file.venue, file.day) not in sealed:
            plan.kept_unsealed += 1
            continue
        if oldest_kept is not None and file.day < oldest_kept:
            plan.remove.append((file, f"older than {keep_days} days"))
        elif max_bytes is not None and left > max_bytes:
            plan.remove.append((file, f"over {max_bytes / GIB:g} GiB"))
        else:
            continue
        left -= file.size
    plan.over_by = max(0, left - max_bytes) if max_bytes is not None else 0
    return plan


def prune_captures(root: Path, lake_root: str, today: dt.date, keep_days: int | None, max_bytes: int | None,
                   dry_run: bool = False) -> PrunePlan:
    """Plan and (unless `dry_run`) remove, then drop day folders left empty."""
    sealed = {key for key, done in venue_days(lake_root).items() if done}
    plan = plan_prune(capture_files(root), sealed, today, keep_days, max_bytes)
    if not dry_run:
        for file, _ in plan.remove:
            file.path.unlink(missing_ok=True)
            if not any(file.path.parent.iterdir()):
                file.path.parent.rmdir()
    return plan
