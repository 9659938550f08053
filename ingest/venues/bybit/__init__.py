"""Bybit v5 (linear): the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py), its synthetic market (synthetic.py); parsing is in normalize/venues/bybit/."""

from ingest.venues.bybit.connection import VENUE, BybitConnection
from ingest.venues.bybit.replay import BybitReplay
from ingest.venues.bybit.synthetic import BybitSynthetic
from ingest.venues.interface import VenueSpec
from normalize.venues.bybit import Bybit

SPEC = VenueSpec(VENUE, Bybit, BybitConnection, BybitReplay, BybitSynthetic)
