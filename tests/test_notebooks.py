"""The analyst notebooks (notebooks/*.ipynb, every one the glob finds) run top to bottom against what
`ticklake demo` landed (the session's `demo` fixture, tests/demo_data.py: the real captures of every
venue replayed through the handlers into TimescaleDB and the lake, the pipelines run for their days),
and are committed without outputs.

Each notebook runs as an analyst's would: nbclient starts a python3 kernel (jupyter_client runs it with
this interpreter, so with this virtualenv's packages) in notebooks/, and the notebook finds the data
through ticklake's settings alone: TICKLAKE_LAKE and TICKLAKE_PG_DSN name the demo's lake and database,
TICKLAKE_HOME and TICKLAKE_CONFIG an empty temp dir, so nothing of a local stack or ticklake.toml leaks
in. A cell error fails the test with its traceback. Matplotlib draws with the inline backend, which
renders off-screen (Agg) into the notebook's outputs, where the plots are checked (with MPLBACKEND=Agg
itself a notebook shows no figure at all).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.demo_data import DemoRun

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
PLOT_TAG = "plot"
"""Cells tagged so must draw at least one figure."""
CELL_TIMEOUT_S = 120
EXPECTED_OUTPUT = {
    "01_quickstart.ipynb": [
        # the busiest instrument-day, every recorded trade of it once
        r"binance-usdm BTC-USDT-PERP 2024-08-08: 21313 trades",
    ],
    "02_funding_across_venues.ipynb": [
        # what the pipelines stored equals their function over every record, where both have a settlement
        r"(?m)[1-9]\d* in both; largest rate difference: 0\.0$",
    ],
    "03_book_and_liquidity.ipynb": [
        # the book rebuilt from its snapshot and deltas has the best prices of the venue's own BBO then
        r"(?m)the BBO rows say: bid (\d+\.\d+) x ask (\d+\.\d+); the book: bid \1 x ask \2$",
        r"(?m)^2 liquidations$",
    ],
    "04_live_timescale.ipynb": [
        r"ticklake_reader\s+┆\s+on",  # logged in as the read-only role
    ],
}
"""Patterns a notebook's printed output must match (a notebook not listed is run and checked for plots)."""


def _text(cell: nbformat.NotebookNode) -> str:
    """A code cell's printed and displayed text."""
    parts = [output.get("text", "") for output in cell.outputs if output.output_type == "stream"]
    parts += [output.data.get("text/plain", "") for output in cell.outputs
              if output.output_type in ("execute_result", "display_data")]
    return "\n".join(parts)


def _images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.outputs)


@pytest.fixture(scope="module")
def kernel_env(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert demo.returncode == 0, "ticklake demo failed (tests/test_demo.py says why)"
    home = tmp_path_factory.mktemp("notebooks-home")
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKLAKE_")}
    return {**env, "TICKLAKE_HOME": str(home), "TICKLAKE_CONFIG": str(home / "ticklake.toml"),
            "TICKLAKE_LAKE": str(demo.lake), "TICKLAKE_PG_DSN": demo.dsn,
            "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def test_the_analyst_notebooks_are_there() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert set(EXPECTED_OUTPUT) <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, path.name
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {cell.id} has outputs"
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs_on_the_demo_data(path: Path, kernel_env: dict[str, str]) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute(env=kernel_env)  # raises CellExecutionError, with the traceback, on any cell error
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "every code cell ran"
    plots = [cell for cell in code if PLOT_TAG in cell.metadata.get("tags", [])]
    assert sum(_images(cell) for cell in code) >= 1, f"{path.name} drew no plot"
    for cell in plots:
        assert _images(cell) >= 1, f"{path.name} cell {cell.id} is tagged '{PLOT_TAG}' but drew nothing"
    printed = "\n".join(_text(cell) for cell in code)
    assert "lake: " + str(kernel_env["TICKLAKE_LAKE"]) in printed, "the notebook found the lake by the settings"
    for pattern in EXPECTED_OUTPUT.get(path.name, []):
        assert re.search(pattern, printed), f"{path.name}: nothing matches {pattern!r} in:\n{printed}"
    assert not re.search(r"Traceback|Warning", printed), f"{path.name} printed a warning:\n{printed}"
