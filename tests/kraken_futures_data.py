"""The bundled Kraken Futures recordings (REAL, cryptofeed 2021-07-22: the instruments body and 30 s
of the v1 WebSocket, book + trade + ticker_lite for 10 inverse products), named once for every test
that replays them; see /work/shared/samples/PROVENANCE.md."""

from __future__ import annotations

from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "kraken_futures"
INSTRUMENTS = DATA / "rest_instruments+config.cryptofeed.KRAKEN_FUTURES.0.txt"
WS = DATA / "ws_book+ticker+trade.cryptofeed.KRAKEN_FUTURES.ws.1.0.txt"
RUN = [INSTRUMENTS, WS]
SYMBOLS = ["FI_ETHUSD_211231", "PI_XRPUSD", "PI_LTCUSD", "FI_BCHUSD_210730", "PI_ETHUSD", "FI_XBTUSD_210924",
           "FI_ETHUSD_210730", "FI_BCHUSD_210924", "FI_XRPUSD_210924", "FI_XBTUSD_210730"]
"""The recorded products: 3 inverse perpetuals and 7 inverse futures."""
