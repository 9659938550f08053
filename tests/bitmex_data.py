"""The bundled BitMEX recordings, named once for every test that replays them.

`rest_instrument_active+config...` holds, verbatim, cryptofeed's `BITMEX.0` capture: the
/api/v1/instrument/active answer fetched just before the WebSocket session of 2021-07-22 (34 instruments with
their multipliers) and its configuration line. The WebSocket dump holds `orderBookL2`, `quote` and `trade`
of ten symbols for 30.6 s: inverse (XBTUSD), quanto (BCHUSD, UNIUSDT, ADAUSDT, SOLUSDT, EOSUSDT, TRXUSDT,
MATICUSDT) and linear futures quoted in XBT (XRPU21, TRXU21). In 2021 book rows carried no timestamp, and
updates and deletes no price (ids encoded it).
"""

from __future__ import annotations

from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "bitmex"
CRYPTOFEED_WS = DATA / "ws_orderBookL2+quote+trade.cryptofeed.BITMEX.ws.1.0.txt"
CRYPTOFEED_INSTRUMENTS = DATA / "rest_instrument_active+config.cryptofeed.BITMEX.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS]
"""One 30.6 s recorded session (2021-07-22 22:36:07-38 UTC): instruments, then the WebSocket dump."""
CRYPTOFEED_SYMBOLS = ["XRPU21", "UNIUSDT", "XBTUSD", "ADAUSDT", "SOLUSDT", "TRXU21", "EOSUSDT", "TRXUSDT", "BCHUSD",
                      "MATICUSDT"]
"""The ten symbols of the session, in the order cryptofeed subscribed them."""
FIXTURES = sorted(DATA.glob("*.tardis-fixture.jsonl"))
