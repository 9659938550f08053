"""Venue identifiers used in records, subjects, lake paths and the CLI."""

from typing import Final

BINANCE_USDM: Final = "binance-usdm"
BYBIT: Final = "bybit"
OKX: Final = "okx"
HYPERLIQUID: Final = "hyperliquid"

VENUE_IDS: Final[tuple[str, ...]] = (BINANCE_USDM, BYBIT, OKX, HYPERLIQUID)
