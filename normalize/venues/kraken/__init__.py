"""Kraken spot WebSocket, v1 (frozen, the bundled capture) and v2 (current, the live connection):
raw frames -> contract records.

Symbols are the v2 names (`BTC/USD`; v1's `XBT/USD` is filed under it), ids the pair with a dash
(`BTC-USD`, instruments.py). Sizes are base units.

* `book` -> book_delta (DEPTH_LIMITED) + a DERIVED bbo per message. v1 frames
  `[channelID, {"as":[..],"bs":[..]}, "book-1000", "XBT/USD"]` (snapshot) and
  `[channelID, {"a":[..]}, {"b":[..],"c":"<crc>"}, "book-1000", pair]` (update; levels
  `[price, volume, timestamp(, "r")]`, "r" a level republished when it re-enters the window); v2
  `{"channel":"book","type":"snapshot"|"update","data":[{"symbol","bids":[{"price","qty"}],"asks",
  "checksum","timestamp"}]}`. Quantity 0 removes a level; after each message the book is cut to the
  subscribed depth (`book-N`, or the v2 subscription's answer), the levels cut published as
  deletions in the same message; then Kraken's CRC32 (book_sync.checksum: top 10 asks then top 10
  bids, digits of price and quantity without the point or leading zeros) must equal the message's
  (v1: updates only; v2: snapshots too). A mismatch is `checksum_failure` + `resync_start` for that
  pair alone: nothing is published for it until the snapshot Kraken sends when the handler
  unsubscribes and subscribes its book (GAP_BEFORE, `resync_done`). Books carry no sequence number.
  v1 ts_event is the newest level timestamp of the message; a v2 snapshot has no time
  (TS_EVENT_IMPUTED).
  [1360,{"a":["0.000022980","4346.27669000","1618678133.642404"]},{"b":[...],"c":"3510181930"},
   "book-1000","ADA/XBT"]
* `trade` -> trade, `side` the taker's. v2 `trade_id` (sequential per book) is the id and exch_seq;
  v1 trades have none, so the id is `<time>/<price>/<volume>` (`#n` for the n-th identical one of a
  frame), the same on every handler receiving the frame.
  [993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]
* `ticker` -> bbo (venue-native): v1 `b`/`a` [price, whole lot volume, lot volume] with no time
  (TS_EVENT_IMPUTED), v2 `bid`, `bid_qty`, `ask`, `ask_qty`; v1 `spread` -> bbo at its timestamp.
* v2 `instrument` -> instrument (price and quantity increments, minimum, status).
* `ohlc`, heartbeats, `systemStatus`, `status`, subscription answers and pongs are read and ignored
  (a v2 book subscription's answer gives the depth); refused subscriptions and errors are dead
  letters with Kraken's message.
* REST `/0/public/AssetPairs` -> instrument (tick `tick_size` or 10^-pair_decimals, lot
  10^-lot_decimals, min `ordermin`).
"""

from normalize.venues.kraken.normalizer import Kraken
from normalize.venues.kraken.wire import VENUE

__all__ = ["VENUE", "Kraken"]
