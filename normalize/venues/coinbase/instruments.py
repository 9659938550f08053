"""Coinbase's instruments: ids from product ids, contract sizes, and the instrument master from either
products list.

* Spot products are `BASE-QUOTE` on the venue and in ticklake (BTC-USD stays BTC-USD). Sizes are
  base units.
* Futures (Advanced Trade lists Coinbase Derivatives' products, e.g. `BIT-24APR26-CDE`, nano BTC
  futures of 0.01 BTC a contract) count sizes in contracts: base units = contracts x
  `contract_size`, the contracts kept native. They are `BASE-QUOTE-YYYYMMDD` by expiry, or
  `BASE-QUOTE-PERP` for the perpetual-style contracts (those with a funding interval), base being
  the contract's `contract_root_unit`. A future's product id says none of this: it needs the products
  body, and a future whose body is not loaded is a dead letter, never a wrong unit.

Bodies: the Exchange's `GET /products` (a list; spot only) and Advanced Trade's public
`GET /api/v3/brokerage/market/products` (`{"products": [...]}`; spot and futures). Neither carries a
time: records are stamped with the receive time (TS_EVENT_IMPUTED).
  {"id":"BTC-GBP","base_currency":"BTC","quote_currency":"GBP","base_min_size":"0.0001",
   "base_max_size":"80","quote_increment":"0.01","base_increment":"0.00000001","status":"online",...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument
from normalize.venues.coinbase.wire import VENUE, iso_ns
from normalize.venues.okx.instruments import Contract, Spec

__all__ = ["Contract", "InstrumentMaster", "Spec", "is_contract", "venue_symbol"]


def is_contract(product_id: str) -> bool:
    """Futures have three or more parts (BIT-24APR26-CDE); spot products two."""
    return product_id.count("-") >= 2


def venue_symbol(instrument: str) -> str:
    """The product id of a normalized id: spot ids are the product ids. A future's product id
    (BIT-24APR26-CDE) comes only from the products list, so its normalized id cannot be mapped."""
    parts = instrument.split("-")
    if len(parts) == 2 and all(parts):
        return instrument
    raise ValueError(f"coinbase names spot products BASE-QUOTE (BTC-USD); give futures by product id "
                     f"(BIT-24APR26-CDE), not {instrument}")


class ExchangeProduct(msgspec.Struct, frozen=True):
    """One entry of the Exchange's /products."""

    id: str  # product id
    base_currency: str
    quote_currency: str
    quote_increment: str  # price tick
    base_increment: str  # size step
    base_min_size: str = ""  # (dropped from the body in 2022; kept when sent)
    status: str = ""  # online, offline, delisted


class FutureDetails(msgspec.Struct, frozen=True):
    contract_size: str  # base units a contract
    contract_root_unit: str  # the underlying, e.g. BTC
    contract_expiry: str | None = None  # RFC 3339
    contract_expiry_type: str = ""  # EXPIRING or PERPETUAL
    funding_interval: str | None = None  # e.g. "3600s" for perpetual-style contracts


class AdvancedProduct(msgspec.Struct, frozen=True):
    """One entry of Advanced Trade's /api/v3/brokerage/market/products."""

    product_id: str
    product_type: str  # SPOT or FUTURE
    quote_currency_id: str
    base_increment: str  # size step (contracts for futures)
    base_currency_id: str = ""  # empty for futures
    price_increment: str = ""  # price tick
    quote_increment: str = ""  # (price tick of older bodies)
    base_min_size: str = ""
    status: str = ""
    trading_disabled: bool = False
    future_product_details: FutureDetails | None = None


class AdvancedProducts(msgspec.Struct, frozen=True):
    products: list[msgspec.Raw]


_exchange_products = msgspec.json.Decoder(list[msgspec.Raw])
_exchange_product = msgspec.json.Decoder(ExchangeProduct)
_advanced_products = msgspec.json.Decoder(AdvancedProducts)
_advanced_product = msgspec.json.Decoder(AdvancedProduct)


def _number(text: str) -> float:
    return float(Decimal(text))


def _spot(product_id: str, base: str, quote: str, tick: str, lot: str, min_size: str, status: str | None,
          ts_recv: int) -> Instrument:
    return Instrument(VENUE, product_id, product_id, ts_recv, ts_recv, None, None, FROM_REST | TS_EVENT_IMPUTED,
                      "spot", base, quote, quote, False, 1.0, _number(tick), _number(lot),
                      _number(min_size) if min_size else None, None, None, status or None)


def _future(p: AdvancedProduct, details: FutureDetails, ts_recv: int) -> tuple[Instrument, Contract]:
    size = Decimal(details.contract_size)
    contract = Contract.of(False, size)
    expiry = iso_ns(details.contract_expiry) if details.contract_expiry else None
    funding = None
    if details.funding_interval:
        funding = int(Decimal(details.funding_interval.removesuffix("s")))
    perpetual = details.contract_expiry_type == "PERPETUAL" or funding is not None
    if perpetual:
        kind, suffix = "perpetual", "PERP"
    elif expiry is not None:
        kind = "future"
        suffix = details.contract_expiry[:10].replace("-", "")  # type: ignore[index]
    else:
        raise ValueError(f"future {p.product_id} has neither an expiry nor a funding interval")
    base, quote = details.contract_root_unit, p.quote_currency_id
    record = Instrument(VENUE, p.product_id, f"{base}-{quote}-{suffix}", ts_recv, ts_recv, None, None,
                        FROM_REST | TS_EVENT_IMPUTED, kind, base, quote, quote, False, float(size),
                        _number(p.price_increment or p.quote_increment), _number(p.base_increment),
                        _number(p.base_min_size) if p.base_min_size else None, funding, expiry,
                        p.status or ("trading_disabled" if p.trading_disabled else None))
    return record, contract


@dataclass
class InstrumentMaster:
    """Product id -> Spec (normalized id and, for futures, the contract size)."""

    specs: dict[str, Spec] = field(default_factory=dict)

    def spec(self, product_id: str) -> Spec | None:
        """The product's Spec; None for a future whose contract size is unknown (no body loaded)."""
        found = self.specs.get(product_id)
        if found is None and not is_contract(product_id):
            found = self.specs[product_id] = Spec(product_id, None)
        return found

    def load(self, payload: bytes, ts_recv: int) -> tuple[list[Instrument], list[str]]:
        """Read either products body: the instrument records, and why each entry that does not read
        was left out (the body as a whole raises msgspec.DecodeError)."""
        out: list[Instrument] = []
        unreadable: list[str] = []
        advanced = payload.lstrip().startswith(b"{")
        entries = _advanced_products.decode(payload).products if advanced else _exchange_products.decode(payload)
        for raw in entries:
            try:
                contract = None
                if advanced:
                    p = _advanced_product.decode(raw)
                    if p.product_type == "FUTURE" and p.future_product_details is not None:
                        record, contract = _future(p, p.future_product_details, ts_recv)
                    elif p.product_type == "SPOT":
                        record = _spot(p.product_id, p.base_currency_id, p.quote_currency_id,
                                       p.price_increment or p.quote_increment, p.base_increment, p.base_min_size,
                                       p.status or ("trading_disabled" if p.trading_disabled else None), ts_recv)
                    else:
                        raise ValueError(f"product type {p.product_type!r} without details")
                else:
                    e = _exchange_product.decode(raw)
                    record = _spot(e.id, e.base_currency, e.quote_currency, e.quote_increment, e.base_increment,
                                   e.base_min_size, e.status, ts_recv)
            except (msgspec.DecodeError, ValueError, ArithmeticError) as exc:
                unreadable.append(f"{bytes(raw)[:60]!r}: {exc}")
                continue
            self.specs[record.symbol] = Spec(record.instrument, contract)
            out.append(record)
        return out, unreadable
