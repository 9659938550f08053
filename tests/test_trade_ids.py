"""Binance aggregate trade ids count up by one per symbol: a lost trade is journaled as a gap, asked
for again, and filled from REST pages of the venue's trade history (here served by the replay
protocol from the recorded session); what the venue does not serve is journaled lost."""

from __future__ import annotations

import json

from ingest.capture_formats import read_frames
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from ingest.venues.binance_usdm.replay import BinanceUsdmReplay
from normalize.emitted import Emitted
from normalize.flags import Flag
from normalize.records import FeedStatus, Trade
from normalize.trade_ids import Backfill, TradeIds
from normalize.venues.binance_usdm import BinanceUsdm
from tests.binance_data import CRYPTOFEED_RUN

REST = "https://fapi.binance.com"


def _sushi_trades() -> tuple[list[bytes], BinanceUsdmReplay]:
    """SUSHIUSDT's 40 recorded aggTrade frames, and a venue that has played them all."""
    frames = [f for f in read_frames(CRYPTOFEED_RUN) if f.kind == "ws" and b"sushiusdt@aggTrade" in f.payload]
    venue = BinanceUsdmReplay(frames)
    for frame in frames:
        venue.observe(frame.payload)
    return [f.payload for f in frames], venue


def _page(venue: BinanceUsdmReplay, request: Backfill, limit: int) -> tuple[str, bytes]:
    url = BinanceUsdmConnection(["SUSHIUSDT"], rest_base=REST).backfill_url(request)
    assert url == f"{REST}/fapi/v1/aggTrades?symbol=SUSHIUSDT&fromId={request.first_id}&limit=1000"
    url = url.replace("limit=1000", f"limit={limit}")
    body = venue.rest("GET", "/fapi/v1/aggTrades", {"symbol": ["SUSHIUSDT"], "fromId": [str(request.first_id)],
                                                    "limit": [str(limit)]}, b"")
    assert body is not None
    return url, body


def _journal(out: Emitted) -> list[tuple[str, int | None, int | None]]:
    return [(r.event, r.seq_from, r.seq_to) for r in out.records if isinstance(r, FeedStatus)]


def test_a_gap_is_filled_page_by_page_with_the_venues_own_trades() -> None:
    frames, venue = _sushi_trades()
    ids = [json.loads(f)["data"]["a"] for f in frames]
    normalizer, out = BinanceUsdm(), Emitted()
    for i, frame in enumerate(frames):
        if not 10 <= i < 15:
            normalizer.on_ws(frame, i, out)
    normalizer.on_ws(frames[20], 99, out)  # sent again: dropped
    live = [t for t in out.records if isinstance(t, Trade)]
    assert len(live) == 35 and next(t for t in live if t.trade_id == str(ids[15])).flags == Flag.LAST | Flag.GAP_BEFORE
    assert out.backfill_requests == [Backfill("SUSHIUSDT", "aggTrade", ids[10], ids[14])]
    assert _journal(out) == [("trade_gap", ids[10], ids[14])]
    # a page of two, then the rest
    first = Emitted()
    normalizer.on_rest(*_page(venue, out.backfill_requests[0], 2), 100, first)
    assert first.backfill_requests == [Backfill("SUSHIUSDT", "aggTrade", ids[12], ids[14])] and not _journal(first)
    rest = Emitted()
    normalizer.on_rest(*_page(venue, first.backfill_requests[0], 1000), 101, rest)
    assert not rest.backfill_requests and _journal(rest) == [("backfill_done", ids[10], ids[14])]
    backfilled = [r for r in first.records + rest.records if isinstance(r, Trade)]
    # exactly the skipped trades, as the socket would have given them but for the times
    offline, skipped = Emitted(), frames[10:15]
    for frame in skipped:
        BinanceUsdm().on_ws(frame, 0, offline)
    assert [(t.trade_id, t.price, t.size, t.side, t.ts_event) for t in backfilled] == [
        (t.trade_id, t.price, t.size, t.side, t.ts_event) for t in offline.records]
    assert all(t.flags == Flag.LAST | Flag.FROM_REST and t.ts_recv in (100, 101) and t.ts_exch is None
               for t in backfilled)
    # a late answer for the settled gap changes nothing
    again = Emitted()
    normalizer.on_rest(*_page(venue, out.backfill_requests[0], 1000), 102, again)
    assert not again.records and not again.backfill_requests


def test_ids_the_venue_does_not_serve_are_journaled_lost() -> None:
    frames, venue = _sushi_trades()
    ids = [json.loads(f)["data"]["a"] for f in frames]
    normalizer, out = BinanceUsdm(), Emitted()
    for frame in frames[:5] + frames[30:]:
        normalizer.on_ws(frame, 0, out)
    (request,) = out.backfill_requests
    # the venue's history stops short (a short page): ids after its last trade are lost
    url, body = _page(venue, request, 1000)
    served = [t for t in json.loads(body) if t["a"] < ids[20]]
    page = Emitted()
    normalizer.on_rest(url, json.dumps(served).encode(), 1, page)
    assert len([r for r in page.records if isinstance(r, Trade)]) == 15
    assert _journal(page) == [("trades_lost", ids[20], ids[29])]
    assert normalizer.agg_trade_ids.missing["SUSHIUSDT"] == [] and normalizer.agg_trade_ids.gaps["SUSHIUSDT"] == []


def test_trade_ids_state() -> None:
    tape = TradeIds("aggTrade")
    tape.last["X"] = 10
    assert tape.jumped("X", 9) is None and tape.jumped("X", 10) is None
    assert tape.jumped("X", 15) == Backfill("X", "aggTrade", 11, 14) and tape.last["X"] == 15
    assert tape.jumped("X", 18) == Backfill("X", "aggTrade", 16, 17)
    assert tape.take("X", 12) and not tape.take("X", 12) and not tape.take("X", 15)
    assert tape.missing["X"] == [(11, 11), (13, 14), (16, 17)]
    assert tape.still_missing("X", (11, 14)) == [(11, 11), (13, 14)] and tape.gap_of("X", 17) == (16, 17)
    tape.give_up("X", 13, 16)
    assert tape.missing["X"] == [(11, 11), (17, 17)]
    tape.settle("X", (11, 14))
    assert tape.gaps["X"] == [(16, 17)] and tape.gap_of("X", 12) is None
