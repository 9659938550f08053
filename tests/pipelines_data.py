"""A small lake built from the bundled real captures by the real code path, for the pipelines tests.

Each capture group goes through `ingest.offline.normalize_frames` and `storage.lake_write.write_records`
(what `ticklake normalize VENUE CAPTURES --out DIR` does), one part file per group, so the lake holds
every record type on several UTC days:

| part | venue | days (UTC) | what |
|---|---|---|---|
| `binance-cryptofeed` | binance-usdm | 2021-07-21/22 | 4 symbols, 30 s: instruments, trades, books, bbo |
| `binance-hftbacktest` | binance-usdm | 2024-08-08/09 | BTCUSDT, the day's last 6 min: 21,313 trades, books, bbo |
| `binance-fixtures` | binance-usdm | 2019..2021 | markPrice (funding, mark/index), forceOrder |
| `okx-cryptofeed` | okx | 2022-05-13 | 11 s of trades, books, bbo of an inverse future, swap and spot |
| `okx-fixtures` | okx | 2021..2026 | funding-rate, mark-price, index-tickers, open-interest |
| `bybit` | bybit | 2023-04-05, 2024-12-01, 2025-02-25 | XRPUSDT ob500 books, trades, tickers, allLiquidation |
| `hyperliquid` | hyperliquid | 2023-05..07, 2025-01-26 | BTC books+trades, meta, BTC fundingHistory, activeAssetCtx |

A test module gets its own copy with a module-scoped fixture:

    @pytest.fixture(scope="module")
    def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return private_lake(tmp_path_factory)

The lake is built once per session and copied for each module, so a module may change its copy.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from storage.lake_write import write_records
from tests import binance_data, bybit_data, hyperliquid_data, okx_data

OKX_FIXTURES = [okx_data.DATA / name for name in (
    "funding-rate.tardis-fixture.jsonl", "mark-price.tardis-fixture.jsonl", "index-tickers.tardis-fixture.jsonl",
    "open-interest.tardis-fixture.jsonl")]

PARTS: dict[str, tuple[str, list[Path]]] = {
    "binance-cryptofeed": ("binance-usdm", binance_data.CRYPTOFEED_RUN),
    "binance-hftbacktest": ("binance-usdm", [binance_data.DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot"
                                                                 ".btcusdt_20240808.hftbacktest.gz"]),
    "binance-fixtures": ("binance-usdm", [binance_data.DATA / "markPriceUpdate.tardis-fixture.jsonl",
                                          binance_data.DATA / "forceOrder.tardis-fixture.jsonl"]),
    "okx-cryptofeed": ("okx", okx_data.CRYPTOFEED_RUN),
    "okx-fixtures": ("okx", OKX_FIXTURES),
    "bybit": ("bybit", [bybit_data.OB500, bybit_data.TRADES, bybit_data.TICKERS, bybit_data.ALL_LIQUIDATION]),
    "hyperliquid": ("hyperliquid", [hyperliquid_data.CAPTURE, hyperliquid_data.META_FUNDING_CASSETTE,
                                    hyperliquid_data.DATA / "activeAssetCtx.tardis-fixture.jsonl"]),
}
"""Part name -> (venue, capture files of one run)."""


def build_lake(root: Path) -> Path:
    """Normalize every capture group and write it into the lake layout under `root`."""
    for part, (venue, paths) in PARTS.items():
        out, _ = normalize_frames(venue, read_frames(paths))
        write_records(str(root), out.records, part)
    return root


@cache
def _pristine(base: Path) -> Path:
    """The session's lake, built once (base is the session's temp root, so the cache is per session)."""
    return build_lake(base / "pipelines-lake-pristine")


def private_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the real-capture lake (for a module-scoped fixture)."""
    root = tmp_path_factory.mktemp("lake")
    shutil.copytree(_pristine(tmp_path_factory.getbasetemp()), root, dirs_exist_ok=True)
    return root


def read_lake(root: Path, record_type: str) -> pl.DataFrame:
    """One record type as the pipelines read it (hive columns `venue` and `date` recovered)."""
    return pl.read_parquet(f"{root}/{record_type}/**/*.parquet", hive_partitioning=True)
