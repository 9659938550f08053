"""Binance spot: raw frames -> contract records.

Channels (combined stream `wss://stream.binance.com:9443/stream?streams=...`, frames
`{"stream": ..., "data": {...}}`; the same normalizer as Binance USD-M where the messages agree):

* `<s>@aggTrade`, `<s>@trade` -> trade. `m` true means the buyer was the maker, so the aggressor
  sold: side -1. `T` is the trade time (ts_event), `E` the send time (ts_exch). Trade ids count up by
  one per symbol: a jump is a `trade_gap`, the missing aggTrades are fetched from REST
  `/api/v3/aggTrades?fromId=`. Spot has no non-market prints (no `X`).
  {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000",
   "T":1723161255342,"m":true,"M":true}
  {"e":"aggTrade","E":1633998520455,"s":"NKNUSDT","a":19942546,"p":"0.35070000","q":"213.00000000",
   "f":27187958,"l":27187958,"T":1633998520454,"m":true,"M":true}
* `<s>@depth@100ms` (or `@depth`, 1 s) -> book_delta (+ a DERIVED bbo per message). No `T`, no
  `pu`: ts_event is `E`. Sync rule: after a REST snapshot with lastUpdateId L, drop diffs with u <= L;
  the first applied has U <= L + 1 <= u; every later diff has U == previous u + 1. A break is a gap
  for that symbol only.
  {"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,
   "b":[["0.35130000","6195.00000000"]],"a":[]}
* `<s>@bookTicker` -> bbo (venue-native). No e/E/T: ts_event is the receive time, flagged
  TS_EVENT_IMPUTED; exch_seq is `u`, the book update id, which keys the record.
  {"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}
* `kline_<i>` frames are read and ignored (ticklake builds its own bars).
* REST `/api/v3/depth` -> book snapshot rows (SNAPSHOT, FROM_REST, TS_EVENT_IMPUTED: the body has
  no time); `/api/v3/exchangeInfo` -> instrument (spot `BASE-QUOTE`, tick and lot size from the
  filters); `/api/v3/aggTrades` -> the trades of a gap (FROM_REST).

Spot has no funding, mark or index price, open interest or liquidations. Sizes are base units.
"""

from normalize.venues.binance_spot.normalizer import BinanceSpot
from normalize.venues.binance_spot.wire import VENUE

__all__ = ["VENUE", "BinanceSpot"]
