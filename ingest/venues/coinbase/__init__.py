"""Coinbase: the connection rules of both public protocols (connection.py; Advanced Trade by default)
and the venue as the replay server speaks it (replay.py); parsing is in normalize/venues/coinbase/."""

from ingest.venues.coinbase.connection import VENUE, CoinbaseConnection
from ingest.venues.coinbase.replay import CoinbaseReplay
from ingest.venues.interface import VenueSpec
from normalize.venues.coinbase import Coinbase

SPEC = VenueSpec(VENUE, Coinbase, CoinbaseConnection, CoinbaseReplay)
