"""BitMEX realtime WebSocket (perpetuals, futures; inverse, linear and quanto contracts): raw frames ->
contract records.

Every data frame is `{"table": <table>, "action": partial|insert|update|delete, "data": [rows]}`; the table
name picks the Struct that decodes the frame, once. A subscription's first frame is its `partial` (the
table's current rows). Sizes are contracts, converted to base units with the instrument's multipliers
(`instruments.py`: REST /api/v1/instrument/active, or the instrument table's partial) and kept native.

* `orderBookL2` (and `orderBookL2_25`, DEPTH_LIMITED) -> book_delta + a DERIVED bbo per message. Levels are
  keyed by `id`: `partial` replaces the book, then `insert`, `update` and `delete` rows name their id and
  side. Before July 2023 ids encoded the price and update/delete rows carried none (the book keeps an id ->
  price map from partial and insert); since then ids are arbitrary and every row has its price (checked
  against the map). BitMEX sends no sequence: a row naming an id the book lacks (or an insert of one it
  holds, or a price or side that moved under its id) is a `gap` + `resync_start` for that symbol, and
  nothing more of it is published until the partial that subscribing its book again brings (GAP_BEFORE,
  `resync_done`). ts_event = the rows' matching-engine `timestamp` (sent since 2022-02-14), else the
  receive time (TS_EVENT_IMPUTED, as in the 2021 capture); exch_seq numbers book messages of one ms.
  {"table":"orderBookL2","action":"update","data":[{"symbol":"UNIUSDT","id":51999982703,"side":"Sell","size":123}]}
* `quote` -> bbo (venue-native; exch_seq numbers the quotes of one symbol in one millisecond).
  {"table":"quote","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z","symbol":"UNIUSDT",
   "bidSize":750,"bidPrice":17.277,"askPrice":17.297,"askSize":123}]}
* `trade` -> trade (side = the taker's; trade_id `trdMatchID`; `trdType` other than Regular marks a print
  that is not a market trade: liquidation, block, else unknown).
  {"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z","symbol":"UNIUSDT",
   "side":"Buy","size":52,"price":17.297,"tickDirection":"PlusTick","trdMatchID":"39744121-...",
   "grossValue":899444,"homeNotional":16.73101673101673,"foreignNotional":289.39639639639637}]}
* `instrument` -> mark_index (markPrice; index = indicativeSettlePrice), funding (perpetuals: fundingRate at
  fundingTimestamp, indicativeFundingRate as the forecast, fundingInterval), open_interest (contracts in
  base units at the mark price, contracts native). Rows carry only what changed: merged per symbol, a
  record emitted complete when one of its own fields changed; a row without a time is TS_EVENT_IMPUTED.
* `funding` -> funding: settled rates, FROM_REST (venue history), ts_event = next_funding_ts = settlement.
* `liquidation` -> liquidation: an inserted row is a liquidation order BitMEX placed (price, leaves quantity;
  side the liquidated position, the opposite of the order's); updates, deletions and the partial's open
  orders are not new liquidations. No time in the rows: TS_EVENT_IMPUTED.
* Control frames: the welcome, subscription answers and `pong` are ignored; errors are dead letters.
* REST /api/v1/instrument/active -> instrument (perpetuals, futures, spot, options; indices skipped).
"""

from normalize.venues.bitmex.normalizer import Bitmex
from normalize.venues.bitmex.wire import VENUE

__all__ = ["VENUE", "Bitmex"]
