"""Standard names where users type them: instruments by normalized id or venue symbol, channels by
standard name or the venue's own; anything else an error listing what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from ingest.venues.interface import UnknownChannel
from ingest.venues.names import STANDARD_CHANNELS, UnknownInstrument
from ingest.venues.registry import CONNECTIONS
from normalize.records import Instrument
from tests import (
    binance_data,
    bitmex_data,
    coinbase_data,
    deribit_data,
    hyperliquid_data,
    kraken_data,
    kraken_futures_data,
    okx_data,
)
from tests.cli_replay import ingest_from_replay
from ticklake.ingest_run import make_connection

METADATA = {"binance-usdm": [binance_data.CRYPTOFEED_EXCHANGE_INFO], "okx": okx_data.CRYPTOFEED_RUN,
            "hyperliquid": [hyperliquid_data.META_FUNDING_CASSETTE], "kraken": [kraken_data.ASSET_PAIRS],
            "kraken-futures": [kraken_futures_data.INSTRUMENTS], "coinbase": [coinbase_data.PRODUCTS],
            "deribit": [deribit_data.CRYPTOFEED_INSTRUMENTS], "bitmex": [bitmex_data.CRYPTOFEED_INSTRUMENTS]}


@pytest.mark.parametrize("venue", list(METADATA))
def test_every_listed_instrument_maps_back_to_its_symbol(venue: str) -> None:
    """symbol_of inverts the normalizer's ids for every instrument of the venue's recorded metadata."""
    out, _ = normalize_frames(venue, read_frames(METADATA[venue]))
    instruments = [r for r in out.records if isinstance(r, Instrument)]
    assert len(instruments) > 5
    for record in instruments:
        if venue == "okx" and record.kind == "option":
            continue
        assert CONNECTIONS[venue].symbol_of(record.instrument) == record.symbol, record


def test_bybit_ids_round_trip() -> None:
    from normalize.venues.bybit.instruments import spec_from_symbol

    for symbol in ("BTCUSDT", "BTCPERP", "ETHUSDT-26JUN26", "BTC-27DEC24", "1000PEPEUSDT"):
        assert CONNECTIONS["bybit"].symbol_of(spec_from_symbol(symbol).instrument) == symbol


def test_standard_channels_and_normalized_ids_become_the_venues_own() -> None:
    connection = make_connection("binance-usdm", ["BTC-USDT-PERP", "ETHUSDT", "BTC-USDT-20250328"],
                                 channels=["trades", "book", "liquidations", "kline_1m"])
    assert list(connection.symbols) == ["BTCUSDT", "ETHUSDT", "BTCUSDT_250328"]
    assert tuple(connection.channels) == ("aggTrade", "depth@100ms", "forceOrder", "kline_1m")
    okx = make_connection("okx", ["BTC-USDT-PERP", "BTC-USDT", "BTC-USD-20250328"], channels=["mark_index"])
    assert (list(okx.symbols), tuple(okx.channels)) == (["BTC-USDT-SWAP", "BTC-USDT", "BTC-USD-250328"],
                                                        ("mark-price", "index-tickers"))
    for cls in CONNECTIONS.values():
        assert set(cls.standard_channels) == set(STANDARD_CHANNELS), cls


def test_deribit_and_bitmex_take_normalized_ids_and_standard_channels() -> None:
    deribit = make_connection("deribit", ["BTC-USD-PERP", "BTC-USD-20250328", "BTC-USD-20250328-60000-C",
                                          "BTC-USDC-PERP", "ETH-PERPETUAL", "BTC-25MAR22"],
                              channels=["book", "bbo", "funding", "mark_index", "liquidations"])
    assert list(deribit.symbols) == ["BTC-PERPETUAL", "BTC-28MAR25", "BTC-28MAR25-60000-C", "BTC_USDC-PERPETUAL",
                                     "ETH-PERPETUAL", "BTC-25MAR22"]
    assert tuple(deribit.channels) == ("book", "quote", "ticker", "trades")
    bitmex = make_connection("bitmex", ["BTC-USD-PERP", "BTC-USDT-PERP", "BTC-USD-20250328", "BTC-USDT", "ETHUSD"],
                             channels=["trades", "funding", "mark_index", "open_interest"])
    assert list(bitmex.symbols) == ["XBTUSD", "XBTUSDT", "XBTH25", "XBT_USDT", "ETHUSD"]
    assert tuple(bitmex.channels) == ("trade", "instrument", "funding")
    with pytest.raises(UnknownInstrument, match="deribit lists no spot pair quoted in USD"):
        make_connection("deribit", ["BTC-USD"])
    with pytest.raises(UnknownInstrument, match="bitmex: BTC-USD-20250328-60000-C is not a perpetual"):
        make_connection("bitmex", ["BTC-USD-20250328-60000-C"])


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(UnknownChannel, match="or a standard name: trades, book, bbo, funding, mark_index"):
        make_connection("okx", ["BTC-USDT-SWAP"], channels=["tradez"])
    with pytest.raises(UnknownInstrument, match=r"hyperliquid's perpetuals are quoted in USDC \(BTC-USDC-PERP\)"):
        make_connection("hyperliquid", ["BTC-USDT-PERP"])
    with pytest.raises(UnknownInstrument, match="binance-usdm lists perpetuals and dated futures"):
        make_connection("binance-usdm", ["BTC-USDT"])


def test_ingest_takes_normalized_ids_and_standard_channels(tmp_path: Path) -> None:
    ids = ["SUSHI-USDT-PERP", "AKRO-USDT-PERP", "KEEP-USDT-PERP", "CTK-USDT-PERP"]
    result = ingest_from_replay("binance-usdm", binance_data.CRYPTOFEED_RUN, ids, tmp_path, "--duration", "4",
                                "--out", str(tmp_path / "lake"), "--channels", "trades,book,bbo")
    assert result.returncode == 0, result.stderr
    assert "trade                 91 rows" in result.stdout
    assert "feed binance-usdm -: SUSHIUSDT,AKROUSDT,KEEPUSDT,CTKUSDT" in result.stdout
