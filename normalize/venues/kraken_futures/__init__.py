"""Kraken Futures (Derivatives WebSocket v1): raw frames -> contract records.

Frames are JSON objects naming their `feed` (data) or `event` (control); numbers are JSON numbers,
times are ms. Sizes are contracts, converted to base units with the instrument master
(`instruments.py`: inverse PI_/FI_ contracts are 1 USD each, linear PF_/FF_ ones 1 base unit) and
kept as `size_native`.

* `book_snapshot`, then `book` -> book_delta + a DERIVED bbo per message. The snapshot replaces
  the product's book; each delta is one level of one side, and its `seq` must be the product's
  last seq + 1 (snapshot included). A break is a `gap` + `resync_start` for that product alone:
  nothing more is published for it until the snapshot Kraken sends when the handler unsubscribes
  and subscribes its book again (GAP_BEFORE, `resync_done`). Kraken sends no book checksum on v1.
  {"feed":"book","product_id":"PI_ETHUSD","side":"sell","seq":26660860,"price":2004.85,"qty":4787.0,
   "timestamp":1626994927744}
* `trade_snapshot` (the last 100 trades on subscribing, newest first) and `trade` -> trade. `side`
  is the taker's; `uid` the trade id; exch_seq the product's trade `seq`. Prints that are not market
  trades are kept and marked `trade_type` (normalizer.TRADE_TYPES: liquidation, block,
  assignment -> adl, termination -> unknown).
  {"feed":"trade","product_id":"PI_XBTUSD","uid":"b5a1c239-7987-4207-96bf-02355a3263cf","side":"sell",
   "type":"fill","seq":85423,"time":1565342712903,"qty":1135.0,"price":11735.0}
* `ticker` (every second) -> bbo (venue-native, with sizes), mark_index (`markPrice`, `index`),
  open_interest (`openInterest` contracts, converted; inverse value in USD = contracts) and, for
  perpetuals, funding: funding_rate = `relative_funding_rate` (a fraction per interval; Kraken's
  `funding_rate` is absolute, quote currency per contract, and is not the contract's rate),
  predicted_rate = `relative_funding_rate_prediction`, next_funding_ts = `next_funding_rate_time`
  (an absolute time in ms, whatever the field's description says), interval hourly. Kraken omits
  a numeric field whose value is zero: an absent rate is 0.
* `ticker_lite` (bid, ask without sizes, no time) and `heartbeat` are read and ignored; `info`,
  `subscribed` and `unsubscribed` events are control frames; `alert`, `error` and
  `subscribed_failed` events are dead letters with their message.
* REST `/derivatives/api/v3/instruments` -> instrument (and the contract sizes).
"""

from normalize.venues.kraken_futures.normalizer import KrakenFutures
from normalize.venues.kraken_futures.wire import VENUE

__all__ = ["VENUE", "KrakenFutures"]
