"""The bundled Kraken spot recordings, an independent book rebuild, and the capture in v2 form.

`ws_*.cryptofeed.KRAKEN.ws.4[89].0.txt` and `ws.50.0` are REAL v1 recordings (cryptofeed, 2021-04-17,
three connections of one run: trades, tickers, book-1000 for 10 pairs) and the AssetPairs body of
the same run; see /work/shared/samples/PROVENANCE.md. No real v2 recording exists, so
`ws_book+trade+ticker.v2-GENERATED-from-the-v1-capture.txt` is GENERATED from them by
`v2_frames()` below (a test checks the file is what it generates): the same messages at the same
receive times in the v2 form Kraken documents, level text kept exactly as recorded (v2 writes it
as JSON numbers with full precision), update checksums the recorded ones, snapshot checksums
computed by the independent `DecimalBook` (v2 sends one on snapshots too, v1 did not), trade ids
SYNTHETIC (v1 trades have none: 1, 2, ... per pair), ticker fields the v1 ticker's. The handler
speaks v2, so the replay tests play this file.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from decimal import Decimal

from ingest.capture_formats import read_frames
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "kraken"
BOOK_V1 = DATA / "ws_book1000.cryptofeed.KRAKEN.ws.50.0.txt"
TRADE_V1 = DATA / "ws_trade.cryptofeed.KRAKEN.ws.48.0.txt"
TICKER_V1 = DATA / "ws_ticker.cryptofeed.KRAKEN.ws.49.0.txt"
ASSET_PAIRS = DATA / "rest_AssetPairs+config.cryptofeed.KRAKEN.0.txt"
V1_RUN = [ASSET_PAIRS, BOOK_V1, TRADE_V1, TICKER_V1]
V2_GENERATED = DATA / "ws_book+trade+ticker.v2-GENERATED-from-the-v1-capture.txt"
V2_RUN = [ASSET_PAIRS, V2_GENERATED]
PAIRS_V1 = ["WAVES/EUR", "XMR/USD", "KSM/XBT", "GRT/ETH", "SC/EUR", "ETH/CHF", "OCEAN/XBT", "OMG/USD", "XBT/CHF",
            "ADA/XBT"]
SYMBOLS = [p.replace("XBT", "BTC") for p in PAIRS_V1]
"""The v2 names of the 10 recorded pairs."""


class DecimalBook:
    """Kraken's book rebuilt with Decimal from the venue's text, independently of the normalizer:
    apply, cut to the depth, and the documented checksum."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}

    def apply(self, side: str, levels: list[list[str]]) -> None:
        book = self.bids if side == "b" else self.asks
        for level in levels:
            price, qty = level[0], level[1]
            if Decimal(qty) == 0:
                book.pop(Decimal(price), None)
            else:
                book[Decimal(price)] = (price, qty)

    def truncate(self) -> None:
        self.bids = dict(sorted(self.bids.items(), reverse=True)[:self.depth])
        self.asks = dict(sorted(self.asks.items())[:self.depth])

    def top(self, side: str, n: int) -> list[tuple[str, str]]:
        book = self.bids if side == "b" else self.asks
        return [book[p] for p in sorted(book, reverse=side == "b")[:n]]

    def checksum(self) -> int:
        def digits(text: str) -> str:
            return text.replace(".", "").lstrip("0")
        text = "".join(digits(p) + digits(q) for p, q in self.top("a", 10) + self.top("b", 10))
        return zlib.crc32(text.encode())


def _iso(seconds: str) -> str:
    whole, _, fraction = seconds.partition(".")
    stamp = dt.datetime.fromtimestamp(int(whole), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction.ljust(6, '0')}Z"


def _levels(levels: list[list[str]]) -> str:
    return "[" + ",".join(f'{{"price":{level[0]},"qty":{level[1]}}}' for level in levels) + "]"


def v2_frames() -> list[tuple[int, str]]:
    """(receive time ns, v2 frame) for every market data frame and book heartbeat of the v1 run."""
    books: dict[str, DecimalBook] = {}
    trade_ids: dict[str, int] = {}
    out: list[tuple[int, str]] = []
    for frame in read_frames([BOOK_V1, TRADE_V1, TICKER_V1]):
        message = json.loads(frame.payload)
        if isinstance(message, dict):
            if message.get("event") == "heartbeat" and frame.connection_id.startswith(BOOK_V1.name):
                out.append((frame.ts_recv, '{"channel":"heartbeat"}'))
            continue
        name, symbol = message[-2], message[-1].replace("XBT", "BTC")
        if name.startswith("book-"):
            parts = message[1:-2]
            book = books.setdefault(symbol, DecimalBook(int(name[5:])))
            if "as" in parts[0] or "bs" in parts[0]:
                asks, bids = parts[0].get("as", []), parts[0].get("bs", [])
                book.bids.clear()
                book.asks.clear()
                book.apply("a", asks)
                book.apply("b", bids)
                book.truncate()
                out.append((frame.ts_recv, f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}",'
                                           f'"bids":{_levels(bids)},"asks":{_levels(asks)},'
                                           f'"checksum":{book.checksum()}}}]}}'))
                continue
            asks = [level for part in parts for level in part.get("a", [])]
            bids = [level for part in parts for level in part.get("b", [])]
            stamp = max((level[2] for level in asks + bids), key=Decimal)
            out.append((frame.ts_recv, f'{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}",'
                                       f'"bids":{_levels(bids)},"asks":{_levels(asks)},'
                                       f'"checksum":{int(parts[-1]["c"])},"timestamp":"{_iso(stamp)}"}}]}}'))
        elif name == "trade":
            data = []
            for price, volume, stamp, side, kind, *_ in message[1]:
                trade_ids[symbol] = trade_ids.get(symbol, 0) + 1
                data.append(f'{{"symbol":"{symbol}","side":"{"buy" if side == "b" else "sell"}","price":{price},'
                            f'"qty":{volume},"ord_type":"{"market" if kind == "m" else "limit"}",'
                            f'"trade_id":{trade_ids[symbol]},"timestamp":"{_iso(stamp)}"}}')
            out.append((frame.ts_recv, f'{{"channel":"trade","type":"update","data":[{",".join(data)}]}}'))
        elif name == "ticker":
            t = message[1]
            out.append((frame.ts_recv, f'{{"channel":"ticker","type":"update","data":[{{"symbol":"{symbol}",'
                                       f'"bid":{t["b"][0]},"bid_qty":{t["b"][2]},"ask":{t["a"][0]},'
                                       f'"ask_qty":{t["a"][2]},"last":{t["c"][0]},"volume":{t["v"][1]},'
                                       f'"vwap":{t["p"][1]},"low":{t["l"][1]},"high":{t["h"][1]}}}]}}'))
    return out


def v2_capture_text() -> str:
    """The generated file's text: a cryptofeed-style dump (`<seconds>: <frame>` lines)."""
    lines = ["wss://ws.kraken.com/v2 <-> 1618678132.3858151"]
    lines += [f"{ts // 10**9}.{ts % 10**9:09d}: {text}" for ts, text in v2_frames()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m tests.kraken_data: write the generated v2 file
    V2_GENERATED.write_text(v2_capture_text())
