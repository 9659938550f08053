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

Every notebook is a template: its first code cell holds its parameters, tagged `parameters` (papermill's
convention). Each runs twice: with those defaults, and with `PARAMETERS` injected as papermill injects
them (papermill's own `parameterize_notebook`: a cell tagged `injected-parameters` right after the
parameters cell, overriding them). What it prints must then name the injected venue, instrument or range
and hold the values `expected` computes here, independently of the notebook's code, from the demo's lake
files and database.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import os
import re
from pathlib import Path

import nbformat
import polars as pl
import psycopg
import pytest
from nbclient import NotebookClient
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from tests.demo_data import DemoRun

pytestmark = pytest.mark.xdist_group("demo")
"""Every module reading the demo's stores runs on one xdist worker, so the demo runs once."""

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
PLOT_TAG = "plot"
"""Cells tagged so must draw at least one figure."""
PARAMETERS_TAG, INJECTED_TAG = "parameters", "injected-parameters"
CELL_TIMEOUT_S = 120
RUNS = ("defaults", "injected")
PARAMETERS: dict[str, dict[str, object]] = {
    "01_quickstart.ipynb": {"venue": "hyperliquid", "instrument": "BTC-USDC-PERP", "start": "2025-01-26T19:00:00Z",
                            "end": "2025-01-26T20:00:00Z", "bar_interval": "10s"},
    "02_funding_across_venues.ipynb": {"venues": ["bybit", "hyperliquid"], "start": "2023-04-01", "end": "2023-08-01"},
    "03_book_and_liquidity.ipynb": {"venue": "okx", "instrument": "BTC-USDT", "start": "2022-05-13",
                                    "end": "2022-05-14", "moment": "2022-05-13T16:27:10Z", "depth": 10},
    "04_live_timescale.ipynb": {"venue": "okx", "bucket_s": 0.05},
    "05_funding_carry_and_basis.ipynb": {"venues": ["binance-usdm", "okx"], "start": "2020-01-01",
                                         "end": "2022-06-01", "quote_every": "2s"},
    "06_microstructure.ipynb": {"start": "2024-08-08T23:56:00Z", "end": "2024-08-08T23:58:00Z", "bucket": "5s",
                                "book_every": "30s", "max_lag": 20},
}
"""Per notebook, the parameters the second run injects: other data of the demo than the defaults show."""
DERIVED_FLAG = 64
SECONDS_PER_YEAR = 365 * 24 * 3600


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


# What the notebooks must print, computed from the demo's lake files (each record once: the sinks write
# exactly once) and database with plain Python and Polars filters, not with the query API.

def _lake(demo: DemoRun, record_type: str, venue: str, instrument: str | None, start: str, end: str) -> pl.DataFrame:
    """Rows of the lake with ts_event in [start, end), sorted by event and receive time."""
    bounds = [dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end)]
    bounds = [b if b.tzinfo else b.replace(tzinfo=dt.UTC) for b in bounds]
    frame = pl.read_parquet(f"{demo.lake}/{record_type}/venue={venue}/**/*.parquet")
    frame = frame.filter(pl.col("ts_event") >= bounds[0], pl.col("ts_event") < bounds[1])
    if instrument is not None:
        frame = frame.filter(pl.col("instrument") == instrument)
    return frame.sort("ts_event", "ts_recv", maintain_order=True)


def _btc_funding(demo: DemoRun, venue: str, start: str, end: str) -> pl.DataFrame:
    return _lake(demo, "funding", venue, None, start, end).filter(pl.col("instrument").str.starts_with("BTC-"))


def _settlement_lines(demo: DemoRun, venue: str, start: str, end: str, template: str) -> list[str]:
    """Per instrument of `venue` with BTC funding records in the range (each states one settlement here):
    `template` filled with the count and the mean annualized rate in %/year."""
    lines = []
    for (instrument,), rows in sorted(_btc_funding(demo, venue, start, end).group_by("instrument")):
        rates = [rate * SECONDS_PER_YEAR / interval * 100
                 for rate, interval in rows.select("funding_rate", "interval_s").iter_rows()]
        lines.append(template.format(venue=venue, instrument=instrument, n=len(rates), pct=sum(rates) / len(rates),
                                     s="s" if len(rates) != 1 else ""))
    return lines


def _microstructure(demo: DemoRun, start: str, end: str) -> list[str]:
    """06's numbers for binance-usdm BTC-USDT-PERP over [start, end)."""
    trades = _lake(demo, "trade", "binance-usdm", "BTC-USDT-PERP", start, end)
    quotes = [row for row in _lake(demo, "bbo", "binance-usdm", "BTC-USDT-PERP", start, end).iter_rows(named=True)
              if not row["flags"] & DERIVED_FLAG and row["bid_price"] is not None and row["ask_price"] is not None]
    ordered = sorted(trades.iter_rows(named=True), key=lambda r: (r["ts_event"], r["ts_recv"], int(r["trade_id"])))
    signs = [row["side"] for row in ordered if row["side"] != 0]
    mean = sum(signs) / len(signs)
    lag1 = (sum((a - mean) * (b - mean) for a, b in itertools.pairwise(signs))
            / sum((s - mean) ** 2 for s in signs))
    weighted = held = 0.0
    ofi = 0.0
    for before, after in itertools.pairwise(quotes):
        seconds = (after["ts_event"] - before["ts_event"]).total_seconds()
        mid = (before["bid_price"] + before["ask_price"]) / 2
        weighted += (before["ask_price"] - before["bid_price"]) / mid * 1e4 * seconds
        held += seconds
        ofi += ((after["bid_size"] if after["bid_price"] >= before["bid_price"] else 0)
                - (before["bid_size"] if after["bid_price"] <= before["bid_price"] else 0)
                - (after["ask_size"] if after["ask_price"] <= before["ask_price"] else 0)
                + (before["ask_size"] if after["ask_price"] >= before["ask_price"] else 0))
    return [f"binance-usdm BTC-USDT-PERP from {start} to {end}: {trades.height} trades, {len(quotes)} quotes "
            "(the venue's BBO)",
            f"time-weighted mean spread: {weighted / held:.4f} bp",
            f"order-flow imbalance summed over the range: {ofi:.3f} (base units)",
            f"sign autocorrelation at lag 1: {lag1:.4f} (trades)"]


def _basis_line(demo: DemoRun, instrument: str, day: str, expiry: dt.datetime | None) -> str:
    """05's line for the one mark/index record of `instrument` on `day` at Binance."""
    (row,) = _lake(demo, "mark_index", "binance-usdm", instrument, day, day + "T23:59:59Z").iter_rows(named=True)
    bp = (row["mark_price"] - row["index_price"]) / row["index_price"] * 1e4
    line = f"binance-usdm {instrument} {row['ts_event']:%Y-%m-%d %H}:00: mark - index {bp:.2f} bp"
    if expiry is not None:
        days = (expiry - row["ts_event"].replace(minute=0, second=0, microsecond=0)).total_seconds() / 86_400
        line += f", {days:.2f} days to expiry: {bp / 1e4 * 365 / days * 100:.2f} %/year"
    return line


@pytest.fixture(scope="module")
def expected(demo: DemoRun) -> dict[tuple[str, str], list[str]]:
    """(notebook, run) -> patterns its printed output must match (plain text is escaped)."""
    with psycopg.connect(demo.dsn) as conn:
        trades_in_db = dict(conn.execute("SELECT venue, count(*) FROM trade GROUP BY 1").fetchall())
        liquidations = conn.execute("SELECT count(*) FROM liquidation").fetchone()[0]  # type: ignore[index]
    hyperliquid = _lake(demo, "trade", "hyperliquid", "BTC-USDC-PERP", "2025-01-26T19:00:00Z", "2025-01-26T20:00:00Z")
    binance_btc = _lake(demo, "trade", "binance-usdm", "BTC-USDT-PERP", "2024-08-08", "2024-08-09")
    okx_quotes = _lake(demo, "bbo", "okx", "BTC-USDT", "2022-05-13", "2022-05-14").drop_nulls(
        ["bid_price", "ask_price"])
    book_equals_bbo = r"(?m)the BBO rows say: bid (\d+\.\d+) x ask (\d+\.\d+); the book: bid \1 x ask \2$"
    carry_02 = "{venue} {instrument}: {n} settlement{s}, mean {pct:.2f} %/year"
    carry_05 = "{venue} {instrument}: funding carry {pct:.2f} %/year over {n} settlement{s}"
    plain = {
        ("01_quickstart.ipynb", "defaults"): [
            f"binance-usdm BTC-USDT-PERP from 2024-08-08 to 2024-08-09: {binance_btc.height} trades",
            f"{binance_btc['ts_event'].dt.truncate('1m').n_unique()} bars of 1m"],
        ("01_quickstart.ipynb", "injected"): [
            f"hyperliquid BTC-USDC-PERP from 2025-01-26T19:00:00Z to 2025-01-26T20:00:00Z: {hyperliquid.height} trades",
            f"{hyperliquid['ts_event'].dt.truncate('10s').n_unique()} bars of 10s"],
        ("02_funding_across_venues.ipynb", "defaults"): _settlement_lines(
            demo, "hyperliquid", "2019-01-01", "2026-01-01", carry_02),
        ("02_funding_across_venues.ipynb", "injected"): [
            f"BTC, bybit and hyperliquid, 2023-04-01 to 2023-08-01: "
            f"{sum(_btc_funding(demo, venue, '2023-04-01', '2023-08-01').height for venue in ('bybit', 'hyperliquid'))}"
            " funding records",
            *(line for venue in ("bybit", "hyperliquid")
              for line in _settlement_lines(demo, venue, "2023-04-01", "2023-08-01", carry_02))],
        ("03_book_and_liquidity.ipynb", "defaults"): [f"{liquidations} liquidations"],
        ("03_book_and_liquidity.ipynb", "injected"): [
            f"okx BTC-USDT from 2022-05-13 to 2022-05-14: {okx_quotes.height} quotes with both sides",
            "okx BTC-USDT at 2022-05-13 16:27:10.000000: the snapshot of "],
        ("04_live_timescale.ipynb", "defaults"): [
            f"{venue}: rows by receive time from " for venue in sorted(trades_in_db)],
        ("04_live_timescale.ipynb", "injected"): [" in 50 ms buckets, " f"{trades_in_db['okx']} trade rows"],
        ("05_funding_carry_and_basis.ipynb", "defaults"): [
            *_settlement_lines(demo, "hyperliquid", "2019-01-01", "2026-01-01", carry_05),
            _basis_line(demo, "BTC-USDT-PERP", "2020-08-16", None),
            # the pipelines' spot_perp_basis: Binance spot and USD-M BTCUSDT quoted in the same 7 minutes
            "binance-spot BTC-USDT against binance-usdm BTC-USDT-PERP: 7 minutes from 2024-08-08 23:54, basis -"],
        ("05_funding_carry_and_basis.ipynb", "injected"): [
            *_settlement_lines(demo, "binance-usdm", "2020-01-01", "2022-06-01", carry_05),
            _basis_line(demo, "BTC-BUSD-20210129", "2021-01-05", dt.datetime(2021, 1, 29, 8, tzinfo=dt.UTC)),
            "okx BTC-USD-20220527 against BTC-USDT: basis ",
            "no spot and perpetual, nor future and perpetual, quoted in the same minute"],
        ("06_microstructure.ipynb", "defaults"): _microstructure(demo, "2024-08-08T23:54:00Z", "2024-08-09T00:00:00Z"),
        ("06_microstructure.ipynb", "injected"): _microstructure(demo, "2024-08-08T23:56:00Z", "2024-08-08T23:58:00Z"),
    }
    patterns = {key: [re.escape(line) for line in lines] for key, lines in plain.items()}
    # the book rebuilt from its snapshot and deltas has the best prices of the venue's own BBO then
    patterns[("03_book_and_liquidity.ipynb", "defaults")].append(book_equals_bbo)
    patterns[("03_book_and_liquidity.ipynb", "injected")].append(book_equals_bbo)
    # what the pipelines stored equals their function over every record, where both have a settlement
    patterns[("02_funding_across_venues.ipynb", "defaults")].append(
        r"(?m)[1-9]\d* in both; largest rate difference: 0\.0$")
    patterns[("04_live_timescale.ipynb", "defaults")].append(r"ticklake_reader\s+┆\s+on")  # the read-only role
    # the injected venue alone: okx's line, and no other venue's
    patterns[("04_live_timescale.ipynb", "injected")].append(r"(?s)\A(?!.*^(?!okx)[\w-]+: rows by receive time).*"
                                                             r"^okx: rows by receive time")
    return patterns


def test_every_notebook_has_test_parameters() -> None:
    assert {path.name for path in NOTEBOOKS} == set(PARAMETERS)


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
def test_the_first_code_cell_holds_the_parameters(path: Path) -> None:
    """Tagged `parameters`, plain assignments of literals (what papermill overrides), including every name
    the test injects."""
    first = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    assert PARAMETERS_TAG in first.metadata.get("tags", []), path.name
    statements = ast.parse(first.source).body
    assert all(isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
               for s in statements), path.name
    defaults = {s.targets[0].id: ast.literal_eval(s.value) for s in statements}  # type: ignore[attr-defined]
    assert set(PARAMETERS[path.name]) <= set(defaults)
    assert all(defaults[name] != value for name, value in PARAMETERS[path.name].items()), "inject other values"


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs_on_the_demo_data(path: Path, run: str, kernel_env: dict[str, str],
                                        expected: dict[tuple[str, str], list[str]]) -> None:
    notebook = load_notebook_node(str(path))
    if run == "injected":
        notebook = parameterize_notebook(notebook, PARAMETERS[path.name])
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
        at = next(i for i, cell_tags in enumerate(tags) if PARAMETERS_TAG in cell_tags)
        assert INJECTED_TAG in tags[at + 1]  # right after the defaults, which it overrides
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
    for pattern in expected[(path.name, run)]:
        assert re.search(pattern, printed, re.MULTILINE), f"{path.name}: nothing matches {pattern!r} in:\n{printed}"
    assert not re.search(r"Traceback|Warning", printed), f"{path.name} printed a warning:\n{printed}"
