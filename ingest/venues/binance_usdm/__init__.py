"""Binance USD-M futures: the connection rules (connection.py) and the venue as the replay server speaks it
(replay.py), its synthetic market (synthetic.py); parsing is in normalize/venues/binance_usdm/."""

from ingest.venues.binance_usdm.connection import VENUE, BinanceUsdmConnection
from ingest.venues.binance_usdm.replay import BinanceUsdmReplay
from ingest.venues.binance_usdm.synthetic import BinanceUsdmSynthetic
from ingest.venues.interface import VenueSpec
from normalize.venues.binance_usdm import BinanceUsdm

SPEC = VenueSpec(VENUE, BinanceUsdm, BinanceUsdmConnection, BinanceUsdmReplay, BinanceUsdmSynthetic)
