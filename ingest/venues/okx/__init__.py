"""OKX v5: the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py), its synthetic market (synthetic.py); parsing is in normalize/venues/okx/."""

from ingest.venues.interface import VenueSpec
from ingest.venues.okx.connection import VENUE, OkxConnection
from ingest.venues.okx.replay import OkxReplay
from ingest.venues.okx.synthetic import OkxSynthetic
from normalize.venues.okx import Okx

SPEC = VenueSpec(VENUE, Okx, OkxConnection, OkxReplay, OkxSynthetic)
