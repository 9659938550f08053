"""Repair from the raw captures (`ticklake backfill`): messages that expired on the bus while the sinks
were away come back into both stores from the handler's own capture, exactly once, and the bus gap
is marked repaired; a second run adds nothing; `--replace` swaps a window's rows for a changed
normalizer's atomically in each store while a reader watches."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import threading
import time
from pathlib import Path

import polars as pl
import psycopg
import pytest

from ingest.capture_formats import read_frames
from ingest.capture_log import CaptureWriter, list_captures, read_capture_log
from ingest.offline import normalize_frames
from ingest.venues.registry import NORMALIZERS
from normalize.emitted import Emitted
from normalize.venues.binance_usdm import BinanceUsdm
from normalize.venues.binance_usdm.wire import AggTrade
from pipelines.seal import seal_day
from storage.parquet_files import filesystem_for
from storage.parquet_sink import ParquetSink, ParquetSinkConfig
from storage.record_keys import first_per_key
from storage.seal_manifest import partition_files
from storage.sink_consumer import BUS_VENUE, JetStreamSink
from storage.timescale_sink import SinkConfig, TimescaleSink
from tests import binance_data, bybit_data, okx_data
from tests.cli_replay import TICKLAKE, ingest_from_replay
from tests.pg_databases import private_database
from tests.sink_data import drained
from ticklake.backfill import backfill
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

MAX_AGE_S = 8
"""The stream keeps messages this long here: the sinks take the first run's in time, not the second's."""
MARKET_DATA = ("trade", "book_delta", "bbo", "instrument", "funding", "mark_index", "open_interest", "liquidation")
RUNS = {"binance-usdm": (binance_data.CRYPTOFEED_RUN, binance_data.CRYPTOFEED_SYMBOLS,
                         ("--channels", "aggTrade,depth@100ms,bookTicker")),
        "okx": (okx_data.CRYPTOFEED_RUN, okx_data.CRYPTOFEED_SYMBOLS, ()),
        "bybit": ([bybit_data.OB500], ["XRPUSDT"], ())}


async def _drain(sink: JetStreamSink, url: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        await drained(url, sink.settings.consumer, task, 60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _ingest(venue: str, tmp_path: Path, bus: EmbeddedNats, dsn: str) -> None:
    captures, symbols, extra = RUNS[venue]
    result = ingest_from_replay(venue, captures, symbols, tmp_path, "--duration", "3", *extra,
                                env={"TICKLAKE_NATS_URL": bus.url, "TICKLAKE_PG_DSN": dsn,
                                     "TICKLAKE_BUS_MAX_AGE_S": str(MAX_AGE_S)})
    assert result.returncode == 0, result.stderr


def _timescale_counts(dsn: str) -> dict[tuple[str, str], int]:
    with psycopg.connect(dsn) as conn:
        return {(t, venue): n for t in MARKET_DATA
                for venue, n in conn.execute(f"SELECT venue, count(*) FROM {t} GROUP BY venue").fetchall()}


def _lake_counts(lake: Path) -> dict[tuple[str, str], int]:
    counts = {}
    for t in MARKET_DATA:
        files = list(lake.glob(f"{t}/venue=*/date=*/*.parquet"))
        if files:
            frame = pl.read_parquet(files, hive_partitioning=True)
            counts |= {(t, venue): n for venue, n in frame.group_by("venue").len().iter_rows()}
    return counts


def _capture_counts(capture_root: Path) -> dict[tuple[str, str], int]:
    """Counted from the captures alone: every frame each handler recorded, normalized offline, each
    key once."""
    from normalize.arrow_schema import to_arrow
    from storage.lake_write import group_by_type

    counts = {}
    for venue in RUNS:
        frames = [f for path in list_captures(capture_root, venue) for f in read_capture_log(path)]
        out, _ = normalize_frames(venue, frames)
        for record_type, group in group_by_type(out.records).items():
            if record_type in MARKET_DATA:
                frame = pl.from_arrow(to_arrow(group))
                counts[(record_type, venue)] = first_per_key(frame, record_type).height  # type: ignore[arg-type]
    return counts


def _iso(ns: int) -> str:
    """The time as a user would type it (to the microsecond, rounded down)."""
    moment = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC) + dt.timedelta(microseconds=ns % 10**9 // 1000)
    return moment.isoformat(timespec="microseconds")


async def test_an_expired_gap_is_repaired_from_the_captures_exactly_once(
        tmp_path: Path, bus: EmbeddedNats, postgres: EmbeddedPostgres) -> None:
    lake = tmp_path / "lake"
    home = tmp_path / "home"
    with private_database(postgres, "ticklake_backfill") as dsn:
        sinks = lambda: [TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=dsn)),  # noqa: E731
                         ParquetSink(ParquetSinkConfig(nats_url=bus.url, lake=str(lake), flush_age_s=0.5))]
        await asyncio.to_thread(_ingest, "binance-usdm", tmp_path, bus, dsn)
        for sink in sinks():
            await _drain(sink, bus.url)
        await asyncio.to_thread(_ingest, "okx", tmp_path, bus, dsn)  # the sinks are away
        await asyncio.sleep(MAX_AGE_S + 1)  # longer than the stream keeps a message
        await asyncio.to_thread(_ingest, "bybit", tmp_path, bus, dsn)
        gaps = []
        for sink in sinks():
            await _drain(sink, bus.url)
            gaps += sink.bus_gaps
        assert len(gaps) == 2 and len({(g.seq_from, g.seq_to) for g in gaps}) == 1
        gap = gaps[0]
        before = _timescale_counts(dsn)
        assert not [key for key in before if key[1] == "okx"], "okx's messages expired before any sink wrote them"

        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        env.update(TICKLAKE_HOME=str(home), TICKLAKE_PG_DSN=dsn, TICKLAKE_NATS_URL=bus.url, TICKLAKE_LAKE=str(lake))
        window = ["--from", _iso(gap.time_from_ns), "--to", _iso(gap.time_to_ns + 1000)]
        result = subprocess.run([TICKLAKE, "backfill", *window], env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "bus gaps repaired: 2" in result.stdout  # the gap as each sink journaled it

        expected = _capture_counts(home / "capture")
        assert {k: v for k, v in expected.items() if k[1] == "okx"}, "the okx capture holds records"
        assert _timescale_counts(dsn) == expected
        assert _lake_counts(lake) == expected
        with psycopg.connect(dsn) as conn:
            repaired = conn.execute("SELECT seq_from, seq_to FROM feed_status WHERE venue = %s AND event = 'repaired'",
                                    (BUS_VENUE,)).fetchall()
            audit = conn.execute("SELECT mode, venues, normalizers FROM ticklake_backfills").fetchall()
        assert repaired == [(gap.seq_from, gap.seq_to)] * 2
        assert audit[0][0] == "add" and set(audit[0][2]) == set(audit[0][1])

        # again, over a window holding everything: nothing is added to either store
        wide = ["--from", "2000-01-01", "--to", _iso(time.time_ns() + 60 * 10**9)]
        again = subprocess.run([TICKLAKE, "backfill", *wide], env=env, capture_output=True, text=True, timeout=120,
                               check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _timescale_counts(dsn) == expected and _lake_counts(lake) == expected


class _Doubled(BinanceUsdm):
    """A changed normalizer: aggregate trades' sizes doubled."""

    def _on_trade(self, t, ids, payload, ts_recv, out: Emitted) -> None:  # type: ignore[no-untyped-def,override]
        if isinstance(t, AggTrade):
            t = AggTrade(E=t.E, s=t.s, trade_id=t.trade_id, p=t.p, q=str(float(t.q) * 2), T=t.T, m=t.m)
        super()._on_trade(t, ids, payload, ts_recv, out)


def _sums(dsn: str, lake_root: str) -> tuple[float, float]:
    with psycopg.connect(dsn) as conn:
        timescale = conn.execute("SELECT coalesce(sum(size), 0) FROM trade WHERE venue = 'binance-usdm'").fetchone()
    filesystem, base = filesystem_for(lake_root)
    paths = partition_files(filesystem, base, "trade", "binance-usdm", dt.date(2021, 7, 22))
    lake = pl.scan_parquet(paths).select(pl.col("size").sum()).collect().item() if paths else 0.0
    return float(timescale[0]), float(lake)  # type: ignore[index]


def test_replace_swaps_a_window_atomically_in_each_store(tmp_path: Path, postgres: EmbeddedPostgres,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A day a sink lost, refilled from the capture; sealed; then re-normalized by a changed
    normalizer with --replace while readers sum the day's trade sizes in both stores: every sum
    they see is the old version's or the new one's."""
    capture = tmp_path / "capture"
    writer = CaptureWriter(capture, "binance-usdm")
    for frame in read_frames(binance_data.CRYPTOFEED_RUN):
        if frame.ts_recv:
            writer.append(frame)
    writer.close()
    lake = str(tmp_path / "lake")
    start, end = 1626912000 * 10**9, 1626998400 * 10**9  # 2021-07-22, the capture's day
    with private_database(postgres, "ticklake_replace") as dsn:
        first = backfill(capture, lake, dsn, start, end)
        assert first.timescale_added["trade"] == first.lake_added["trade"] == 91
        assert backfill(capture, lake, dsn, start, end).timescale_added == {t: 0 for t in first.timescale_added}
        seal_day(lake, dt.date(2021, 7, 22))
        old = _sums(dsn, lake)
        assert old[0] == pytest.approx(old[1]) and old[0] > 0
        seen: set[tuple[float, float]] = set()
        reads = [0]
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                timescale, lake_sum = _sums(dsn, lake)
                seen.add((round(timescale, 6), round(lake_sum, 6)))
                reads[0] += 1

        readers = [threading.Thread(target=read) for _ in range(2)]
        for reader in readers:
            reader.start()
        monkeypatch.setitem(NORMALIZERS, "binance-usdm", _Doubled)
        try:
            result = backfill(capture, lake, dsn, start, end, ["binance-usdm"], replace=True)
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        new = _sums(dsn, lake)
        assert new[0] == pytest.approx(2 * old[0]) and new[1] == pytest.approx(2 * old[1])
        assert result.timescale_deleted["trade"] == 91 and result.mode == "replace"
        versions = {round(old[0], 6), round(new[0], 6)}
        assert {t for t, _ in seen} <= versions and {lake_sum for _, lake_sum in seen} <= versions, seen
        assert reads[0] > 5 and (round(old[0], 6), round(old[1], 6)) in seen  # they did read while it ran
        with psycopg.connect(dsn) as conn:
            modes = [row[0] for row in conn.execute("SELECT mode FROM ticklake_backfills ORDER BY started_at")]
        assert modes == ["add", "add", "replace"]
