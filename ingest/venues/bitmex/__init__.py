"""BitMEX: the connection rules (connection.py) and the venue as the replay server speaks it (replay.py);
parsing is in normalize/venues/bitmex/."""

from ingest.venues.bitmex.connection import VENUE, BitmexConnection
from ingest.venues.bitmex.replay import BitmexReplay
from ingest.venues.interface import VenueSpec
from normalize.venues.bitmex import Bitmex

SPEC = VenueSpec(VENUE, Bitmex, BitmexConnection, BitmexReplay)
