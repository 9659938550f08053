"""Every code block of the README runs, as a user who ran `make demo` would run it, or says why not.

A fenced block is either run here or marked with `<!-- not run: why -->` on the line right above its
fence (a live venue, a browser, the machine's own setup). The blocks run against the stores the
session's `demo` fixture left (tests/demo_data.py: `ticklake demo` run once per session), in a working
directory of their own that looks like a clone after `make demo`: `.ticklake/lake` and
`.ticklake/capture` are the demo's lake and raw captures (symlinks), the other settings keep their
defaults except the servers, which TICKLAKE_PG_DSN and TICKLAKE_NATS_URL name (the demo ran against
the test session's own). The virtualenv's bin comes first on PATH, as `. .venv/bin/activate` puts it.

* `sh` blocks run in bash with `-euo pipefail`: every command must exit 0.
* `python` blocks run in a fresh interpreter and must print something.
* `sql` blocks run as `ticklake_reader` (the dashboards' read-only role) and must return rows.

Cost: the blocks run in about 15 s on top of the shared demo (no second demo). They only read the
demo's stores, except `ticklake backfill`, which finds nothing missing and adds only its audit row
(`ticklake_backfills`, `<lake>/_manifests/backfills/`), which no other test reads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.demo_data import DemoRun

pytestmark = pytest.mark.xdist_group("demo")
"""Every module reading the demo's stores runs on one xdist worker, so the demo runs once."""

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.*\S) -->$")
RUNNABLE = ("sh", "python", "sql")
START_HERE = "Start here"
TIMEOUT_S = 180


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the opening fence."""
    lang: str
    code: str
    section: str
    """The `## ` heading it is under."""
    subsection: str
    """The `### ` heading it is under, if any."""
    not_run: str | None
    """Why it is not run, from the marker above it; None when it runs."""

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang}, {self.subsection or self.section})"


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, section, subsection, i = [], "", "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section, subsection = line[3:].strip(), ""
        elif line.startswith("### "):
            subsection = line[4:].strip()
        opening = FENCE.match(line)
        if opening:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            marker = NOT_RUN.match(lines[i - 1].strip()) if i else None
            blocks.append(Block(i + 1, opening.group(1), "\n".join(lines[i + 1:end]) + "\n", section, subsection,
                                marker.group(1) if marker else None))
            i = end
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_every_block_runs_or_says_why() -> None:
    assert BLOCKS
    for block in BLOCKS:
        assert block.not_run is not None or block.lang in RUNNABLE, f"{block}: unmarked and not {RUNNABLE}"
    markers = [n for n, line in enumerate(README.read_text().splitlines(), 1) if "<!-- not run" in line]
    marked = {b.line - 1 for b in BLOCKS if b.not_run is not None}
    assert set(markers) == marked, "a `not run` marker must sit on the line right above a fence"


def test_each_start_here_section_has_something_that_runs() -> None:
    sections = {b.subsection for b in BLOCKS if b.section == START_HERE}
    assert len(sections) == 4, sections
    for name in sections:
        runs = [b for b in BLOCKS if b.subsection == name and b.not_run is None]
        assert runs, f"nothing in '{name}' is run by this test"


def _workdir(demo: DemoRun, root: Path) -> tuple[Path, dict[str, str]]:
    """A directory that looks like the clone after `make demo`, and the environment its user has."""
    home = root / ".ticklake"
    home.mkdir(parents=True)
    (home / "lake").symlink_to(demo.lake)
    (home / "capture").symlink_to(demo.home / "capture")
    env = {k: v for k, v in demo.env().items() if k not in ("TICKLAKE_HOME", "TICKLAKE_LAKE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return root, env


def _reader_dsn(dsn: str) -> str:
    conninfo = psycopg.conninfo.conninfo_to_dict(dsn)
    conninfo["user"] = "ticklake_reader"
    conninfo.pop("password", None)
    return psycopg.conninfo.make_conninfo(**conninfo)


def _run(block: Block, cwd: Path, env: dict[str, str], reader_dsn: str) -> None:
    if block.lang == "sql":
        with psycopg.connect(reader_dsn) as conn:
            rows = conn.execute(block.code).fetchall()
        assert rows, f"{block}: no rows"
        return
    shell = ["bash", "-euo", "pipefail", "-c"] if block.lang == "sh" else [sys.executable, "-c"]
    command = [*shell, block.code]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{block} exited {result.returncode}:\n{output}"
    if block.lang == "python":
        assert result.stdout.strip(), f"{block} printed nothing"


def test_every_unmarked_block_runs_against_the_demo(demo: DemoRun, tmp_path: Path) -> None:
    assert demo.returncode == 0, demo.stdout[-3000:]
    cwd, env = _workdir(demo, tmp_path / "clone")
    reader_dsn = _reader_dsn(demo.dsn)
    ran = []
    for block in BLOCKS:
        if block.not_run is None:
            _run(block, cwd, env, reader_dsn)
            ran.append(block)
    assert ran == [b for b in BLOCKS if b.not_run is None]
    assert {b.lang for b in ran} == set(RUNNABLE)


@pytest.mark.parametrize("text, expected", [
    ("## A\n\n```sh\necho\n```\n", [("sh", None)]),
    ("## A\n<!-- not run: live venue -->\n```sh\nticklake probe okx\n```\n", [("sh", "live venue")]),
    ("## A\n<!-- not run: x -->\n\n```sh\necho\n```\n", [("sh", None)]),
])
def test_markers_count_only_right_above_a_fence(text: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(b.lang, b.not_run) for b in readme_blocks(text)] == expected
