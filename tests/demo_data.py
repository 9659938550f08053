"""`ticklake demo` run once per test session, as `make demo` runs it, for the tests of its report and
for the tests that read what it landed (the notebooks).

The demo is a subprocess with TICKLAKE_HOME in a temp dir, TICKLAKE_PG_DSN naming a database of its own
in the session's cluster, and TICKLAKE_NATS_URL a nats-server of its own: the demo deletes and recreates
the TICKS stream and its sinks read all of it, so it shares its bus with no other test. It starts
nothing else. Built by the `demo` fixture of tests/conftest.py; readers must not change what it left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pg_databases import private_database
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

DATABASE = "ticklake_demo_test"
TICKLAKE = str(Path(sys.executable).with_name("ticklake"))


def stores_env(home: Path, dsn: str, nats_url: str) -> dict[str, str]:
    """This environment with the TICKLAKE_* settings of one home, database and bus (lake in the home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    return env | {"TICKLAKE_HOME": str(home), "TICKLAKE_PG_DSN": dsn, "TICKLAKE_NATS_URL": nats_url,
                  "TICKLAKE_LAKE": str(home / "lake")}


@dataclass(frozen=True)
class DemoRun:
    home: Path
    lake: Path
    dsn: str
    """As the superuser; swap the user for `ticklake_reader` to read as the dashboards do."""
    nats_url: str
    returncode: int
    stdout: str
    report: dict[str, Any]
    """`$TICKLAKE_HOME/demo/report.json`."""

    def env(self) -> dict[str, str]:
        """An environment in which `ticklake` commands and notebooks see the demo's stores."""
        return stores_env(self.home, self.dsn, self.nats_url)


@contextmanager
def run_demo(postgres: EmbeddedPostgres, root: Path) -> Iterator[DemoRun]:
    """Run `ticklake demo` with its home under `root` and yield what it did and left."""
    bus = EmbeddedNats(root / "bus", free_port())
    bus.start()
    try:
        with private_database(postgres, DATABASE) as dsn:
            home = root / "home"
            result = subprocess.run([TICKLAKE, "demo"], env=stores_env(home, dsn, bus.url), capture_output=True,
                                    text=True, timeout=600, check=False)
            report_path = home / "demo" / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else {}
            yield DemoRun(home, home / "lake", dsn, bus.url, result.returncode, result.stdout + result.stderr, report)
    finally:
        bus.stop()
