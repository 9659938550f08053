"""Deribit instrument ids, units and the instrument master (public/get_instruments).

Ids: BTC-PERPETUAL -> BTC-USD-PERP, BTC-25MAR22 -> BTC-USD-20220325, BTC-25MAR22-60000-C ->
BTC-USD-20220325-60000-C; USDC-margined (linear) contracts name their quote: BTC_USDC-PERPETUAL ->
BTC-USDC-PERP, MATIC_USDC-9MAR24-1d02-C -> MATIC-USDC-20240309-1.02-C (Deribit writes a strike's decimal
point as `d`); spot BTC_USDC -> BTC-USDC. Combos (BTC-FS-30SEP22_PERP, BTC-STRD-..., BTC-CSR12-...)
are spreads, priced as differences: they have no id here and are not normalized.

Units: Deribit's `amount` is USD for inverse futures and perpetuals (10 USD contracts on BTC, 1 USD on
ETH) and coins for options and linear (USDC) contracts. ticklake publishes base units: amount / price
for inverse contracts (the USD kept as size_native), the amount itself otherwise. Which contracts are
inverse follows from the name alone (a future without `_QUOTE` is inverse); a loaded instruments body
(future_type / instrument_type `reversed`) confirms it.

A sample of the body (one entry of `result`, 2021):
  {"tick_size":0.5,"settlement_period":"perpetual","quote_currency":"USD","min_trade_amount":10.0,
   "kind":"future","is_active":true,"instrument_name":"BTC-PERPETUAL","expiration_timestamp":32503708800000,
   "contract_size":10.0,"base_currency":"BTC", ...}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument
from normalize.venues.deribit.wire import MS, VENUE, InstrumentEntry, InstrumentsBody

FUNDING_INTERVAL_S = 8 * 3600
"""Deribit's funding accrues continuously; `funding_8h` is its rate over 8 hours."""
_PERPETUAL_MS = 32503708800000
"""Deribit's expiration_timestamp for a perpetual: 3000-01-01."""
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY = re.compile(r"^(\d{1,2})([A-Z]{3})(\d\d)$")
_STRIKE = re.compile(r"^\d+(d\d+)?$")


class Spec(NamedTuple):
    """What a frame needs to know about its instrument."""

    instrument: str
    kind: str
    """perpetual, future, option or spot."""
    inverse: bool
    """Amounts are USD: base units are amount / price."""


def _day(text: str) -> str | None:
    """25MAR22 -> 20220325 (Deribit writes no leading zero: 9MAR24)."""
    found = _DAY.match(text)
    if found is None or found[2] not in _MONTHS:
        return None
    return f"20{found[3]}{_MONTHS.index(found[2]) + 1:02d}{int(found[1]):02d}"


def spec_from_name(name: str) -> Spec | None:
    """The spec of a venue instrument name, or None for a name of no kind ticklake normalizes (combos)."""
    parts = name.split("-")
    base, _, quote = parts[0].partition("_")
    if not base.isalnum() or (quote and not quote.isalnum()):
        return None
    if len(parts) == 1:
        return Spec(f"{base}-{quote}", "spot", False) if quote else None
    day = _day(parts[1])
    linear = bool(quote)
    quote = quote or "USD"
    if len(parts) == 2:
        if parts[1] == "PERPETUAL":
            return Spec(f"{base}-{quote}-PERP", "perpetual", not linear)
        return Spec(f"{base}-{quote}-{day}", "future", not linear) if day else None
    if len(parts) == 4 and day and _STRIKE.match(parts[2]) and parts[3] in ("C", "P"):
        return Spec(f"{base}-{quote}-{day}-{parts[2].replace('d', '.')}-{parts[3]}", "option", False)
    return None


def venue_symbol(instrument: str) -> str:
    """The inverse of spec_from_name: BTC-USD-PERP -> BTC-PERPETUAL, BTC-USDC-PERP -> BTC_USDC-PERPETUAL,
    BTC-USD-20250328 -> BTC-28MAR25, BTC-USD-20250328-60000-C -> BTC-28MAR25-60000-C, BTC-USDC -> BTC_USDC.
    Deribit's own names of two parts look like ids (ETH-PERPETUAL, BTC-25MAR22): they are returned as they are."""
    if spec_from_name(instrument) is not None:
        return instrument
    parts = instrument.split("-")
    if len(parts) < 2:
        raise ValueError(f"deribit: {instrument} is not an instrument id")
    root = parts[0] if parts[1] == "USD" else f"{parts[0]}_{parts[1]}"
    if len(parts) == 2:
        if parts[1] == "USD":
            raise ValueError(f"deribit lists no spot pair quoted in USD ({instrument}); spot is BTC-USDC")
        return root
    if len(parts) == 3 and parts[2] == "PERP":
        return f"{root}-PERPETUAL"
    day = _day_of(parts[2])
    if day is not None and len(parts) == 3:
        return f"{root}-{day}"
    if day is not None and len(parts) == 5 and parts[4] in ("C", "P") and re.match(r"^\d+(\.\d+)?$", parts[3]):
        return f"{root}-{day}-{parts[3].replace('.', 'd')}-{parts[4]}"
    raise ValueError(f"deribit: {instrument} is not a perpetual, dated future, option or spot id (BTC-USD-PERP, "
                     "BTC-USD-20250328, BTC-USD-20250328-60000-C, BTC-USDC)")


def _day_of(yyyymmdd: str) -> str | None:
    """20250328 -> 28MAR25."""
    if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
        return None
    try:
        day = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None
    return f"{day.day}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


@dataclass
class InstrumentMaster:
    """Instrument name -> Spec: from the names alone, corrected by instruments bodies where loaded."""

    specs: dict[str, Spec | None] = field(default_factory=dict)

    def spec(self, name: str) -> Spec | None:
        if name in self.specs:
            return self.specs[name]
        found = self.specs[name] = spec_from_name(name)
        return found

    def load(self, body: InstrumentsBody, ts_recv: int) -> list[Instrument]:
        """The instrument records of one get_instruments answer (combos skipped); they become the specs."""
        if body.error is not None or body.result is None:
            error = body.error
            raise ValueError(f"get_instruments error {error.code}: {error.message}" if error else "no result")
        ts_event, flags = (body.usOut * 1000, FROM_REST) if body.usOut else (ts_recv, FROM_REST | TS_EVENT_IMPUTED)
        out = []
        for entry in body.result:
            record = _instrument(entry, ts_event, ts_recv, flags)
            if record is not None:
                self.specs[entry.instrument_name] = Spec(record.instrument, record.kind, record.inverse)
                out.append(record)
        return out


def _instrument(entry: InstrumentEntry, ts_event: int, ts_recv: int, flags: int) -> Instrument | None:
    named = spec_from_name(entry.instrument_name)
    if named is None or entry.kind not in ("future", "option", "spot"):
        return None
    kind_type = entry.instrument_type or entry.future_type  # reversed or linear, in newer bodies
    inverse = kind_type == "reversed" if kind_type else named.inverse
    expiry = None if named.kind in ("perpetual", "spot") or entry.expiration_timestamp >= _PERPETUAL_MS \
        else entry.expiration_timestamp * MS
    settle = entry.settlement_currency or (entry.base_currency if inverse or entry.kind == "option"
                                           else entry.quote_currency)
    status = entry.state or ("open" if entry.is_active else "inactive")
    return Instrument(
        VENUE, entry.instrument_name, named.instrument, ts_event, ts_recv, None, None, flags,
        named.kind, entry.base_currency, entry.quote_currency, settle, inverse, entry.contract_size,
        entry.tick_size, entry.min_trade_amount, entry.min_trade_amount,
        FUNDING_INTERVAL_S if named.kind == "perpetual" else None, expiry, status,
        entry.strike if named.kind == "option" else None, entry.option_type or None,
    )
