"""Binance spot: the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py); parsing is in normalize/venues/binance_spot/."""

from ingest.venues.binance_spot.connection import VENUE, BinanceSpotConnection
from ingest.venues.binance_spot.replay import BinanceSpotReplay
from ingest.venues.interface import VenueSpec
from normalize.venues.binance_spot import BinanceSpot

SPEC = VenueSpec(VENUE, BinanceSpot, BinanceSpotConnection, BinanceSpotReplay)
