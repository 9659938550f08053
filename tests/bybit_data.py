"""The bundled Bybit v5 frames in tests/data/bybit, named once for every test that replays them:
the ob500 file is a real Bybit order-book history capture, the others tardis-node test fixtures
and one Bybit docs example."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).with_name("data") / "bybit"
OB500 = DATA / "orderbook.500.XRPUSDT_2024-12-01.jsonl"
"""REAL: Bybit's own orderbook history for XRPUSDT (linear), 1 snapshot + 49 deltas, no receive times."""
TRADES = DATA / "publicTrade.tardis-fixture.jsonl"
TICKERS = DATA / "tickers.tardis-fixture.jsonl"
TICKERS_DOC = DATA / "tickers.doc-example.jsonl"
ALL_LIQUIDATION = DATA / "allLiquidation.tardis-fixture.jsonl"
LIQUIDATION = DATA / "liquidation.tardis-fixture.jsonl"
ORDERBOOK = DATA / "orderbook.tardis-fixture.jsonl"
LINEAR_FIXTURES = [TRADES, TICKERS, ALL_LIQUIDATION]
"""Fixture frames replayed after the ob500 capture in the live tests (linear symbols subscribed)."""
