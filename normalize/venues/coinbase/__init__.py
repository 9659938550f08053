"""Coinbase (spot, and the futures Advanced Trade lists): raw frames of both public protocols ->
contract records.

The Exchange feed (`wss://ws-feed.exchange.coinbase.com`, the bundled 2021 capture's protocol), one
message per event:

* `level2_batch` / `level2` (level2 needs authentication since 2023) -> book_delta (+ a DERIVED bbo
  per message). A `snapshot` (the whole book) replaces the book; each `l2update` sets one level's
  new size. No sequence: exch_seq numbers a product's messages of one `time` 0, 1, ... (book_sync.py).
  {"type":"snapshot","product_id":"BAND-GBP","asks":[["14.8024","12.77"],...],"bids":[...]}
  {"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],
   "time":"2021-04-17T16:43:37.075687Z"}
* `matches` -> trade. `side` is the maker's, so the aggressor is the other side. Trade ids count up
  by one per product: a jump is a `trade_gap`, fetched again from the Exchange's REST trades. A
  subscription's `last_match` repeats the product's latest trade (dropped when already seen, and
  showing a gap when trades were missed meanwhile). exch_seq is the product's feed `sequence`.
  {"type":"match","trade_id":280232,"maker_order_id":"...","taker_order_id":"...","side":"sell",
   "size":"985","price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,
   "time":"2021-04-17T16:43:37.089723Z"}
* `ticker` / `ticker_batch` -> bbo (venue-native): best bid and ask as of the product's last match
  (ts_event its `time`, exch_seq its `sequence`); sizes where sent (2021 messages have none).
  {"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775",...,
   "best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z",...}
* `subscriptions`, `heartbeat` and `status` are read and ignored; `error` is a dead letter.

Advanced Trade (`wss://advanced-trade-ws.coinbase.com`), `{"channel","timestamp","sequence_num",
"events"}`; every message of a connection counts `sequence_num` up by one: a jump breaks every book
in sync (journaled `gap`, resubscribed), as the lost message's channel is unknown.

* `level2` (arrives as `l2_data`) -> book_delta + DERIVED bbo; events `snapshot` / `update` with
  `updates` [{side bid|offer, event_time, price_level, new_quantity}]; ts_event the latest
  `event_time`, ts_exch the message `timestamp`.
* `market_trades` -> trade; `side` is the taker's; a subscription's snapshot (recent trades, newest
  first) is read in trade id order and deduplicated by id.
* `ticker` / `ticker_batch` -> bbo with `best_bid_quantity`/`best_ask_quantity`; no time of its
  own: ts_event is the message timestamp (TS_EVENT_IMPUTED).
* `heartbeats` (subscribed to keep the other channels open), `subscriptions`, `candles`, `status`
  are counted in the sequence and otherwise ignored.

REST: the Exchange's `/products` and Advanced Trade's `/api/v3/brokerage/market/products` ->
instrument (instruments.py); the Exchange's `/products/<id>/trades?after=` -> the trades of a gap.
Spot sizes are base units; futures sizes are contracts x contract size, contracts kept native.
"""

from normalize.venues.coinbase.normalizer import Coinbase
from normalize.venues.coinbase.wire import VENUE

__all__ = ["VENUE", "Coinbase"]
