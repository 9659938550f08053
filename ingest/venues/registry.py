"""Venue id -> connection class; the ingest side of adding a venue."""

from __future__ import annotations

from ingest.venues.binance_usdm import BinanceUsdmConnection
from ingest.venues.interface import VenueConnection

CONNECTIONS: dict[str, type[VenueConnection]] = {"binance-usdm": BinanceUsdmConnection}
