"""Venue id -> normalizer class. Adding a venue means adding its module and one entry here."""

from __future__ import annotations

from collections.abc import Callable

from normalize.venues.binance_usdm import BinanceUsdm
from normalize.venues.bybit import Bybit
from normalize.venues.hyperliquid import Hyperliquid
from normalize.venues.interface import VenueNormalizer
from normalize.venues.okx import Okx

NORMALIZERS: dict[str, Callable[[], VenueNormalizer]] = {
    "binance-usdm": BinanceUsdm,
    "bybit": Bybit,
    "hyperliquid": Hyperliquid,
    "okx": Okx,
}
