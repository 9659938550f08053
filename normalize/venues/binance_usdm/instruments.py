"""Binance USD-M's instruments: ids from symbols, and the instrument master from exchangeInfo and
fundingInfo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from normalize.decimals import parse_decimals
from normalize.flags import FROM_REST
from normalize.records import Instrument
from normalize.venues.binance_usdm.wire import MS, VENUE

DEFAULT_FUNDING_INTERVAL_S = 8 * 3600

CONTRACT_KINDS = {
    "PERPETUAL": "perpetual", "PERPETUAL_DELIVERING": "perpetual", "TRADIFI_PERPETUAL": "perpetual",
    "CURRENT_MONTH": "future", "NEXT_MONTH": "future", "CURRENT_QUARTER": "future", "NEXT_QUARTER": "future",
}
"""exchangeInfo `contractType` -> instrument kind. TRADIFI_PERPETUAL (gold, silver, equities, since
2026) is a perpetual like any other for market data; checked 2026-12-07 (docs/venues.md)."""
_QUOTES = ("USDT", "BUSD", "USDC", "FDUSD")


def instrument_id(symbol: str) -> str:
    """Normalized id without metadata: BTCUSDT -> BTC-USDT-PERP, BTCUSDT_210326 -> BTC-USDT-20210326."""
    pair, _, expiry = symbol.partition("_")
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            return f"{base}-{quote}-{'20' + expiry if expiry else 'PERP'}"
    return symbol


@dataclass
class InstrumentMaster:
    """Symbol -> normalized id (from /fapi/v1/exchangeInfo) and funding interval (from
    /fapi/v1/fundingInfo, which lists only the symbols off the 8 h default)."""

    ids: dict[str, str] = field(default_factory=dict)
    funding_interval_s: dict[str, int] = field(default_factory=dict)

    def instrument(self, symbol: str) -> str:
        found = self.ids.get(symbol)
        if found is None:
            found = self.ids[symbol] = instrument_id(symbol)
        return found


class SymbolFilter(msgspec.Struct, frozen=True):
    """One entry of a symbol's `filters` (only what the instrument record needs)."""

    filterType: str
    tickSize: str | None = None  # PRICE_FILTER
    stepSize: str | None = None  # LOT_SIZE
    minQty: str | None = None  # LOT_SIZE


class SymbolInfo(msgspec.Struct, frozen=True):
    """One entry of exchangeInfo's `symbols`."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    contractType: str = ""
    marginAsset: str | None = None
    status: str | None = None
    deliveryDate: int = 0
    filters: list[SymbolFilter] = []


class ExchangeInfo(msgspec.Struct, frozen=True):
    """Symbols stay raw: one that does not read is reported, and the others are kept."""

    symbols: list[msgspec.Raw]
    serverTime: int | None = None


_exchange_info = msgspec.json.Decoder(ExchangeInfo)
_symbol_info = msgspec.json.Decoder(SymbolInfo)


def _decimal(text: str | None) -> float:
    """A filter's decimal text; nan where the venue gives none."""
    return float("nan") if text is None else parse_decimals(text)[0]


def _instrument(s: SymbolInfo, kind: str, ts_event: int, ts_recv: int, funding_interval_s: Mapping[str, int]
                ) -> Instrument:
    filters = {f.filterType: f for f in s.filters}
    expiry = None
    suffix = "PERP"
    if kind == "future":
        expiry = s.deliveryDate * MS
        suffix = dt.datetime.fromtimestamp(s.deliveryDate / 1000, dt.UTC).strftime("%Y%m%d")
    lot = filters.get("LOT_SIZE")
    return Instrument(
        venue=VENUE, symbol=s.symbol, instrument=f"{s.baseAsset}-{s.quoteAsset}-{suffix}",
        ts_event=ts_event, ts_recv=ts_recv, ts_exch=None, exch_seq=None, flags=FROM_REST, kind=kind,
        base=s.baseAsset, quote=s.quoteAsset, settle=s.marginAsset or s.quoteAsset, inverse=False,
        contract_size=1.0,
        tick_size=_decimal(filters["PRICE_FILTER"].tickSize if "PRICE_FILTER" in filters else None),
        lot_size=_decimal(lot.stepSize if lot else None),
        min_size=_decimal(lot.minQty) if lot and lot.minQty is not None else None,
        funding_interval_s=(funding_interval_s.get(s.symbol, DEFAULT_FUNDING_INTERVAL_S)
                            if kind == "perpetual" else None),
        expiry_ts=expiry, status=s.status,
    )


def exchange_info_instruments(body: bytes, ts_recv: int, funding_interval_s: Mapping[str, int]
                              ) -> tuple[list[Instrument], list[str]]:
    """Instrument records from an exchangeInfo body (perpetuals and dated futures that trade);
    perpetuals fund every `funding_interval_s[symbol]`, else every 8 h. Also why each symbol entry
    that does not read was left out (the body as a whole raises msgspec.DecodeError)."""
    info = _exchange_info.decode(body)
    ts_event = (info.serverTime if info.serverTime is not None else ts_recv // MS) * MS
    out, unreadable = [], []
    for raw in info.symbols:
        try:
            s = _symbol_info.decode(raw)
            kind = CONTRACT_KINDS.get(s.contractType)
            if kind is not None:
                out.append(_instrument(s, kind, ts_event, ts_recv, funding_interval_s))
        except (msgspec.DecodeError, ValueError, OverflowError, OSError) as exc:
            unreadable.append(f"{bytes(raw)[:60]!r}: {exc}")
    return out, unreadable


def venue_symbol(instrument: str) -> str:
    """The inverse of instrument_id: BTC-USDT-PERP -> BTCUSDT, BTC-USDT-20250328 -> BTCUSDT_250328."""
    base, _, rest = instrument.partition("-")
    quote, _, kind = rest.partition("-")
    if quote in _QUOTES and kind == "PERP":
        return f"{base}{quote}"
    if quote in _QUOTES and len(kind) == 8 and kind.isdigit():
        return f"{base}{quote}_{kind[2:]}"
    raise ValueError(f"binance-usdm lists perpetuals and dated futures quoted in {', '.join(_QUOTES)} "
                     f"(BTC-USDT-PERP, BTC-USDT-20250328), not {instrument}")
