"""`ticklake schedule`: what Dagster's daemon would run on time, without a daemon or a UI to keep open.

Every `every_s` (the config's [schedule]) one round, each step one log line:

* pipelines: the daily job (seal, bars, funding, analytics: `ticklake pipelines run`) for each finished
  UTC day of the lake whose job has not succeeded yet, once `seal_after_s` past its midnight;
* retention: Timescale chunks older than TICKLAKE_RETENTION_DAYS, only for days the lake holds
  (storage/retention.py);
* capture pruning: the [capture] rules (ticklake/capture_retention.py).

A step that fails is logged as one line and tried again next round; the others still run. The supervisor
runs this as one of its children; alone it is `ticklake schedule --config FILE` (`--once` for one round).
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from storage.seal_manifest import venue_days
from ticklake.capture_retention import GIB, prune_captures
from ticklake.feed_config import FeedConfig
from ticklake.settings import Settings

log = logging.getLogger(__name__)


def days_to_run(lake_root: str, done: Path, now: dt.datetime, seal_after_s: float,
                first_day: dt.date | None = None) -> list[dt.date]:
    """Finished UTC days with data in the lake, `seal_after_s` past their midnight, whose daily job has not
    succeeded yet (no marker in `done`) or that a venue has not sealed (the seal leaves out files their sink
    has not committed yet, so a job can succeed with part of a day unsealed: it runs again)."""
    waited = (now - dt.timedelta(seconds=seal_after_s)).date()
    days = {day for (_, day), sealed in venue_days(lake_root).items()
            if day < waited and not (sealed and (done / day.isoformat()).exists())}
    return sorted(day for day in days if first_day is None or day >= first_day)


def run_round(config: FeedConfig, settings: Settings, pg_owner_dsn: str) -> None:
    schedule, now = config.schedule, dt.datetime.now(dt.UTC)
    steps = {"pipelines": schedule.pipelines, "retention": schedule.retention,
             "capture prune": schedule.prune_captures and (config.capture.keep_days is not None
                                                           or config.capture.max_gib is not None)}
    for step, wanted in steps.items():
        if not wanted:
            continue
        try:
            if step == "pipelines":
                _pipelines(settings, now, schedule.seal_after_s)
            elif step == "retention":
                _retention(settings, pg_owner_dsn)
            else:
                capture = config.capture
                plan = prune_captures(settings.home / "capture", settings.lake_root, now.date(), capture.keep_days,
                                      int(capture.max_gib * GIB) if capture.max_gib is not None else None)
                log.info("capture prune: removed %d files, %d bytes; %d kept unsealed", len(plan.remove),
                         sum(f.size for f, _ in plan.remove), plan.kept_unsealed)
        except Exception as exc:  # one line, and the next round tries again (the module docstring)
            log.error("schedule %s failed: %s: %s", step, type(exc).__name__, " ".join(str(exc).split())[:300])


def _pipelines(settings: Settings, now: dt.datetime, seal_after_s: float) -> None:
    """Each day's job as `ticklake pipelines run` in a process of its own: Dagster's memory goes with it,
    and a SIGTERM to the schedule is not taken by Dagster's own handlers (which turn it into an
    interrupted run and keep the schedule going). A day is done once its run succeeds; a failed one is
    run again next round."""
    done = settings.home / "schedule" / "done"
    done.mkdir(parents=True, exist_ok=True)
    for day in days_to_run(settings.lake_root, done, now, seal_after_s, settings.pipelines_start):
        result = subprocess.run([sys.executable, "-m", "ticklake", "pipelines", "run", "--from", day.isoformat()],
                                capture_output=True, text=True, check=False)
        if result.returncode == 0:
            (done / day.isoformat()).touch()
            log.info("pipelines %s: ok", day)
        else:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            log.error("pipelines %s: FAILED (exit %d): %s; Dagster's log: %s", day, result.returncode, last[0][:300],
                      settings.home / "logs" / "pipelines.log")


def _retention(settings: Settings, pg_owner_dsn: str) -> None:
    from storage.pg import connect
    from storage.retention import apply_retention

    with connect(pg_owner_dsn) as conn:
        results = apply_retention(conn, settings.lake_root, settings.retention_days, time.time_ns())
    dropped = sum(count for _, count in results)
    if dropped:
        log.info("retention: dropped %d chunks older than %d days", dropped, settings.retention_days)


def run_schedule(config: FeedConfig, settings: Settings, pg_owner_dsn: str, stop: threading.Event,
                 once: bool = False) -> None:
    """A round every `every_s`, the first one `every_s` after starting (`once`: one round now): a service
    that just started gives the sinks that long to flush what the last run left, before sealing."""
    if once:
        run_round(config, settings, pg_owner_dsn)
        return
    while not stop.wait(config.schedule.every_s):
        run_round(config, settings, pg_owner_dsn)
