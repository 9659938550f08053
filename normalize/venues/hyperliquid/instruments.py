"""Hyperliquid's instruments: ids from coin names, funding intervals, and instrument records from
`meta`."""

from __future__ import annotations

import datetime as dt

from normalize.flags import LAST
from normalize.records import Instrument
from normalize.venues.hyperliquid.wire import VENUE, meta_decoder

HOUR_NS = 3600 * 1_000_000_000
FUNDING_INTERVAL_S = 3600
EIGHT_HOURLY_FUNDING_BEFORE_NS = int(dt.datetime(2023, 6, 8, 0, 30, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
"""Settlements before this time were 8-hourly (the last one at 2023-06-08 00:00 UTC), later hourly."""

PERP_MAX_DECIMALS = 6
"""Perp prices may have at most 6 - szDecimals decimals (and at most 5 significant figures)."""


def is_perp(coin: str) -> bool:
    """Main-dex perps have plain names; spot is `@<index>` or `BASE/QUOTE`, builder perps `dex:COIN`."""
    return not ("@" in coin or "/" in coin or ":" in coin)


def instrument_id(coin: str) -> str:
    """BTC -> BTC-USDC-PERP; spot and builder-dex names are kept (see the module docstring)."""
    return f"{coin}-USDC-PERP" if is_perp(coin) else coin


def funding_interval_s(settled_ns: int) -> int:
    return 8 * FUNDING_INTERVAL_S if settled_ns < EIGHT_HOURLY_FUNDING_BEFORE_NS else FUNDING_INTERVAL_S


def meta_instruments(body: bytes, ts_recv: int, flags: int) -> list[Instrument]:
    """Instrument records of the main dex's perpetuals. `meta` carries no time: ts_event is ts_recv.

    tick_size is the finest tick, 10^-(6 - szDecimals); prices are also limited to 5 significant
    figures, so the tick at price p is coarser above 10^(5 - (6 - szDecimals)). min_size is None:
    the venue's minimum is a notional (10 USDC), not a size.
    """
    universe = meta_decoder.decode(body).universe
    out = []
    for index, asset in enumerate(universe):
        out.append(Instrument(
            VENUE, asset.name, instrument_id(asset.name), ts_recv, ts_recv, None, None,
            flags | (LAST if index == len(universe) - 1 else 0), "perpetual", asset.name, "USDC", "USDC", False,
            1.0, float(f"1e{asset.szDecimals - PERP_MAX_DECIMALS}"), float(f"1e-{asset.szDecimals}"), None,
            FUNDING_INTERVAL_S, None, "delisted" if asset.isDelisted else None,
        ))
    return out


def venue_symbol(instrument: str) -> str:
    """The inverse of instrument_id for the main dex's perpetuals: BTC-USDC-PERP -> BTC."""
    base, _, rest = instrument.partition("-")
    if rest == "USDC-PERP":
        return base
    raise ValueError(f"hyperliquid's perpetuals are quoted in USDC (BTC-USDC-PERP), not {instrument}")
