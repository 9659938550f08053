"""Venue id -> connection class; the ingest side of adding a venue."""

from __future__ import annotations

from ingest.venues.binance_usdm import BinanceUsdmConnection
from ingest.venues.bybit import BybitConnection
from ingest.venues.hyperliquid import HyperliquidConnection
from ingest.venues.interface import VenueConnection
from ingest.venues.okx import OkxConnection

CONNECTIONS: dict[str, type[VenueConnection]] = {
    "binance-usdm": BinanceUsdmConnection,
    "bybit": BybitConnection,
    "hyperliquid": HyperliquidConnection,
    "okx": OkxConnection,
}
