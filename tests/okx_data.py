"""The bundled OKX recordings, named once for every test that replays them.

`rest_instruments_spot+swap+futures...` holds, verbatim, the last SPOT, SWAP and FUTURES
`/api/v5/public/instruments` responses of cryptofeed's `OKX.0` capture (fetched one second before
the WebSocket session) and its configuration line; the option pages are left out.
"""

from __future__ import annotations

import json

from ingest.capture_formats import read_capture
from ingest.frames import Frame
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "okx"
CRYPTOFEED_WS = DATA / "ws_books+trades+tickers.cryptofeed.OKX.ws.1.0.txt"
CRYPTOFEED_INSTRUMENTS = DATA / "rest_instruments_spot+swap+futures.cryptofeed.OKX.0.txt"
CRYPTOFEED_RUN = [CRYPTOFEED_INSTRUMENTS, CRYPTOFEED_WS]
"""One 11 s recorded session (2022-05-13): instrument metadata, then the WebSocket dump."""
CRYPTOFEED_SYMBOLS = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
"""An inverse future, an inverse swap and a spot pair."""


def instrument_entries() -> dict[str, dict[str, str]]:
    """instId -> its entry in the captured instruments bodies."""
    entries: dict[str, dict[str, str]] = {}
    for frame in read_capture(CRYPTOFEED_INSTRUMENTS):
        for entry in json.loads(frame.payload)["data"]:
            entries[entry["instId"]] = entry
    return entries


def sibling_instruments(pairs: dict[str, str]) -> Frame:
    """An instruments body for expired futures that the 2022 capture no longer lists, each given
    the real entry of a listed expiry of the same family (`{missing: sibling}`): OKX lists every
    expiry of a family with one contract size, which the tests check on the capture itself."""
    entries = instrument_entries()
    data = [entries[sibling] | {"instId": missing, "expTime": "", "alias": ""} for missing, sibling in pairs.items()]
    body = json.dumps({"code": "0", "data": data, "msg": ""}).encode()
    return Frame(0, "rest", body, url="https://www.okx.com/api/v5/public/instruments?instType=FUTURES")
