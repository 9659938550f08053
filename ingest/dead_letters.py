"""Frames the normalizer could not read, kept with the reason and the exact bytes.

One JSON line each (`venue`, `ts_recv`, `reason`, `raw_base64`), appended to a file an operator
can grep and a fixed normalizer can replay; never dropped, never fatal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

from normalize.emitted import DeadLetter


def append_dead_letters(path: Path, letters: Iterable[DeadLetter]) -> int:
    lines = [json.dumps({"venue": d.venue, "ts_recv": d.ts_recv, "reason": d.reason,
                         "raw_base64": base64.b64encode(d.raw).decode()}) + "\n" for d in letters]
    if lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.writelines(lines)
    return len(lines)
