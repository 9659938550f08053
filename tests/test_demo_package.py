"""The demo's recordings ship in the wheel: built from this source tree (offline, no build isolation),
installed into a fresh virtualenv outside the repository, that installed ticklake finds every session's
files in its own package and reads them with the capture readers. The wheel's dependencies are not
installed again: the new environment reaches this one's site-packages through a .pth line, which puts
them after its own, so `ticklake` itself can only come from the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from ticklake import __version__
from ticklake.demo import SESSIONS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "normalize", "ingest", "storage", "pipelines", "ticklake")
"""What the wheel is built from (copied, so that the build leaves nothing in the checkout)."""
WHEEL_LIMIT_BYTES = 9_000_000
"""Ten venues' recordings (6.7 MB compressed in the wheel at ten venues); a bound, so a capture added by
mistake shows."""

CHECK = """
import sys
from pathlib import Path
import ticklake
from ingest.capture_formats import read_frames
from ticklake.demo import SESSIONS, session_files

assert Path(ticklake.__file__).is_relative_to(Path(sys.prefix)), ticklake.__file__
for session in SESSIONS:
    files = session_files(session)
    frames = sum(1 for _ in read_frames(files))
    assert frames > 0, session.label
    print(session.venue, len(files), frames)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.so")}
                                             if (ROOT / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    str(source), "-w", str(out)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("ticklake-*.whl")
    return built


def test_the_wheel_carries_the_demo_recordings(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for session in SESSIONS:
        for path in session.captures:
            assert f"ticklake/recordings/{path}" in names, path
    assert not any("ethusdt" in name for name in names)  # the tests' and benchmarks' alone
    assert wheel.stat().st_size < WHEEL_LIMIT_BYTES


def test_an_installed_ticklake_reads_its_recordings_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    checked = subprocess.run([python, "-c", CHECK], cwd=outside, capture_output=True, text=True, timeout=300,
                             env={"PATH": "/usr/bin:/bin"})
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert [line.split()[0] for line in checked.stdout.splitlines()] == [s.venue for s in SESSIONS]
    version = subprocess.run([env_dir / "bin" / "ticklake", "--version"], cwd=outside, capture_output=True,
                             text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert version.stdout == f"ticklake {__version__}\n"
