"""`ticklake schedule`: what Dagster's daemon would run on time, without a daemon or a UI to keep open.

Every `every_s` (the config's [schedule]) one round, each step one log line:

* pipelines: the daily job (seal, bars, funding, analytics: pipelines/runner.run_days) for each finished
  UTC day of the lake not sealed yet for every venue, once `seal_after_s` past its midnight;
* retention: Timescale chunks older than TICKLAKE_RETENTION_DAYS, only for days the lake holds
  (storage/retention.py);
* capture pruning: the [capture] rules (ticklake/capture_retention.py).

A step that fails is logged as one line and tried again next round; the others still run. The supervisor
runs this as one of its children; alone it is `ticklake schedule --config FILE` (`--once` for one round).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from storage.seal_manifest import venue_days
from ticklake.capture_retention import GIB, prune_captures
from ticklake.feed_config import FeedConfig
from ticklake.settings import Settings

log = logging.getLogger(__name__)


def days_to_seal(lake_root: str, now: dt.datetime, seal_after_s: float,
                 first_day: dt.date | None = None) -> list[dt.date]:
    """Finished UTC days with a venue the lake has not sealed, `seal_after_s` past their midnight."""
    waited = (now - dt.timedelta(seconds=seal_after_s)).date()
    days = {day for (_, day), sealed in venue_days(lake_root).items() if not sealed and day < waited}
    return sorted(day for day in days if first_day is None or day >= first_day)


def run_round(config: FeedConfig, settings: Settings, pg_dsn: str, pg_owner_dsn: str) -> None:
    schedule, now = config.schedule, dt.datetime.now(dt.UTC)
    steps = {"pipelines": schedule.pipelines, "retention": schedule.retention,
             "capture prune": schedule.prune_captures and (config.capture.keep_days is not None
                                                           or config.capture.max_gib is not None)}
    for step, wanted in steps.items():
        if not wanted:
            continue
        try:
            if step == "pipelines":
                _pipelines(settings, pg_dsn, now, schedule.seal_after_s)
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


def _pipelines(settings: Settings, pg_dsn: str, now: dt.datetime, seal_after_s: float) -> None:
    from pipelines.runner import run_days
    from ticklake import logs

    days = days_to_seal(settings.lake_root, now, seal_after_s, settings.pipelines_start)
    if not days:
        return
    with logs.stderr_to(settings.home / "logs" / "pipelines.log"):
        results = list(run_days(days, ticklake_home=settings.home, lake_root=settings.lake_root, pg_dsn=pg_dsn,
                                first_day=settings.pipelines_start))
    for result in results:
        log.info("pipelines %s: %s (run %s)", result.day, "ok" if result.success else "FAILED", result.run_id)


def _retention(settings: Settings, pg_owner_dsn: str) -> None:
    from storage.pg import connect
    from storage.retention import apply_retention

    with connect(pg_owner_dsn) as conn:
        results = apply_retention(conn, settings.lake_root, settings.retention_days, time.time_ns())
    dropped = sum(count for _, count in results)
    if dropped:
        log.info("retention: dropped %d chunks older than %d days", dropped, settings.retention_days)


def run_schedule(config: FeedConfig, settings: Settings, pg_dsn: str, pg_owner_dsn: str, stop: threading.Event,
                 once: bool = False) -> None:
    while not stop.is_set():
        run_round(config, settings, pg_dsn, pg_owner_dsn)
        if once:
            return
        stop.wait(config.schedule.every_s)
