"""Bybit v5 public derivatives streams (linear, and inverse where fed): raw frames -> contract records.

Every data frame is `{"topic": "<channel>.[<depth>.]<symbol>", "type": "snapshot"|"delta", "ts": <ms>,
"data": ...}`. The channel is read from the topic with a byte search, then the frame is decoded
once by that channel's Struct:

* `publicTrade.<s>` -> trade, one per element of `data`. `S` is the taker (aggressor) side, so it
  is the trade side as is; `T` the fill time (ts_event), `ts` the send time (ts_exch); the trade
  id `i` is text (a UUID on derivatives). Block trades (`BT` true) are kept: they are executions.
  {"topic":"publicTrade.LTCUSDT","type":"snapshot","ts":1680688979985,"data":[{"T":1680688979983,
   "s":"LTCUSDT","S":"Buy","v":"0.4","p":"94.53","L":"ZeroMinusTick","i":"4c7b6bdc-...","BT":false}]}
* `orderbook.<depth>.<s>` -> book_delta (+ a DERIVED bbo per message). A `snapshot` replaces the
  book; every `delta` must carry u == previous u + 1. A break is a `gap` for that symbol only: the
  book stops publishing and asks for a snapshot (`out.snapshot_requests`), which Bybit sends when
  the topic is subscribed again. A snapshot that arrives unasked and does not continue the
  sequence (u=1 after Bybit restarts its book service) resets the book and is journaled as a gap.
  Bybit publishes the top N levels only and deletes a level leaving them: rows are DEPTH_LIMITED.
  ts_event is `cts` (matching engine time) where present, with `ts` as ts_exch.
  {"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1733011200693,"data":{"s":"XRPUSDT",
   "b":[["1.9531","6198"]],"a":[["1.9535","8415"]],"u":20254870,"seq":130020239261},"cts":1733011200691}
* `tickers.<s>` -> mark_index, funding, open_interest. A snapshot, then deltas carrying only some
  fields: the fields are merged per symbol and a record is emitted, complete, from the merged state
  when one of its own fields changed. Funding interval from `fundingIntervalHour` where sent, else
  the instrument's, else 8 h. ts_event `ts`, exch_seq `cs` (cross sequence).
* `allLiquidation.<s>` -> liquidation, one per element of `data`. Bybit documents `S` as the
  POSITION side ("When you receive a Buy update, this means that a long position has been
  liquidated"): side = S, order_side = the opposite. Price is the bankruptcy price.
  {"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,"data":[{"T":1740480207110,
   "s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}
* `liquidation.<s>` (deprecated; at most one per symbol per second, so SAMPLED): `side` likewise
  the position side.
* Control frames: pongs and subscription acks (`{"success":true,"op":"subscribe",...}`) are read
  and ignored; a refused request (`"success":false`) is a dead letter.
* REST `/v5/market/instruments-info` -> instrument (perpetuals `BASE-QUOTE-PERP`, futures
  `BASE-QUOTE-YYYYMMDD`). Without it ids come from the symbol (BTCUSDT -> BTC-USDT-PERP). A page
  that names a `nextPageCursor` asks for the next page (Emitted.rest_requests).

Units: linear sizes are base units already (contract size 1). Inverse contracts are 1 USD each:
sizes become base units as contracts / price, with the contracts kept in `size_native`.
"""

from normalize.venues.bybit.normalizer import Bybit
from normalize.venues.bybit.wire import VENUE

__all__ = ["VENUE", "Bybit"]
