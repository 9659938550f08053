"""Bybit's instruments: specs (id, inverse, contract size) from symbols or instruments-info, and the
instrument records of an instruments-info page."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from normalize.flags import (
    FROM_REST,
    TS_EVENT_IMPUTED,
)
from normalize.records import Instrument
from normalize.venues.bybit.wire import MS, VENUE, InstrumentsBody

DEFAULT_FUNDING_INTERVAL_S = 8 * 3600


# -- instruments ----------------------------------------------------------------------------------
class Spec(NamedTuple):
    """What a frame needs to know about its symbol."""

    instrument: str
    inverse: bool
    contract_size: float
    """Base units per contract (linear), quote units per contract (inverse)."""


_DATED = re.compile(r"^([A-Z0-9]+?)(USDT)?-(\d{1,2}[A-Z]{3}\d\d)$")
_INVERSE_FUTURE = re.compile(r"^[A-Z0-9]+USD[FGHJKMNQUVXZ]\d\d$")


def spec_from_symbol(symbol: str) -> Spec:
    """The spec without metadata, from Bybit's naming: BTCUSDT -> BTC-USDT-PERP, BTCPERP (USDC) ->
    BTC-USDC-PERP, BTC-27DEC24 -> BTC-USDC-20241227, BTCUSD -> BTC-USD-PERP (inverse, 1 USD).
    An inverse future (BTCUSDU23) keeps its symbol as id: its expiry day needs the metadata."""
    if found := _DATED.match(symbol):
        day = dt.datetime.strptime(found[3].title(), "%d%b%y").strftime("%Y%m%d")
        return Spec(f"{found[1]}-{found[2] or 'USDC'}-{day}", False, 1.0)
    for suffix, quote in (("USDT", "USDT"), ("USDC", "USDC"), ("PERP", "USDC")):
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return Spec(f"{symbol[: -len(suffix)]}-{quote}-PERP", False, 1.0)
    if symbol.endswith("USD") and len(symbol) > 3:
        return Spec(f"{symbol[:-3]}-USD-PERP", True, 1.0)
    return Spec(symbol, _INVERSE_FUTURE.match(symbol) is not None, 1.0)


@dataclass
class InstrumentMaster:
    """Symbol -> spec and funding interval, from /v5/market/instruments-info (else the symbol)."""

    specs: dict[str, Spec] = field(default_factory=dict)
    funding_interval_s: dict[str, int] = field(default_factory=dict)

    def spec(self, symbol: str) -> Spec:
        found = self.specs.get(symbol)
        if found is None:
            found = self.specs[symbol] = spec_from_symbol(symbol)
        return found


_KINDS = {"LinearPerpetual": "perpetual", "InversePerpetual": "perpetual",
          "LinearFutures": "future", "InverseFutures": "future"}


def instruments_info(body: InstrumentsBody, ts_recv: int) -> list[Instrument]:
    """Instrument records of a v5 instruments-info page (derivatives only; spot and options skipped)."""
    if body.retCode != 0 or body.result is None:
        raise ValueError(f"retCode {body.retCode}: {body.retMsg}")
    ts_event = body.time * MS if body.time else ts_recv
    flags = FROM_REST | (0 if body.time else TS_EVENT_IMPUTED)
    out = []
    for item in body.result.items:
        kind = _KINDS.get(item.contractType)
        if kind is None:
            continue
        delivery_ms = int(item.deliveryTime or 0)
        expiry = delivery_ms * MS if kind == "future" and delivery_ms else None
        suffix = "PERP" if expiry is None else dt.datetime.fromtimestamp(delivery_ms / 1000, dt.UTC).strftime("%Y%m%d")
        lot = item.lotSizeFilter
        out.append(Instrument(
            VENUE, item.symbol, f"{item.baseCoin}-{item.quoteCoin}-{suffix}", ts_event, ts_recv, None, None, flags,
            kind, item.baseCoin, item.quoteCoin, item.settleCoin or item.quoteCoin,
            item.contractType.startswith("Inverse"), 1.0, float(item.priceFilter.tickSize), float(lot.qtyStep),
            float(lot.minOrderQty) if lot.minOrderQty else None,
            item.fundingInterval * 60 if kind == "perpetual" and item.fundingInterval else None,
            expiry, item.status,
        ))
    return out


def venue_symbol(instrument: str) -> str:
    """The inverse of spec_from_symbol for linear contracts: BTC-USDT-PERP -> BTCUSDT, BTC-USDC-PERP ->
    BTCPERP, BTC-USDT-20250328 -> BTCUSDT-28MAR25, BTC-USDC-20241227 -> BTC-27DEC24."""
    base, _, rest = instrument.partition("-")
    quote, _, kind = rest.partition("-")
    if kind == "PERP" and quote in ("USDT", "USDC"):
        return f"{base}USDT" if quote == "USDT" else f"{base}PERP"
    if len(kind) == 8 and kind.isdigit() and quote in ("USDT", "USDC"):
        day = dt.datetime.strptime(kind, "%Y%m%d").strftime("%d%b%y").upper()
        return f"{base}{'USDT' if quote == 'USDT' else ''}-{day}"
    raise ValueError(f"bybit's handler takes linear contracts quoted in USDT or USDC (BTC-USDT-PERP, "
                     f"BTC-USDC-20241227), not {instrument}")
