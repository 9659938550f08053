"""Kraken spot: the connection rules (connection.py, WebSocket v2) and the venue as the replay server
speaks it (replay.py, v2 and v1); parsing of both versions is in normalize/venues/kraken/."""

from ingest.venues.interface import VenueSpec
from ingest.venues.kraken.connection import VENUE, KrakenConnection
from ingest.venues.kraken.replay import KrakenReplay
from normalize.venues.kraken import Kraken

SPEC = VenueSpec(VENUE, Kraken, KrakenConnection, KrakenReplay)
