"""Polling a condition the test cannot be told of (another process's progress, rows in a database)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.3) -> None:
    """Until `check()` holds; fails the test naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")
