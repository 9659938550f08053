"""The venues ticklake speaks: adding one is one line here (see ingest/venues/interface.py)."""

from __future__ import annotations

from collections.abc import Callable

from ingest.venues import (
    binance_spot,
    binance_usdm,
    bitmex,
    bybit,
    coinbase,
    deribit,
    hyperliquid,
    kraken,
    kraken_futures,
    okx,
)
from ingest.venues.interface import ReplayProtocol, VenueConnection, VenueSpec
from normalize.venues.interface import VenueNormalizer

VENUES: dict[str, VenueSpec] = {spec.venue: spec for spec in (
    binance_usdm.SPEC,
    binance_spot.SPEC,
    bitmex.SPEC,
    bybit.SPEC,
    coinbase.SPEC,
    deribit.SPEC,
    hyperliquid.SPEC,
    kraken.SPEC,
    kraken_futures.SPEC,
    okx.SPEC,
)}
NORMALIZERS: dict[str, Callable[[], VenueNormalizer]] = {venue: spec.normalizer for venue, spec in VENUES.items()}
CONNECTIONS: dict[str, type[VenueConnection]] = {venue: spec.connection for venue, spec in VENUES.items()}
PROTOCOLS: dict[str, type[ReplayProtocol]] = {venue: spec.replay for venue, spec in VENUES.items()}
