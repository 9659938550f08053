"""OKX instrument ids, contract sizes and the instrument master (GET /api/v5/public/instruments).

OKX counts derivative sizes in contracts. A linear contract is worth `ctVal * ctMult` of the base
currency (`ctValCcy`, e.g. 0.01 BTC for BTC-USDT-SWAP); an inverse one is worth that many units of
the quote currency (100 USD for BTC-USD-SWAP), so its base size depends on the price:
contracts * ctVal / price. Spot sizes are already base units. Ids are normalized as Binance's
are: BTC-USDT-SWAP -> BTC-USDT-PERP, BTC-USD-SWAP -> BTC-USD-PERP, BTC-USD-220527 ->
BTC-USD-20220527, and spot stays BTC-USDT. Index ids (index-tickers) get `-INDEX`: BTC-USDT-INDEX,
so an index never shares an id with the spot pair of the same name.

A sample of the body (one entry of `data`):
  {"alias":"next_week","baseCcy":"","ctMult":"1","ctType":"inverse","ctVal":"100","ctValCcy":"USD",
   "expTime":"1653638400000","instId":"BTC-USD-220527","instType":"FUTURES","lotSz":"1","minSz":"1",
   "quoteCcy":"","settleCcy":"BTC","state":"live","tickSz":"0.1","uly":"BTC-USD", ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument

VENUE = "okx"
MS = 1_000_000
_KINDS = {"SPOT": "spot", "SWAP": "perpetual", "FUTURES": "future"}


def instrument_id(inst_id: str) -> str:
    """Normalized id from the venue id alone (see the module docstring); anything else unchanged."""
    parts = inst_id.split("-")
    if len(parts) == 3:
        base, quote, suffix = parts
        if suffix == "SWAP":
            return f"{base}-{quote}-PERP"
        if len(suffix) == 6 and suffix.isdigit():
            return f"{base}-{quote}-20{suffix}"
    return inst_id


def index_id(index: str) -> str:
    return f"{index}-INDEX"


def is_contract(inst_id: str) -> bool:
    """Swaps, futures and options (three or more parts) count in contracts; spot pairs do not."""
    return inst_id.count("-") >= 2


@dataclass(frozen=True, slots=True)
class Contract:
    """What one contract is worth: `multiplier` (ctVal * ctMult) of the base currency, or of the
    quote currency when `inverse`. Kept as num / scale too, so whole contracts convert with one
    exact product and one correctly rounded division (3 contracts of 0.1 ETH are 0.3, not
    0.30000000000000004)."""

    inverse: bool
    multiplier: Decimal
    num: int
    scale: int

    @classmethod
    def of(cls, inverse: bool, multiplier: Decimal) -> Contract:
        sign, digits, exponent = multiplier.normalize().as_tuple()
        num = int("".join(map(str, digits)))
        if not isinstance(exponent, int) or sign or not num:
            raise ValueError(f"contract multiplier {multiplier} is not a positive number")
        return cls(inverse, multiplier, num * 10**max(exponent, 0), 10**max(-exponent, 0))

    def to_base(self, native: float, price: float, text: str = "") -> float:
        """Base units of `native` contracts at `price`; `text` is the venue's decimal when at hand.

        Fractional contracts (lot sizes of 0.1 or 0.01) are scaled to integers first, so the
        product stays exact before the one rounding division."""
        if native.is_integer():
            value = native * self.num / self.scale
        else:
            text = text or repr(native)
            dot = text.find(".")
            if dot < 0 or "e" in text or "E" in text:
                value = float(Decimal(text) * self.multiplier)
            else:
                places = len(text) - dot - 1
                value = round(native * 10.0**places) * self.num / (self.scale * 10**places)
        return value / price if self.inverse else value


@dataclass(frozen=True, slots=True)
class Spec:
    """What the normalizer needs per venue symbol: the normalized id and, for contracts, their size."""

    instrument: str
    contract: Contract | None


class _Entry(msgspec.Struct, frozen=True):
    instId: str  # venue id, e.g. BTC-USDT-SWAP
    instType: str  # SPOT, SWAP, FUTURES, OPTION (MARGIN in some bodies)
    baseCcy: str = ""  # spot base currency
    quoteCcy: str = ""  # spot quote currency
    settleCcy: str = ""  # derivatives: margin/settlement currency
    uly: str = ""  # underlying, e.g. BTC-USD
    instFamily: str = ""  # newer name of the underlying family
    ctVal: str = ""  # contract value
    ctMult: str = ""  # contract multiplier
    ctValCcy: str = ""  # currency of ctVal (base for linear, quote for inverse)
    ctType: str = ""  # linear or inverse
    tickSz: str = ""  # price tick
    lotSz: str = ""  # size step, in contracts for derivatives
    minSz: str = ""  # minimum order size, same unit
    expTime: str = ""  # expiry, ms (futures)
    state: str = ""  # live, suspend, preopen, ...


class _Body(msgspec.Struct, frozen=True):
    code: str
    data: list[_Entry]
    msg: str = ""


_body = msgspec.json.Decoder(_Body, strict=False)


@dataclass
class InstrumentMaster:
    """Venue symbol -> Spec, filled from instrument bodies; spot pairs need no metadata."""

    specs: dict[str, Spec] = field(default_factory=dict)

    def spec(self, inst_id: str) -> Spec | None:
        """The symbol's Spec; None for a contract whose size is unknown (its body not loaded)."""
        found = self.specs.get(inst_id)
        if found is None and not is_contract(inst_id):
            found = self.specs[inst_id] = Spec(inst_id, None)
        return found

    def load(self, payload: bytes, ts_recv: int) -> list[Instrument]:
        """Read one instruments body; returns its spot, swap and futures records (options are
        skipped: ticklake does not normalize option data)."""
        body = _body.decode(payload)
        if body.code != "0":
            raise ValueError(f"instruments body with code {body.code}: {body.msg}")
        out = []
        for entry in body.data:
            kind = _KINDS.get(entry.instType)
            if kind is None:
                continue
            record = _instrument(entry, kind, ts_recv)
            contract = None
            if kind != "spot":
                contract = Contract.of(entry.ctType == "inverse", Decimal(entry.ctVal) * Decimal(entry.ctMult or "1"))
            self.specs[entry.instId] = Spec(record.instrument, contract)
            out.append(record)
        return out


def _instrument(entry: _Entry, kind: str, ts_recv: int) -> Instrument:
    expiry = None
    if kind == "spot":
        base, quote, settle, contract_size = entry.baseCcy, entry.quoteCcy, entry.quoteCcy, 1.0
    else:
        base, _, quote = (entry.instFamily or entry.uly or entry.instId).partition("-")
        quote = quote.split("-")[0]
        settle = entry.settleCcy
        contract_size = float(Decimal(entry.ctVal) * Decimal(entry.ctMult or "1"))
        if kind == "future" and entry.expTime:
            expiry = int(entry.expTime) * MS
    return Instrument(
        VENUE, entry.instId, instrument_id(entry.instId), ts_recv, ts_recv, None, None, FROM_REST | TS_EVENT_IMPUTED,
        kind, base, quote, settle, entry.ctType == "inverse", contract_size,
        float(entry.tickSz), float(entry.lotSz), float(entry.minSz) if entry.minSz else None,
        None, expiry, entry.state or None,
    )


def venue_symbol(instrument: str) -> str:
    """The inverse of instrument_id: BTC-USDT-PERP -> BTC-USDT-SWAP, BTC-USD-20250328 ->
    BTC-USD-250328, BTC-USDT (spot) unchanged."""
    parts = instrument.split("-")
    if len(parts) == 2:
        return instrument
    if len(parts) == 3 and parts[2] == "PERP":
        return f"{parts[0]}-{parts[1]}-SWAP"
    if len(parts) == 3 and len(parts[2]) == 8 and parts[2].isdigit():
        return f"{parts[0]}-{parts[1]}-{parts[2][2:]}"
    raise ValueError(f"okx: {instrument} is not a spot pair, perpetual or dated future id "
                     "(BTC-USDT, BTC-USDT-PERP, BTC-USD-20250328)")
