"""The bundled Hyperliquid recordings and fixtures, named once for every test that reads them."""

from __future__ import annotations

from ticklake.recordings import RECORDINGS

DATA = RECORDINGS / "hyperliquid"
CAPTURE = DATA / "ws_l2Book+trades.btc_20250126.hftbacktest.gz"
"""25 s of real mainnet frames (BTC): 46 l2Book snapshots and 9 trades messages, the first of them
the venue's replay of its 30 most recent trades on subscribe."""
META_FUNDING_CASSETTE = DATA / "rest_info_meta+fundingHistory_BTC.vcr-cassette.yaml"
"""Recorded POST /info: meta, then BTC's funding history."""
META_BOOK_CASSETTE = DATA / "rest_info_meta+l2Book_DYDX.vcr-cassette.yaml"
"""Recorded POST /info: meta, then a DYDX l2Book snapshot."""
META_BODY = DATA / "rest_info_meta.json"
FUNDING_BODY = DATA / "rest_info_fundingHistory.BTC.json"
BOOK_BODY = DATA / "rest_info_l2Book.DYDX.json"
INFO = "https://api.hyperliquid.xyz/info"
