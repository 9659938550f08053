"""Deribit: the connection rules (connection.py) and the venue as the replay server speaks it (replay.py);
parsing is in normalize/venues/deribit/."""

from ingest.venues.deribit.connection import VENUE, DeribitConnection
from ingest.venues.deribit.replay import DeribitReplay
from ingest.venues.interface import VenueSpec
from normalize.venues.deribit import Deribit

SPEC = VenueSpec(VENUE, Deribit, DeribitConnection, DeribitReplay)
