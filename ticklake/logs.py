"""Structured logs for the long-running commands (ingest, sinks, run), and Dagster's kept in a file.

Every module logs through the standard `logging` module; structlog renders those records as one
line each, `key=value` for a terminal or JSON for a log collector (TICKLAKE_LOG_JSON=1), with a
UTC timestamp, level and logger name, so existing log calls need no change.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import structlog


def configure(level: int = logging.INFO, json: bool | None = None) -> None:
    if json is None:
        json = os.environ.get("TICKLAKE_LOG_JSON", "") not in ("", "0")
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[structlog.types.Processor] = [
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextlib.contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """Python's stderr written to `log` (replaced) for the block: where Dagster writes its warnings and
    its console log of every run step, hundreds of lines a run, kept off the terminal. Each command
    writes its own log; Dagster's UI keeps every run's events."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out, contextlib.redirect_stderr(out):
        yield
