"""The bundled real venue recordings, one folder per venue (binance_usdm, okx, bybit, hyperliquid,
kraken, kraken_futures, ...): the sessions `ticklake demo` replays (ticklake/demo.py SESSIONS), and
the captures, fixtures and REST bodies the tests and benchmarks normalize.

They live inside the package so that an installed ticklake (a wheel, not only a checkout) carries the
demo's data: pyproject.toml declares them package data, all but the ETHUSDT hftbacktest capture (3.6 MB),
which only tests and benchmarks replay. Each file name says its source (cryptofeed, hftbacktest, tardis
fixture, documentation example, VCR cassette) and what it holds.
"""

from pathlib import Path

RECORDINGS = Path(__file__).parent
"""The folder holding one sub-folder of recordings per venue."""
