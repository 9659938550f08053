"""Venue identifiers used in records, subjects, lake paths and the CLI."""

from typing import Final

BINANCE_USDM: Final = "binance-usdm"
BINANCE_SPOT: Final = "binance-spot"
BYBIT: Final = "bybit"
OKX: Final = "okx"
HYPERLIQUID: Final = "hyperliquid"
COINBASE: Final = "coinbase"

VENUE_IDS: Final[tuple[str, ...]] = (BINANCE_USDM, BYBIT, OKX, HYPERLIQUID, BINANCE_SPOT, COINBASE)
