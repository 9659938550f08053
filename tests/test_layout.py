"""The package dependency direction: normalize <- ingest, storage <- pipelines.

`ticklake` (settings, stack, CLI) is the application shell: data packages may import only
its leaf module `ticklake.settings`, which itself imports nothing of the project, and
`ticklake.bus_auth` (how every client connects to the bus), which imports only the settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"normalize", "ingest", "storage", "pipelines", "ticklake"}
ALLOWED = {
    "normalize": set(),
    "ingest": {"normalize", "ticklake.settings", "ticklake.bus_auth"},
    "storage": {"normalize", "ticklake.settings", "ticklake.bus_auth"},
    "pipelines": {"normalize", "storage", "ticklake.settings", "ticklake.bus_auth"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PROJECT}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependency_direction(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == package:
                continue
            allowed = ALLOWED[package]
            assert top in allowed or name in allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_settings_is_a_leaf() -> None:
    assert _imports(ROOT / "ticklake" / "settings.py") == set()


def test_bus_auth_needs_only_the_settings() -> None:
    assert _imports(ROOT / "ticklake" / "bus_auth.py") == {"ticklake.settings"}
