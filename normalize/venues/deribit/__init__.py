"""Deribit JSON-RPC v2 over WebSocket (perpetuals, dated futures and options): raw frames -> contract records.

Notifications are `{"jsonrpc":"2.0","method":"subscription","params":{"channel":..., "data":...}}`; numbers
are JSON numbers, times ms. The channel's first word picks the Struct that decodes the frame, once.
Sizes: Deribit's `amount` is USD for inverse futures and perpetuals and coins for options and linear
(USDC) contracts; ticklake publishes base units (amount / price for inverse ones, the USD kept as
size_native). Ids and units follow from the instrument name (`instruments.py`), so nothing waits for
metadata; public/get_instruments gives the instrument records.

* `book.<instrument>.100ms` (and `.raw`, which needs an authenticated session) -> book_delta + a DERIVED
  bbo per message. The first message of a subscription is the whole book (`type` snapshot; before 2021 a
  message without prev_change_id); each change must name the last change_id as its prev_change_id. A
  break is a `gap` + `resync_start` for that instrument alone: nothing more is published for it until the
  snapshot that subscribing its book again brings (GAP_BEFORE, `resync_done`). Levels are `[action, price,
  amount]`, action new, change or delete. exch_seq = change_id. Deribit publishes the whole book.
  {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-31DEC21-34000-P.raw","data":
   {"type":"change","timestamp":1626993737197,"prev_change_id":33195896354,"instrument_name":
   "BTC-31DEC21-34000-P","change_id":33195896887,"bids":[],"asks":[["delete",0.2365,0.0],["change",0.236,8.4]]}}}
* `trades.<instrument>.100ms` -> trade (side = `direction`, the taker's; exch_seq = trade_seq, which
  counts up by one per instrument: a jump is a `trade_gap` and the missing trades are fetched from
  public/get_last_trades_by_instrument). Liquidation fills (`liquidation` M, T or MT: whose order was
  the liquidation) are trade_type liquidation and also Liquidation records (one per liquidated side);
  block trades (`block_trade_id`) are trade_type block.
  {"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw","data":[{"trade_seq":
   40781986,"trade_id":"66460463","timestamp":1584058044032,"tick_direction":3,"price":4469.5,"liquidation":"T",
   "instrument_name":"BTC-PERPETUAL","index_price":4805.41,"direction":"sell","amount":1120}]}}
* `ticker.<instrument>.100ms` -> mark_index (mark, index, and the estimated delivery price of futures and
  options), funding (perpetuals: `funding_8h`, the rate over 8 hours; funding accrues continuously, so
  there is no settlement time), open_interest when it changed (inverse: USD at the mark price in base
  units, the USD native), option_summary (options: implied volatilities as fractions, greeks, underlying
  price). Combos' tickers are read and ignored.
  {"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.ETH-30JUL21-2800-C.raw","data":
   {"underlying_price":2003.61,"underlying_index":"ETH-30JUL21","timestamp":1626993723632,"state":"open",
   "open_interest":12685.0,"mark_price":0.001972,"mark_iv":120.74,"instrument_name":"ETH-30JUL21-2800-C",
   "index_price":2006.72,"greeks":{"vega":0.20072,"theta":-1.64029,"rho":0.01188,"gamma":0.0002,"delta":0.03127},
   "bid_iv":115.62,"best_bid_price":0.0015,"best_bid_amount":4714.0,...}}}
* `quote.<instrument>` -> bbo (venue-native; exch_seq numbers the quotes of one millisecond).
* Control frames: answers to our requests are ignored; JSON-RPC errors (13778: raw channels need an
  authenticated session) are dead letters; a `test_request` heartbeat is answered with `public/test`
  (Emitted.replies), or Deribit closes the connection.
* REST public/get_instruments -> instrument (options with strike and option type; combos skipped);
  public/get_last_trades_by_instrument -> the trades of a trade_seq gap (FROM_REST).
"""

from normalize.venues.deribit.normalizer import Deribit
from normalize.venues.deribit.wire import VENUE

__all__ = ["VENUE", "Deribit"]
