"""Hyperliquid (perpetuals DEX): raw frames -> contract records.

Frames are `{"channel": <type>, "data": ...}`, one subscription per (type, coin):

* `trades` -> trade. `side` is the aggressor: "B" (bid) means the taker bought, "A" (ask) that it
  sold; a "B" trade prints at the best ask (checked against the book in the tests). `tid` is the
  trade id, `time` ms the trade time; `hash` and `users` (the two addresses) are not read. On every
  subscription the venue first replays its most recent trades (30 of them), so after a reconnect
  trades already seen are dropped by `tid` (per coin, the last TRADE_MEMORY ids remembered). When
  none of a replay's trades was seen before, trades may have been missed between the last one seen
  and the replay: the first new trade carries GAP_BEFORE and a feed_status `gap` is journaled.
  {"channel":"trades","data":[{"coin":"BTC","hash":"0x84f7...","px":"105056.0","side":"B",
   "sz":"0.01853","tid":754186699313231,"time":1737918853204,"users":["0x592c...","0x6802..."]}]}
* `l2Book` -> book_delta (+ a DERIVED bbo). Every message is a FULL snapshot of the top 20 levels
  per side (`px`, `sz` base units, `n` orders), pushed at most every 0.5 s. ticklake diffs each one
  against the previous book of that coin: levels that left the window get size 0, new or changed
  levels their size; nothing is emitted for an unchanged book. Every row is DEPTH_LIMITED (a level
  that leaves the top 20 may still rest on the venue). The first snapshot of a subscription (a new
  connection, or a resubscription) is emitted as SNAPSHOT rows that replace the book, with
  GAP_BEFORE when the book was live before (what changed meanwhile is unknown). There is no
  sequence number or checksum: a gap inside one connection cannot be detected, and none matters
  for the book, because the next snapshot is diffed against what ticklake holds.
  {"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":5,"px":"105055.0","sz":"3.03622"},...],
   [{"n":13,"px":"105056.0","sz":"6.34472"},...]],"time":1737918843542}}
* `bbo` -> bbo (venue-native). `bbo` is [bid, ask], a side null (or absent) when empty.
* `activeAssetCtx` (perps) -> mark_index (mark `markPx`, index `oraclePx`), funding (`funding`,
  the rate accruing for the current hour, which settles at the next whole hour: interval_s 3600,
  next_funding_ts that hour) and open_interest (`openInterest`, base units). The message has no
  time: ts_event is ts_recv, flagged TS_EVENT_IMPUTED.
  {"channel":"activeAssetCtx","data":{"coin":"MOODENG","ctx":{"funding":"0.00004863",
   "openInterest":"18617460.0","oraclePx":"0.1995","markPx":"0.19963",...}}}
* `activeSpotAssetCtx` (what an activeAssetCtx subscription of a spot coin yields): read and
  ignored. Spot has no funding, open interest or index, and its `markPx` is a mid, not a mark.
* `subscriptionResponse` (an acknowledgement: the next book snapshot of that coin is a
  subscription's first, and the next trades message its replay) and `pong` are control frames;
  `error` frames become dead letters with the venue's text.
* REST `POST /info` (the request body is the URL fragment, see ingest.venues.interface):
  `{"type":"meta"}` -> instrument; `{"type":"fundingHistory",...}` -> funding (FROM_REST);
  `{"type":"l2Book","coin":...}` -> one more book snapshot of that coin (FROM_REST).

Funding history entries are SETTLED rates: ts_event is the settlement time the venue reports and
next_funding_ts equals it (the rate applied then), which is how they differ from the live
activeAssetCtx rows (a forecast for the coming hour: next_funding_ts in the future, ts_event
imputed, not FROM_REST). Hyperliquid has settled hourly since 2023-06-08; before that, every 8 h,
and those entries carry interval_s 28800. Entries not newer than the last settlement emitted for
the coin are dropped, so overlapping hourly polls publish each settlement once per process.

Instruments: Hyperliquid perpetuals are margined, quoted and settled in USDC, so `BTC` is
`BTC-USDC-PERP` (quote and settle USDC), as Binance's USDC-margined BTCUSDC is. Spot pairs (`@107`,
`PURR/USDC`) and builder-deployed perps (`xyz:TSLA`) keep the venue's name as instrument id:
resolving them needs spotMeta or that dex's meta, which ticklake does not fetch. Sizes are base
units (no contract multiplier); prices and sizes are decimal strings checked for exactness.
"""

from normalize.venues.hyperliquid.instruments import is_perp
from normalize.venues.hyperliquid.normalizer import Hyperliquid
from normalize.venues.hyperliquid.wire import VENUE

__all__ = ["VENUE", "Hyperliquid", "is_perp"]
