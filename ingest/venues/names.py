"""Standard names where a user types them: instruments by normalized id or by the venue's symbol,
channels by standard name or by the venue's own.

Standard channels: trades, book, bbo, funding, mark_index, open_interest, liquidations. Each venue's
connection maps them to its channels (`standard_channels`; a standard name the venue carries on no
channel of its own, such as Binance's REST-polled open interest, maps to none) and instrument ids
to its symbols (`symbol_of`). Anything that is neither a standard name nor one of the venue's own
is an error listing the valid choices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ingest.venues.interface import VenueConnection

STANDARD_CHANNELS = ("trades", "book", "bbo", "funding", "mark_index", "open_interest", "liquidations")
INSTRUMENT_ID = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+(:[A-Z0-9]+)?(-(PERP|\d{8})|-\d{8}-\d+(\.\d+)?-[CP])?$")
"""BTC-USDT-PERP, BTC-USD-PERP, BTC-USDT (spot), BTC-USD-20250328, BTC-USD-20250328-60000-C; a
contract that settles otherwise than a venue's other contract of the same base, quote and kind
writes its settlement currency after the quote (Kraken Futures' multi-collateral BTC-USD:USD-PERP
beside the inverse BTC-USD-PERP)."""


class UnknownInstrument(ValueError):
    """An instrument the venue's naming cannot express: a user's mistake, worded with the forms."""


def venue_channels(connection: type[VenueConnection], names: Iterable[str]) -> tuple[str, ...]:
    """The venue channels for standard names, in order, once each; other names are taken as the
    venue's own (its connection checks them)."""
    mapping = connection.standard_channels
    out: list[str] = []
    for name in names:
        out += mapping.get(name, (name,))
    return tuple(dict.fromkeys(out))


def venue_symbols(connection: type[VenueConnection], names: Sequence[str]) -> list[str]:
    """Venue symbols for normalized ids (BTC-USDT-PERP) and for symbols given as the venue writes them;
    UnknownInstrument for an id the venue's naming cannot express."""
    try:
        return [connection.symbol_of(name) if INSTRUMENT_ID.match(name) else name for name in names]
    except ValueError as exc:
        raise UnknownInstrument(str(exc)) from None
