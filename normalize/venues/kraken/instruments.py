"""Kraken spot pair names, ids and the instrument master (REST GET /0/public/AssetPairs, and the v2
`instrument` channel).

Kraken writes bitcoin XBT and dogecoin XDG in v1 and in AssetPairs' `wsname` (`XBT/USD`), and BTC
and DOGE in v2 (`BTC/USD`). ticklake's venue symbol is the v2 name, whatever protocol the frame
came on, so a v1 capture and a v2 live feed file the same pair under one symbol; the instrument id
is the pair with a dash: XBT/USD -> BTC/USD -> BTC-USD. Sizes are base units.

A sample of the AssetPairs body (one entry of `result`, 2021):
  "XBTCHF":{"altname":"XBTCHF","wsname":"XBT\\/CHF","base":"XXBT","quote":"CHF","pair_decimals":1,
   "lot_decimals":8,"lot_multiplier":1,"ordermin":"0.0002",...}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from normalize.flags import FROM_REST, TS_EVENT_IMPUTED
from normalize.records import Instrument
from normalize.venues.kraken.wire import VENUE, V2Pair

_V2_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
"""v1/AssetPairs asset codes that v2 writes otherwise."""


def v2_symbol(pair: str) -> str:
    """XBT/USD -> BTC/USD (v1 and wsname to v2); a v2 name is returned as it is."""
    base, slash, quote = pair.partition("/")
    if not slash or not base or not quote:
        raise ValueError(f"{pair!r} is no Kraken pair name (BASE/QUOTE)")
    return f"{_V2_ASSETS.get(base, base)}/{_V2_ASSETS.get(quote, quote)}"


def instrument_id(symbol: str) -> str:
    """BTC/USD -> BTC-USD."""
    return symbol.replace("/", "-")


def venue_symbol(instrument: str) -> str:
    """The inverse of instrument_id: BTC-USD -> BTC/USD (spot pairs only)."""
    parts = instrument.split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"kraken lists spot pairs (BTC-USD), not {instrument}")
    return "/".join(parts)


class _Pair(msgspec.Struct, frozen=True):
    wsname: str = ""  # XBT/USD; absent for dark-pool pairs (.d)
    pair_decimals: int = 0  # price decimals
    lot_decimals: int = 0  # volume decimals
    ordermin: str = ""  # minimum order volume
    tick_size: str = ""  # newer bodies
    status: str = ""  # newer bodies: online, cancel_only, ...


class _Body(msgspec.Struct, frozen=True):
    error: list[str]
    result: dict[str, _Pair] = {}


_body = msgspec.json.Decoder(_Body)


@dataclass
class InstrumentMaster:
    """v2 symbol -> instrument record, from AssetPairs or the instrument channel."""

    instruments: dict[str, Instrument] = field(default_factory=dict)

    def load_asset_pairs(self, payload: bytes, ts_recv: int) -> list[Instrument]:
        body = _body.decode(payload)
        if body.error:
            raise ValueError(f"AssetPairs error {body.error}")
        out = []
        for pair in body.result.values():
            if not pair.wsname:
                continue
            symbol = v2_symbol(pair.wsname)
            base, quote = symbol.split("/")
            tick = float(pair.tick_size) if pair.tick_size else 10.0 ** -pair.pair_decimals
            lot = 10.0 ** -pair.lot_decimals
            out.append(self._add(Instrument(
                VENUE, symbol, instrument_id(symbol), ts_recv, ts_recv, None, None, FROM_REST | TS_EVENT_IMPUTED,
                "spot", base, quote, quote, False, 1.0, tick, lot, float(pair.ordermin) if pair.ordermin else None,
                None, None, pair.status or None)))
        return out

    def load_pairs(self, pairs: list[V2Pair], ts_recv: int) -> list[Instrument]:
        """The v2 `instrument` channel's pairs (no time in the message: TS_EVENT_IMPUTED)."""
        out = []
        for pair in pairs:
            if pair.price_increment is None or pair.qty_increment is None:
                raise ValueError(f"instrument {pair.symbol} without price or quantity increment")
            out.append(self._add(Instrument(
                VENUE, pair.symbol, instrument_id(pair.symbol), ts_recv, ts_recv, None, None, TS_EVENT_IMPUTED,
                "spot", pair.base, pair.quote, pair.quote, False, 1.0, pair.price_increment, pair.qty_increment,
                pair.qty_min, None, None, pair.status or None)))
        return out

    def _add(self, record: Instrument) -> Instrument:
        self.instruments[record.symbol] = record
        return record
