"""The Binance spot normalizer: frames in receive order -> contract records (the channels are
described in the package docstring). It is Binance USD-M's normalizer with spot's messages and
rules: the trade paths (id continuity, aggTrades backfill), the depth state machine and the REST
snapshot handling are shared, the sync rules come from spot's BookSync, and spot's bookTicker,
exchangeInfo and REST paths are read here."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import msgspec

from normalize.decimals import parse_decimals
from normalize.emitted import DeadLetter, Emitted
from normalize.flags import INEXACT, LAST, TS_EVENT_IMPUTED
from normalize.records import Bbo
from normalize.venues.binance_spot.book_sync import BookSync
from normalize.venues.binance_spot.instruments import InstrumentMaster, exchange_info_instruments
from normalize.venues.binance_spot.wire import (
    BOOK_TICKER_STREAM,
    VENUE,
    AggTrade,
    DepthUpdate,
    RawTrade,
    agg_trades_decoder,
    bare_book_ticker_decoder,
    bare_event_decoder,
    book_ticker_decoder,
    combined_decoder,
    snapshot_decoder,
)
from normalize.venues.binance_usdm.normalizer import BinanceUsdm


class BinanceSpot(BinanceUsdm):
    """The Binance spot normalizer: feed it frames in receive order; it keeps one book per symbol."""

    venue = VENUE
    book_sync = BookSync

    def __init__(self, connection_id: str = "offline", master: InstrumentMaster | None = None) -> None:
        super().__init__(connection_id, master or InstrumentMaster())

    def on_ws(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        if BOOK_TICKER_STREAM in payload[:64] or payload.startswith(b'{"u":'):
            self._on_book_ticker(payload, ts_recv, out)
            return
        try:
            event = combined_decoder.decode(payload).data
            if event is None:
                event = bare_event_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            if payload.lstrip().startswith(b'{"result"'):
                return  # subscription acknowledgement
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable frame: {exc}", payload))
            return
        kind = type(event)
        if kind is AggTrade:
            self._on_trade(event, self.agg_trade_ids, payload, ts_recv, out)  # type: ignore[arg-type]
        elif kind is RawTrade:  # spot prints are all market trades
            self._on_trade(event, self.trade_ids, payload, ts_recv, out)  # type: ignore[arg-type]
        elif kind is DepthUpdate:
            self._on_diff(event, ts_recv, payload, out)  # type: ignore[arg-type]

    def _on_book_ticker(self, payload: bytes, ts_recv: int, out: Emitted) -> None:
        """Spot's bookTicker carries no time: ts_event is the receive time (TS_EVENT_IMPUTED), and its
        key is its order book update id `u` (exch_seq), unique per symbol, whatever the clock says."""
        try:
            t = (book_ticker_decoder.decode(payload).data if payload.startswith(b'{"stream"')
                 else bare_book_ticker_decoder.decode(payload))
            bid, bid_size, ask, ask_size, inexact = parse_decimals(t.b, t.B, t.a, t.A)
        except (msgspec.DecodeError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"bad bookTicker frame: {exc}", payload))
            return
        out.records.append(Bbo(VENUE, t.s, self.master.instrument(t.s), ts_recv, ts_recv, None, t.u,
                               LAST | TS_EVENT_IMPUTED | (INEXACT if inexact else 0), bid, bid_size, ask, ask_size))

    def on_rest(self, url: str, payload: bytes, ts_recv: int, out: Emitted) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        symbol = query.get("symbol", [""])[0]
        try:
            if parts.path.endswith("/depth"):
                self._on_snapshot(symbol, snapshot_decoder.decode(payload), ts_recv, out)
            elif parts.path.endswith("/exchangeInfo"):
                self._on_instruments(*exchange_info_instruments(payload, ts_recv), payload, ts_recv, out)
            elif parts.path.endswith("/aggTrades"):
                self._on_agg_trades(symbol, int(query["fromId"][0]), int(query.get("limit", ["500"])[0]),
                                    agg_trades_decoder.decode(payload), ts_recv, out)
            else:
                out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"unknown REST endpoint {parts.path}", payload))
        except (msgspec.DecodeError, KeyError, ValueError) as exc:
            out.dead_letters.append(DeadLetter(VENUE, ts_recv, f"undecodable REST body from {url}: {exc}", payload))
