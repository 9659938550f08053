"""Binance spot's instruments: ids from symbols (BTCUSDT -> BTC-USDT), and the instrument master from
/api/v3/exchangeInfo (tick and lot sizes from the symbol filters; a spot pair has no multiplier,
expiry or funding: contract size 1, base and quote as listed, settled in the quote asset)."""

from __future__ import annotations

import msgspec

from normalize.flags import FROM_REST
from normalize.records import Instrument
from normalize.venues.binance_spot.wire import MS, VENUE
from normalize.venues.binance_usdm import instruments as usdm

QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "EURI", "AEUR", "IDRT", "BIDR", "BTC", "ETH", "BNB",
          "EUR", "TRY", "BRL", "GBP", "AUD", "JPY", "RUB", "UAH", "ZAR", "ARS", "PLN", "RON", "MXN", "COP", "CZK",
          "NGN", "DAI", "PAX", "XRP", "TRX", "DOGE", "DOT", "VAI", "USD1")
"""Quote assets, for ids without exchangeInfo (longest first where one ends another: FDUSD before
USD...). Symbols whose quote is not listed keep their venue symbol as id until exchangeInfo names
their assets."""


def instrument_id(symbol: str) -> str:
    """Normalized id without metadata: BTCUSDT -> BTC-USDT, BLZETH -> BLZ-ETH."""
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}-{quote}"
    return symbol


def venue_symbol(instrument: str) -> str:
    """The inverse of instrument_id: BTC-USDT -> BTCUSDT."""
    parts = instrument.split("-")
    if len(parts) == 2 and all(parts):
        return "".join(parts)
    raise ValueError(f"binance-spot lists spot pairs BASE-QUOTE (BTC-USDT), not {instrument}")


class InstrumentMaster(usdm.InstrumentMaster):
    """Symbol -> normalized id, from exchangeInfo once loaded (no funding intervals on spot)."""

    def instrument(self, symbol: str) -> str:
        found = self.ids.get(symbol)
        if found is None:
            found = self.ids[symbol] = instrument_id(symbol)
        return found


_exchange_info = msgspec.json.Decoder(usdm.ExchangeInfo)
_symbol_info = msgspec.json.Decoder(usdm.SymbolInfo)


def _instrument(s: usdm.SymbolInfo, ts_event: int, ts_recv: int) -> Instrument:
    filters = {f.filterType: f for f in s.filters}
    lot = filters.get("LOT_SIZE")
    price = filters.get("PRICE_FILTER")
    return Instrument(
        venue=VENUE, symbol=s.symbol, instrument=f"{s.baseAsset}-{s.quoteAsset}", ts_event=ts_event,
        ts_recv=ts_recv, ts_exch=None, exch_seq=None, flags=FROM_REST, kind="spot", base=s.baseAsset,
        quote=s.quoteAsset, settle=s.quoteAsset, inverse=False, contract_size=1.0,
        tick_size=usdm._decimal(price.tickSize if price else None),
        lot_size=usdm._decimal(lot.stepSize if lot else None),
        min_size=usdm._decimal(lot.minQty) if lot and lot.minQty is not None else None,
        funding_interval_s=None, expiry_ts=None, status=s.status)


def exchange_info_instruments(body: bytes, ts_recv: int) -> tuple[list[Instrument], list[str]]:
    """Instrument records of every symbol of an exchangeInfo body, and why each entry that does not
    read was left out (the body as a whole raises msgspec.DecodeError)."""
    info = _exchange_info.decode(body)
    ts_event = (info.serverTime if info.serverTime is not None else ts_recv // MS) * MS
    out, unreadable = [], []
    for raw in info.symbols:
        try:
            out.append(_instrument(_symbol_info.decode(raw), ts_event, ts_recv))
        except (msgspec.DecodeError, ValueError, OverflowError) as exc:
            unreadable.append(f"{bytes(raw)[:60]!r}: {exc}")
    return out, unreadable
