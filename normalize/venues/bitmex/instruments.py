"""BitMEX instrument ids, contract sizes and the instrument master (GET /api/v1/instrument/active).

BitMEX counts sizes in contracts. What a contract is worth follows from the instrument's multipliers,
as BitMEX's own `homeNotional` (base units) does:
* inverse (XBTUSD, `isInverse`): multiplier / underlyingToSettleMultiplier quote units (1 USD) a contract,
  so base units = contracts x that / price;
* linear and quanto (XRPU21, UNIUSDT, XBTUSDT): multiplier / quoteToSettleMultiplier base units a
  contract (1 XRP; 1000/3108 UNI for the 2021 quanto UNIUSDT, whose contract pays 1,000 XBt a USDT;
  0.000001 XBT for XBTUSDT), whatever the price.
Without the instrument's terms a contract has no size: its frames are dead letters, never a wrong unit
(`ticklake normalize bitmex` wants the instruments capture along with the WebSocket one).

Ids: XBT is BTC. Perpetuals BASE-QUOTE-PERP (XBTUSD -> BTC-USD-PERP, UNIUSDT -> UNI-USDT-PERP), futures
BASE-QUOTE-YYYYMMDD from the expiry (XBTU21 -> BTC-USD-20210924, XRPU21, quoted in XBT, ->
XRP-BTC-20210924), spot BASE-QUOTE (XBT_USDT -> BTC-USDT), options BASE-QUOTE-YYYYMMDD-STRIKE-C|P; indices
(.BXBT) keep their symbol.

A sample of the body (one entry, 2021, fields cut):
  {"symbol":"XBTUSD","typ":"FFWCSX","underlying":"XBT","quoteCurrency":"USD","settlCurrency":"XBt",
   "multiplier":-100000000,"underlyingToSettleMultiplier":-100000000,"quoteToSettleMultiplier":null,
   "isQuanto":false,"isInverse":true,"lotSize":100,"tickSize":0.5,"fundingInterval":"2000-01-01T08:00:00.000Z",
   "markPrice":32184.89,"indicativeSettlePrice":32182.72,"openInterest":574264600, ...}
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from msgspec import UNSET

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument
from normalize.venues.bitmex.wire import VENUE, InstrumentRow, interval_s, iso_ns

MONTH_CODES = "FGHJKMNQUVXZ"
_DATED = re.compile(rf"^[A-Z0-9]+[{MONTH_CODES}]\d\d$")
_QUOTES = ("USDT", "USDC", "USD", "EUR")
_KINDS = {"FFWCSX": "perpetual", "FFCCSX": "future", "IFXXXP": "spot"}


def coin(code: str) -> str:
    """XBT and XBt (satoshi) -> BTC; USDt -> USDT; others as they are, upper case."""
    code = code.upper()
    return "BTC" if code == "XBT" else code


class Spec(NamedTuple):
    """What a frame needs to know about its symbol: the id and what one contract is worth."""

    instrument: str
    inverse: bool
    num: int
    den: int
    """One contract is num/den quote units (inverse) or base units (linear, quanto)."""

    def to_base(self, contracts: float, price: float) -> float:
        value = contracts * self.num if self.den == 1 else contracts * self.num / self.den
        return value / price if self.inverse else value

    @property
    def contract_size(self) -> float:
        return self.num / self.den


def _spec(row: InstrumentRow, instrument: str) -> Spec | None:
    """The contract's worth from the row's multipliers; None where they are missing."""
    multiplier = row.multiplier
    other = row.underlyingToSettleMultiplier if row.isInverse else row.quoteToSettleMultiplier
    if not isinstance(multiplier, int) or not isinstance(other, int) or not multiplier or not other:
        return None
    return _ratio(instrument, bool(row.isInverse), abs(multiplier), abs(other))


def _ratio(instrument: str, inverse: bool, num: int, den: int) -> Spec:
    common = math.gcd(num, den)
    return Spec(instrument, inverse, num // common, den // common)


def _day(expiry: str) -> str:
    return dt.datetime.fromtimestamp(iso_ns(expiry) / 1e9, dt.UTC).strftime("%Y%m%d")


def instrument_id(row: InstrumentRow) -> str:
    """The normalized id from the row's terms (see the module docstring); the symbol where they say nothing."""
    kind = _KINDS.get(row.typ) if isinstance(row.typ, str) else None
    if not isinstance(row.underlying, str) or not isinstance(row.quoteCurrency, str):
        return id_from_symbol(row.symbol)
    base, quote = coin(row.underlying), coin(row.quoteCurrency)
    if kind == "perpetual":
        return f"{base}-{quote}-PERP"
    if kind == "spot":
        return f"{base}-{quote}"
    expiry = row.expiry if isinstance(row.expiry, str) else None
    if kind == "future" and expiry:
        return f"{base}-{quote}-{_day(expiry)}"
    if isinstance(row.typ, str) and row.typ.startswith("O") and expiry and isinstance(row.optionStrikePrice, float):
        strike = format(Decimal(repr(row.optionStrikePrice)).normalize(), "f")
        return f"{base}-{quote}-{_day(expiry)}-{strike}-{'C' if row.typ[1] == 'C' else 'P'}"
    return row.symbol


def id_from_symbol(symbol: str) -> str:
    """The id without metadata, where the symbol alone says it: XBT_USDT -> BTC-USDT, XBTUSD -> BTC-USD-PERP,
    UNIUSDT -> UNI-USDT-PERP. A dated future (XBTU21) keeps its symbol: its day needs the expiry."""
    if "_" in symbol:
        base, _, quote = symbol.partition("_")
        return f"{coin(base)}-{coin(quote)}"
    if _DATED.match(symbol) and not symbol.endswith(_QUOTES):
        return symbol
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote) and symbol[0] != ".":
            return f"{coin(symbol[:-len(quote)])}-{quote}-PERP"
    return symbol


def venue_symbol(instrument: str) -> str:
    """The inverse of the ids: BTC-USD-PERP -> XBTUSD, ETH-USDT-PERP -> ETHUSDT, BTC-USD-20250328 -> XBTH25,
    XRP-BTC-20210924 -> XRPU21, ETH-USD-20210924 -> ETHUSDU21, BTC-USDT -> XBT_USDT."""
    parts = instrument.split("-")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"bitmex: {instrument} is not an instrument id")
    base, quote = ("XBT" if p == "BTC" else p for p in parts[:2])
    if len(parts) == 2:
        return f"{base}_{quote}"
    if len(parts) == 3 and parts[2] == "PERP":
        return f"{base}{quote}"
    if len(parts) == 3 and len(parts[2]) == 8 and parts[2].isdigit():
        month, year = int(parts[2][4:6]), parts[2][2:4]
        if not 1 <= month <= 12:
            raise ValueError(f"bitmex: {instrument} names no month")
        # a future quoted in XBT leaves its quote out (XRPU21), and so does XBT/USD (XBTU21)
        quoted = "" if quote == "XBT" or (base == "XBT" and quote == "USD") else quote
        return f"{base}{quoted}{MONTH_CODES[month - 1]}{year}"
    raise ValueError(f"bitmex: {instrument} is not a perpetual, dated future or spot id (BTC-USD-PERP, "
                     "BTC-USD-20250328, BTC-USDT); options are not subscribed by id")


@dataclass
class InstrumentMaster:
    """Symbol -> Spec, from instrument rows (REST, or the instrument table's partial)."""

    specs: dict[str, Spec] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    multipliers: dict[str, int] = field(default_factory=dict)

    def instrument(self, symbol: str) -> str:
        spec = self.specs.get(symbol)
        if spec is not None:
            return spec.instrument
        found = self.ids.get(symbol)
        if found is None:
            found = self.ids[symbol] = id_from_symbol(symbol)
        return found

    def learn(self, row: InstrumentRow) -> Spec | None:
        """Take a row's terms where it carries them (REST, partials), and a quanto's new
        quoteToSettleMultiplier from an update (BitMEX moves it with the XBT rate); returns the spec."""
        if row.multiplier is not UNSET and row.typ is not UNSET:
            instrument = instrument_id(row)
            self.ids[row.symbol] = instrument
            spec = _spec(row, instrument)
            if spec is not None:
                self.specs[row.symbol] = spec
                self.multipliers[row.symbol] = abs(row.multiplier)  # type: ignore[arg-type]
        elif isinstance(row.quoteToSettleMultiplier, int) and row.quoteToSettleMultiplier:
            spec = self.specs.get(row.symbol)
            if spec is not None and not spec.inverse:
                self.specs[row.symbol] = _ratio(spec.instrument, False, self.multipliers[row.symbol],
                                                abs(row.quoteToSettleMultiplier))
        return self.specs.get(row.symbol)

    def load(self, rows: list[InstrumentRow], ts_recv: int) -> list[Instrument]:
        """The instrument records of a REST body (perpetuals, futures, spot and options; indices skipped)."""
        out = []
        for row in rows:
            spec = self.learn(row)
            record = _record(row, spec, ts_recv)
            if record is not None:
                out.append(record)
        return out


def _record(row: InstrumentRow, spec: Spec | None, ts_recv: int) -> Instrument | None:
    typ = row.typ if isinstance(row.typ, str) else ""
    kind = _KINDS.get(typ) or ("option" if typ.startswith("O") else None)
    if kind is None or spec is None or not isinstance(row.underlying, str) or not isinstance(row.quoteCurrency, str):
        return None
    funding = row.fundingInterval if kind == "perpetual" and isinstance(row.fundingInterval, str) else None
    expiry = row.expiry if kind in ("future", "option") and isinstance(row.expiry, str) else None
    lot = row.lotSize if isinstance(row.lotSize, float) else None
    tick = row.tickSize if isinstance(row.tickSize, float) else math.nan
    return Instrument(
        VENUE, row.symbol, spec.instrument, ts_recv, ts_recv, None, None, FROM_REST | TS_EVENT_IMPUTED,
        kind, coin(row.underlying), coin(row.quoteCurrency),
        coin(row.settlCurrency) if isinstance(row.settlCurrency, str) else coin(row.quoteCurrency),
        spec.inverse, spec.contract_size, tick, lot if lot is not None else math.nan, lot,
        interval_s(funding) if funding else None, iso_ns(expiry) if expiry else None,
        row.state if isinstance(row.state, str) else None,
        row.optionStrikePrice if kind == "option" and isinstance(row.optionStrikePrice, float) else None,
        ("call" if typ[1:2] == "C" else "put") if kind == "option" else None,
    )
