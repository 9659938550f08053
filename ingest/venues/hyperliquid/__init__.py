"""Hyperliquid perpetuals: the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py), its synthetic market (synthetic.py); parsing is in normalize/venues/hyperliquid/."""

from ingest.venues.hyperliquid.connection import VENUE, HyperliquidConnection
from ingest.venues.hyperliquid.replay import HyperliquidReplay
from ingest.venues.hyperliquid.synthetic import HyperliquidSynthetic
from ingest.venues.interface import VenueSpec
from normalize.venues.hyperliquid import Hyperliquid

SPEC = VenueSpec(VENUE, Hyperliquid, HyperliquidConnection, HyperliquidReplay, HyperliquidSynthetic)
