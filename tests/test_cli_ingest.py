"""`ticklake replay-server` and `ticklake ingest` as separate processes, as docs/ingest.md runs them."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import polars as pl

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.flags import Flag
from normalize.records import BookDelta, BookTop, FeedStatus, Record, Trade, expand
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.bus_data import stream_records
from tests.cli_replay import ingest_from_replay
from ticklake.stack.nats import EmbeddedNats

CAPTURES = CRYPTOFEED_RUN


def test_ingest_against_the_replay_server(tmp_path: Path) -> None:
    result = ingest_from_replay("binance-usdm", CAPTURES, CRYPTOFEED_SYMBOLS, tmp_path,
                                "--duration", "4", "--out", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    assert "trade                 91 rows" in result.stdout
    assert "connects 2, disconnects 2, stale 0, queue overflows 0" in result.stdout  # /public and /market
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=True)
    assert trades.height == 91 and trades["trade_id"].n_unique() == 91
    captures = list((tmp_path / "home" / "capture" / "binance-usdm").glob("*/*.tlcap.zst"))
    assert captures, "raw frames are captured under $TICKLAKE_HOME/capture"


def test_two_feeds_in_one_process_publish_every_trade_to_the_bus(tmp_path: Path, bus: EmbeddedNats) -> None:
    result = ingest_from_replay("binance-usdm", CAPTURES, ["SUSHIUSDT", "AKROUSDT"], tmp_path,
                                "--venue", "binance-usdm", "--symbols", "KEEPUSDT,CTKUSDT",
                                "--top-depth", "3", "--top-every", "0.5", "--duration", "4",
                                server_args=["--clients", "4"], env={"TICKLAKE_NATS_URL": bus.url})
    assert result.returncode == 0, result.stderr
    assert "connects 4, disconnects 4, stale 0, queue overflows 0" in result.stdout  # two routes per feed
    stored = asyncio.run(stream_records(bus.url))
    offline, _ = normalize_frames("binance-usdm", read_frames(CAPTURES))
    trades = sorted((r.instrument, r.trade_id, r.price, r.size, r.side) for r in stored if isinstance(r, Trade))
    assert trades == sorted((r.instrument, r.trade_id, r.price, r.size, r.side)
                            for r in offline.records if isinstance(r, Trade))
    assert len(trades) == 91
    # every diff of every symbol from its snapshot on arrived, once, with no gap
    def diffs(records: list[Record]) -> Counter[tuple[str, int | None]]:
        return Counter((r.symbol, r.exch_seq) for r in records
                       if isinstance(r, BookDelta) and r.flags & Flag.LAST and not r.flags & Flag.SNAPSHOT)

    live = diffs(stored)
    assert max(live.values()) == 1
    snapshot_ids = {r.symbol: r.exch_seq for r in stored if isinstance(r, BookDelta) and r.flags & Flag.SNAPSHOT}
    assert sorted(snapshot_ids) == ["AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT"]
    assert set(live) == {(symbol, u) for symbol, u in diffs(expand(offline.records)) if u >= snapshot_ids[symbol]}
    assert not [r for r in stored if isinstance(r, FeedStatus) and r.event == "gap"]
    tops = [r for r in stored if isinstance(r, BookTop)]
    assert {r.symbol for r in tops} == {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    assert {r.level for r in tops} == {1, 2, 3}
    writers = sorted(p.name.split("-2")[0] for p in (tmp_path / "home" / "capture" / "binance-usdm").glob("*/*"))
    assert writers == ["binance-usdm-feed0", "binance-usdm-feed1"]
