"""Venue id -> normalizer class. Adding a venue means adding its module and one entry here."""

from __future__ import annotations

from normalize.venues.binance_usdm import BinanceUsdm

NORMALIZERS: dict[str, type[BinanceUsdm]] = {"binance-usdm": BinanceUsdm}
