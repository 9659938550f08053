"""OKX v5: the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py); parsing is in normalize/venues/okx/."""

from ingest.venues.interface import VenueSpec
from ingest.venues.okx.connection import VENUE, OkxConnection
from ingest.venues.okx.replay import OkxReplay
from normalize.venues.okx import Okx

SPEC = VenueSpec(VENUE, Okx, OkxConnection, OkxReplay)
