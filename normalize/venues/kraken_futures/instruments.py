"""Kraken Futures instrument ids, contract sizes and the instrument master
(GET /derivatives/api/v3/instruments).

Kraken names a contract `<PREFIX>_<BASE><QUOTE>[_<YYMMDD>]`, XBT for bitcoin. The prefix says what
it is (https://support.kraken.com/hc/en-us/articles/360022835891-Ticker-symbols):

| prefix | contract | settles in | id |
|---|---|---|---|
| PI | inverse perpetual, 1 USD a contract | the base coin | BTC-USD-PERP |
| FI | inverse future, 1 USD a contract | the base coin | BTC-USD-20210924 |
| PF | linear multi-collateral perpetual, 1 base unit a contract | USD | BTC-USD:USD-PERP |
| FF | linear multi-collateral future | USD | BTC-USD:USD-20250328 |
| PV, FV | vanilla (linear) perpetual / future, settled in the quote | the quote | XRP-BTC-PERP |

PI_XBTUSD and PF_XBTUSD are both bitcoin perpetuals quoted in USD, but one is coin-margined and
settles in BTC (sizes in USD contracts) and the other is margined by any collateral and settles in
USD (sizes in BTC): two instruments, so two ids. The inverse one keeps `BTC-USD-PERP`, which means
an inverse USD perpetual at OKX and Bybit too; the multi-collateral one writes its settlement
currency after the quote (`BTC-USD:USD-PERP`, as ccxt writes `BTC/USD:USD`). Index symbols (IN_,
RR_) are not instruments. Sizes: inverse contracts are worth `contractSize` USD, so their base size
is contracts x contractSize / price; linear ones are worth `contractSize` of the base.

A sample of the body (one entry of `instruments`, 2021):
  {"symbol":"fi_xbtusd_210924","type":"futures_inverse","underlying":"rr_xbtusd",
   "lastTradingTime":"2021-09-24T15:00:00.000Z","tickSize":0.5,"contractSize":1,"tradeable":true,...}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument
from normalize.venues.kraken_futures.wire import MS, VENUE
from normalize.venues.okx.instruments import Contract

FUNDING_INTERVAL_S = 3600
"""Perpetual funding accrues and settles every hour (Kraken support, "Inverse / Linear
Multi-Collateral Perpetual Contract Specifications", checked 2026-12-07)."""
_SYMBOL = re.compile(r"^(PI|PF|PV|FI|FF|FV)_([A-Z0-9]+?)(USD|EUR|GBP|XBT|ETH|USDT|USDC)(?:_(\d{6}))?$")
_MULTI_COLLATERAL = ("PF", "FF")
_INVERSE = ("PI", "FI")
_ASSETS = {"XBT": "BTC"}
_ASSETS_BACK = {"BTC": "XBT"}
_ID = re.compile(r"^([A-Z0-9]+)-([A-Z0-9]+)(:USD)?-(PERP|\d{8})$")


def asset(code: str) -> str:
    """Kraken's asset code as ticklake writes it: XBT is BTC."""
    return _ASSETS.get(code, code)


@dataclass(frozen=True, slots=True)
class Spec:
    """What the normalizer needs per venue symbol: the normalized id and what a contract is worth."""

    instrument: str
    contract: Contract
    perpetual: bool


def spec_from_symbol(symbol: str, contract_size: Decimal = Decimal(1)) -> Spec | None:
    """The spec from Kraken's naming alone (contract size 1, Kraken's size for every listed family);
    None for a symbol of no known family (an index)."""
    found = _SYMBOL.match(symbol.upper())
    if found is None:
        return None
    prefix, base, quote, day = found.groups()
    settle = ":USD" if prefix in _MULTI_COLLATERAL else ""
    kind = "PERP" if day is None else f"20{day}"
    return Spec(f"{asset(base)}-{asset(quote)}{settle}-{kind}", Contract.of(prefix in _INVERSE, contract_size),
                day is None)


def venue_symbol(instrument: str) -> str:
    """The inverse of the ids: BTC-USD-PERP -> PI_XBTUSD, BTC-USD:USD-PERP -> PF_XBTUSD,
    BTC-USD-20210924 -> FI_XBTUSD_210924, BTC-USD:USD-20250328 -> FF_XBTUSD_250328, XRP-BTC-PERP ->
    PV_XRPXBT."""
    found = _ID.match(instrument)
    if found is None:
        raise ValueError(f"kraken-futures lists perpetuals and dated futures (BTC-USD-PERP inverse, "
                         f"BTC-USD:USD-PERP multi-collateral, BTC-USD-20250328), not {instrument}")
    base, quote, multi, kind = found.groups()
    perpetual = kind == "PERP"
    if multi:
        prefix = "PF" if perpetual else "FF"
    elif quote == "USD":
        prefix = "PI" if perpetual else "FI"
    else:
        prefix = "PV" if perpetual else "FV"
    body = f"{_ASSETS_BACK.get(base, base)}{_ASSETS_BACK.get(quote, quote)}"
    return f"{prefix}_{body}" if perpetual else f"{prefix}_{body}_{kind[2:]}"


class _Entry(msgspec.Struct, frozen=True):
    symbol: str  # venue symbol (lower case in older bodies)
    type: str = ""  # futures_inverse, flexible_futures, futures_vanilla, spot index
    tradeable: bool = False
    tickSize: float | None = None
    contractSize: float | None = None  # USD (inverse) or base units (linear) per contract
    contractValueTradePrecision: int | None = None  # order sizes in steps of 10^-precision contracts
    lastTradingTime: str = ""  # ISO 8601, dated futures
    base: str = ""  # newer bodies: XBT
    quote: str = ""  # newer bodies: USD


class _Body(msgspec.Struct, frozen=True):
    result: str
    instruments: list[_Entry] = []
    serverTime: str = ""
    error: str = ""


_body = msgspec.json.Decoder(_Body)


def _iso_ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000) * MS


@dataclass
class InstrumentMaster:
    """Venue symbol -> Spec: from the instruments body where loaded, else from the symbol."""

    specs: dict[str, Spec] = field(default_factory=dict)

    def spec(self, symbol: str) -> Spec:
        found = self.specs.get(symbol)
        if found is None:
            found = spec_from_symbol(symbol)
            if found is None:
                raise ValueError(f"{symbol} is no Kraken Futures contract symbol")
            self.specs[symbol] = found
        return found

    def load(self, payload: bytes, ts_recv: int) -> list[Instrument]:
        """Read one instruments body: the records of its contracts (indexes skipped)."""
        body = _body.decode(payload)
        if body.result != "success":
            raise ValueError(f"instruments body with result {body.result}: {body.error}")
        ts_event = _iso_ns(body.serverTime) if body.serverTime else ts_recv
        flags = FROM_REST | (0 if body.serverTime else TS_EVENT_IMPUTED)
        out = []
        for entry in body.instruments:
            symbol = entry.symbol.upper()
            size = Decimal(repr(entry.contractSize)) if entry.contractSize else Decimal(1)
            spec = spec_from_symbol(symbol, size)
            if spec is None or entry.tickSize is None:
                continue
            self.specs[symbol] = spec
            found = _SYMBOL.match(symbol)
            assert found is not None
            prefix, base, quote = found.group(1), asset(entry.base or found.group(2)), asset(entry.quote
                                                                                              or found.group(3))
            settle = "USD" if prefix in _MULTI_COLLATERAL else base if prefix in _INVERSE else quote
            lot = 10.0 ** -entry.contractValueTradePrecision if entry.contractValueTradePrecision else 1.0
            out.append(Instrument(
                VENUE, symbol, spec.instrument, ts_event, ts_recv, None, None, flags,
                "perpetual" if spec.perpetual else "future", base, quote, settle, spec.contract.inverse,
                float(size), entry.tickSize, lot, lot, FUNDING_INTERVAL_S if spec.perpetual else None,
                _iso_ns(entry.lastTradingTime) if entry.lastTradingTime else None,
                "tradeable" if entry.tradeable else "not_tradeable"))
        return out
