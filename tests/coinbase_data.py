"""The bundled real Coinbase recording (the Exchange feed, 2021), named once for every test, and what
the tests derive from it: the same events in Advanced Trade's message shapes (no real Advanced Trade
recording exists), and a products body in Advanced Trade's documented shape."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "coinbase"
CAPTURE = DATA / "ws_level2+ticker+match.cryptofeed.COINBASE.ws.28.0.txt"
PRODUCTS = DATA / "rest_products+config.cryptofeed.COINBASE.0.txt"
RUN = [PRODUCTS, CAPTURE]
"""31 s of 10 products on 2021-04-17 (level2, matches, ticker; the Exchange feed) and the Exchange's
/products body of the same run."""
PRODUCT_IDS = ["SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP", "CRV-EUR",
               "SKL-GBP"]
EPOCH = "1970-01-01T00:00:00Z"


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


def advanced_trade(frames: Iterable[Frame]) -> list[Frame]:
    """The capture's events restated as Advanced Trade messages of one connection, numbered by
    sequence_num from 0: level2 as l2_data (sides bid/offer), matches as market_trades (side the
    taker's: the other side of the maker's), tickers as ticker; a snapshot, which has no time, is
    stamped with its receive time. The recorded subscription acks are left out."""
    out = []
    for frame in frames:
        if frame.kind != "ws":
            out.append(frame)
            continue
        m = json.loads(frame.payload)
        kind, timestamp = m["type"], m.get("time") or _iso(frame.ts_recv)
        if kind == "snapshot":
            updates = [{"side": side, "event_time": EPOCH, "price_level": p, "new_quantity": q}
                       for side, levels in (("bid", m["bids"]), ("offer", m["asks"])) for p, q in levels]
            body = ("l2_data", [{"type": "snapshot", "product_id": m["product_id"], "updates": updates}])
        elif kind == "l2update":
            updates = [{"side": "bid" if side == "buy" else "offer", "event_time": m["time"], "price_level": p,
                        "new_quantity": q} for side, p, q in m["changes"]]
            body = ("l2_data", [{"type": "update", "product_id": m["product_id"], "updates": updates}])
        elif kind in ("match", "last_match"):
            trade = {"trade_id": str(m["trade_id"]), "product_id": m["product_id"], "price": m["price"],
                     "size": m["size"], "side": "SELL" if m["side"] == "buy" else "BUY", "time": m["time"]}
            body = ("market_trades", [{"type": "snapshot" if kind == "last_match" else "update", "trades": [trade]}])
        elif kind == "ticker":
            ticker = {"type": "ticker", "product_id": m["product_id"], "price": m["price"], "best_bid": m["best_bid"],
                      "best_ask": m["best_ask"]}
            body = ("ticker", [{"type": "update", "tickers": [ticker]}])
        elif kind == "subscriptions":
            continue  # the venue's answer to the recorder's subscription: a replay server answers its own
        else:
            raise ValueError(kind)
        channel, events = body
        payload = {"channel": channel, "client_id": "", "timestamp": timestamp, "sequence_num": len(out),
                   "events": events}
        out.append(Frame(frame.ts_recv, "ws", json.dumps(payload, separators=(",", ":")).encode(), frame.url,
                         frame.connection_id))
    return _renumber(out)


def _renumber(frames: list[Frame]) -> list[Frame]:
    """sequence_num 0, 1, ... over the WebSocket frames (REST frames are not counted)."""
    out, number = [], 0
    for frame in frames:
        if frame.kind == "ws":
            m = json.loads(frame.payload)
            m["sequence_num"] = number
            number += 1
            frame = Frame(frame.ts_recv, "ws", json.dumps(m, separators=(",", ":")).encode(), frame.url,
                          frame.connection_id)
        out.append(frame)
    return out


def advanced_trade_run() -> list[Frame]:
    return advanced_trade(read_frames([CAPTURE]))


def products_body() -> bytes:
    """Advanced Trade's public products list in its documented shape: a spot product and two
    Coinbase Derivatives futures (an expiring nano BTC future and a perpetual-style one)."""
    def future(product_id: str, expiry: str, funding: str | None, size: str) -> dict[str, object]:
        return {"product_id": product_id, "price": "68930", "base_increment": "1", "quote_increment": "0.01",
                "base_min_size": "1", "base_max_size": "5000", "status": "", "trading_disabled": False,
                "product_type": "FUTURE", "quote_currency_id": "USD", "base_currency_id": "", "price_increment": "5",
                "display_name": product_id, "product_venue": "FCM",
                "future_product_details": {"venue": "cde", "contract_code": product_id[:3], "contract_expiry": expiry,
                                           "contract_size": size, "contract_root_unit": "BTC",
                                           "contract_expiry_type": "EXPIRING", "funding_interval": funding}}
    spot = {"product_id": "BTC-USD", "price": "68930.01", "base_increment": "0.00000001", "quote_increment": "0.01",
            "base_min_size": "0.00000001", "base_max_size": "3400", "status": "online", "trading_disabled": False,
            "product_type": "SPOT", "quote_currency_id": "USD", "base_currency_id": "BTC", "price_increment": "0.01",
            "product_venue": "CBE"}
    products = [spot, future("BIT-24APR26-CDE", "2026-04-24T15:00:00Z", None, "0.01"),
                future("BIP-20DEC30-CDE", "2030-12-20T16:00:00Z", "3600s", "0.01")]
    return json.dumps({"products": products, "num_products": len(products), "pagination": None}).encode()


def products_frame(ts_recv: int = 0) -> Frame:
    return Frame(ts_recv, "rest", products_body(), url="https://api.coinbase.com/api/v3/brokerage/market/products")
