"""OKX v5 public WebSocket: raw frames -> contract records (swaps, futures and spot).

Frames are `{"arg": {"channel": ..., "instId": ...}, "action"?: ..., "data": [...]}`; numbers are
strings, times are ms. Sizes of swaps and futures are contracts, converted to base units with
the instrument master (`instruments.py`; a contract whose body is not loaded yet is a dead
letter, never a wrong unit) and kept as `size_native`.

* `trades`, `trades-all` -> trade. `side` is the taker's side (the aggressor); ts_event `ts`.
  {"arg":{"channel":"trades","instId":"UNI-USD-SWAP"},"data":[{"instId":"UNI-USD-SWAP",
   "tradeId":"12883020","px":"5.123","sz":"100","side":"sell","ts":"1652459215150"}]}
* `books` (400 levels), `books-l2-tbt` (400), `books50-l2-tbt` (50) -> book_delta (DEPTH_LIMITED)
  + a DERIVED bbo per message. `action` snapshot replaces the book; levels are
  `[px, sz, "0", orders]`, sz "0" deletes. Every message's `checksum` is checked: CRC32 of the
  best 25 levels as `bidPx:bidSz:askPx:askSz:...` in the venue's own strings, signed 32-bit
  (OKX sends 0 since its deprecation in June 2026: 0 means "not sent"). Where `seqId`/`prevSeqId`
  are sent, an update's prevSeqId must equal the last seqId. A mismatch of either is
  `checksum_failure` or `gap` + `resync_start` for that instrument alone: nothing more is
  published for it until a new snapshot arrives (the handler resubscribes its book channel).
  {"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":
   [["30249.4","0","0","0"],["30261","4","0","1"],["30310.3","19","0","1"]],"bids":[["30182.6",
   "452","0","1"]],"ts":"1652459225464","checksum":-914047754}]}
* `bbo-tbt` -> bbo (venue-native); exch_seq `seqId` where sent.
* `funding-rate` -> funding: `fundingRate` applies at `fundingTime`, `nextFundingRate` is the
  forecast after it (predicted_rate), interval = nextFundingTime - fundingTime (else
  fundingTime - prevFundingTime, else the last interval seen for the instrument).
* `mark-price` -> mark_index (mark only); `index-tickers` -> mark_index (index only) of the
  index id `<index>-INDEX`.
* `open-interest` -> open_interest: `oiCcy` (coins: base units), `oi` (contracts) native, `oiUsd`
  value where sent.
* `liquidation-orders` (per instType) -> liquidation, SAMPLED (at most one per contract per
  second). price is the bankruptcy price `bkPx`; `side` the liquidated position (`posSide`, or
  the opposite of the order side in net mode), `order_side` the order's `side`.
* `tickers` and `price-limit` are read and ignored: tickers' bid/ask lag the book (in the
  bundled 2022 capture most ticker quotes repeat an earlier one while the book had moved), and
  bbo-tbt is the BBO channel. Subscribe acks and the "pong" answer to the text ping are ignored.
  A service-upgrade notice (`event` notice, code 64008) is journaled `venue_notice` and asks the
  handler to replace the connection now, planned; other events (errors, other notices) are dead
  letters with their code and message.
* REST `/api/v5/public/instruments` -> instrument (and the contract sizes).
"""

from normalize.venues.okx.normalizer import Okx
from normalize.venues.okx.wire import VENUE

__all__ = ["VENUE", "Okx"]
