"""Kraken Futures (Derivatives WebSocket v1, switched off on 2027-03-01): the connection rules
(connection.py) and the venue as the replay server speaks it (replay.py); parsing is in
normalize/venues/kraken_futures/."""

from ingest.venues.interface import VenueSpec
from ingest.venues.kraken_futures.connection import VENUE, KrakenFuturesConnection
from ingest.venues.kraken_futures.replay import KrakenFuturesReplay
from normalize.venues.kraken_futures import KrakenFutures

SPEC = VenueSpec(VENUE, KrakenFutures, KrakenFuturesConnection, KrakenFuturesReplay)
