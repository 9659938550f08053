"""Binance USD-M futures: raw frames -> contract records.

Channels (combined stream `/stream?streams=...`, frames `{"stream": ..., "data": {...}}`):

* `<s>@aggTrade`, `<s>@trade` -> trade. `m` true means the buyer was the maker, so the aggressor
  sold: side -1. `T` is the trade time (ts_event), `E` the send time (ts_exch).
  {"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,
   "l":23961322,"T":1626992741421,"m":false}
* `<s>@depth@100ms|@0ms` -> book_delta (+ a DERIVED bbo per message). Sync rule: after a REST
  snapshot with lastUpdateId L, drop diffs with u < L; the first applied diff has U <= L <= u;
  every later diff has pu == previous u. Any break is a gap for that symbol only.
  {"e":"depthUpdate","E":1626992741037,"T":1626992741024,"s":"SUSHIUSDT","U":600859599090,
   "u":600859600917,"pu":600859598061,"b":[["7.5040","813"]],"a":[["7.6150","1563"]]}
* `<s>@bookTicker` -> bbo (venue-native). ts_event T, ts_exch E, exch_seq u.
* `<s>@markPrice@1s` -> mark_index, and funding for perpetuals (T > 0). r is a fraction per
  interval; T the next funding time. E is the only time given: ts_event.
* `<s>@forceOrder` -> liquidation, flagged SAMPLED (Binance pushes at most one per symbol per
  second). `S` is the liquidation order's side; the liquidated position is the opposite.
* REST `/fapi/v1/depth` -> book snapshot rows (SNAPSHOT, FROM_REST); `/fapi/v1/openInterest`
  -> open_interest (FROM_REST); `/fapi/v1/exchangeInfo` -> instrument; `/fapi/v1/fundingInfo` ->
  the funding interval of the perpetuals it lists (8 h for the rest).
  [{"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000","adjustedFundingRateFloor":"-0.02500000",
    "fundingIntervalHours":8,"disclaimer":false}]

USD-M contracts are linear with a multiplier of 1: sizes are already base units.
"""

from normalize.venues.binance_usdm.normalizer import BinanceUsdm
from normalize.venues.binance_usdm.wire import VENUE

__all__ = ["VENUE", "BinanceUsdm"]
