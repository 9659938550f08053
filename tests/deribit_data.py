"""The bundled Deribit recordings, named once for every test that replays them.

`rest_instruments+config...` holds, verbatim, cryptofeed's `DERIBIT.0` capture: the public/get_instruments
answers for BTC and ETH fetched just before the WebSocket session of 2021-07-22 (and SOL and USDC answers of
2022-05, stamped in the file with 2021 receive times), and its configuration line. The WebSocket dump holds
`book.<option>.raw` and `ticker.<option>.raw` of ten BTC and ETH options for 30 s (trades were subscribed;
none printed).
"""

from __future__ import annotations

from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "deribit"
CRYPTOFEED_WS = DATA / "ws_book_raw+ticker.cryptofeed.DERIBIT.ws.1.0.txt"
CRYPTOFEED_INSTRUMENTS = DATA / "rest_instruments+config.cryptofeed.DERIBIT.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS]
"""One 31 s recorded session (2021-07-22 22:42:03-34 UTC): instruments, then the WebSocket dump."""
CRYPTOFEED_SYMBOLS = ["BTC-24SEP21-8000-P", "BTC-30JUL21-24000-P", "ETH-30JUL21-2800-C", "BTC-31DEC21-34000-P",
                      "BTC-24SEP21-34000-P", "BTC-24JUN22-15000-C", "BTC-31DEC21-300000-C", "ETH-27AUG21-4000-P",
                      "BTC-25MAR22-30000-C", "ETH-23JUL21-2300-C"]
"""The ten options of the session, in the order cryptofeed subscribed them."""
FIXTURES = sorted(DATA.glob("*.tardis-fixture.jsonl"))
