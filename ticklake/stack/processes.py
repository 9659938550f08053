"""Process liveness for the servers we start."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """True for a running process. A zombie counts as dead: in containers whose PID 1 does not
    reap orphans, a killed daemon lingers as a zombie that `kill -0` still finds."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return not stat.read_text().rsplit(") ", 1)[-1].startswith("Z")
    except FileNotFoundError:
        return False
