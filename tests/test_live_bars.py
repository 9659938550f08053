"""Live bars (pipelines/live_bars.py): trades published through the real path (publisher, JetStream, the
Timescale sink) are in `bars_live`, kept by the real `ticklake sink live-bars` process, within 5 s; and once
the day is sealed, the live bars equal the pipelines' sealed bars bit for bit (a direct comparison, and the
`live_bars_equal_sealed` asset check, which also catches one altered bar)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import polars as pl
import psycopg
from dagster import DagsterInstance

from ingest.capture_formats import read_capture
from ingest.offline import normalize_frames
from ingest.publisher import BusConfig, Publisher
from normalize.arrow_schema import to_arrow
from normalize.flags import Flag
from normalize.records import Trade
from pipelines import bars
from pipelines.definitions import build_definitions
from pipelines.lake_io import read_derived
from pipelines.live_bars import (
    RESOLUTIONS,
    LiveBarsConfig,
    connect_arrow,
    late_window,
    live_bars,
    read_live_bars,
    refresh,
    window_start,
)
from pipelines.partitions import day_bounds_ns
from storage.lake_write import write_records
from storage.late_trades import LATE_NS, late_span
from storage.timescale_rows import copy_rows
from storage.timescale_sink import SinkConfig, TimescaleSink
from tests.binance_data import BTCUSDT_SESSION
from tests.pg_databases import private_database
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
LIVE_ORDER = ["resolution", "venue", "instrument", "ts"]


def _frame(trades: list[Trade]) -> pl.DataFrame:
    frame = pl.from_arrow(to_arrow(trades, "trade"))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _stored_bars(conn: psycopg.Connection) -> pl.DataFrame:
    """bars_live as the bars' frames hold them (times as Datetime ns), all resolutions."""
    return pl.concat([read_live_bars(conn, every, day).with_columns(pl.lit(every).alias("resolution"))
                      for every in RESOLUTIONS
                      for (day,) in conn.execute("SELECT DISTINCT time::date FROM bars_live").fetchall()]
                     or [pl.DataFrame(schema={**bars.BAR_SCHEMA, "resolution": pl.String()})])


def _second_of_trades(venue: str, second_ns: int, first_id: int) -> list[Trade]:
    """Trades in one second: ties in ts_event broken by receive time and numeric id ("999" before "1000"),
    sizes with many decimals, both sides, and a block trade (a non-market print the bars leave out)."""
    base = dict(venue=venue, symbol="BTCUSDT", instrument="BTC-USDT-PERP", ts_exch=None, exch_seq=None,
                flags=int(Flag.LAST), size_native=None)
    out = [Trade(**base, ts_event=second_ns + i * 7_000_000, ts_recv=second_ns + i * 7_000_000 + 900_000,  # type: ignore[arg-type]
                 price=64_123.1 + (i % 7) * 0.1, size=0.001 * (i + 1) + 1e-9 * i, side=1 if i % 3 else -1,
                 trade_id=str(first_id + i), trade_type=None) for i in range(40)]
    tie = second_ns + 500_000_000
    out += [Trade(**base, ts_event=tie, ts_recv=tie + 1, price=64_200.0, size=0.5, side=1, trade_id="999",  # type: ignore[arg-type]
                  trade_type=None),
            Trade(**base, ts_event=tie, ts_recv=tie + 1, price=64_000.0, size=0.25, side=-1, trade_id="1000",  # type: ignore[arg-type]
                  trade_type=None),
            Trade(**base, ts_event=tie + 1, ts_recv=tie + 2, price=70_000.0, size=9.0, side=1,  # type: ignore[arg-type]
                  trade_id=str(first_id + 900), trade_type="block")]
    return out


async def _bars_within_5_s(conn: psycopg.Connection, expected: pl.DataFrame) -> None:
    submitted = time.monotonic()
    got = _stored_bars(conn).sort(LIVE_ORDER)
    while not got.equals(expected) and time.monotonic() - submitted < 5:
        await asyncio.sleep(0.1)
        got = _stored_bars(conn).sort(LIVE_ORDER)
    assert got.equals(expected), f"after {time.monotonic() - submitted:.1f} s:\n{got}\n{expected}"


async def test_published_trades_are_in_the_live_bars_within_5_s(bus: EmbeddedNats, postgres: EmbeddedPostgres,
                                                                tmp_path: Path) -> None:
    """Sink and `ticklake sink live-bars` running; after a warm-up trade shows the process up, a second of
    trades is published: within 5 s bars_live holds exactly the 1 s and 1 m bars of everything published
    (time_bars of the published trades), the block trade left out."""
    with private_database(postgres, "ticklake_live_bars_path") as dsn:
        sink = TimescaleSink(SinkConfig(nats_url=bus.url, pg_dsn=dsn, consumer="timescale"))
        stop = asyncio.Event()
        sink_task = asyncio.create_task(sink.run(stop))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        env.update(TICKLAKE_PG_DSN=dsn, TICKLAKE_NATS_URL=bus.url, TICKLAKE_HOME=str(tmp_path / "home"))
        live = subprocess.Popen([sys.executable, "-m", "ticklake", "sink", "live-bars"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        publisher = Publisher(BusConfig(bus.url, max_records=300, max_delay_s=0.01), tmp_path / "spool")
        await publisher.start()
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                now = time.time_ns()
                warm_up = _second_of_trades("live-test", now - now % 1_000_000_000 - 2_000_000_000, 1)[:1]
                publisher.submit(warm_up)
                deadline = time.monotonic() + 120  # the process starting (it imports Dagster): not timed
                while _stored_bars(conn).is_empty():
                    assert live.poll() is None and time.monotonic() < deadline, "live bars never appeared"
                    await asyncio.sleep(0.2)

                now = time.time_ns()
                second = _second_of_trades("live-test", now - now % 1_000_000_000, 100_000)
                published = warm_up + second
                expected = (live_bars(_frame(published)).select([*bars.BAR_SCHEMA, "resolution"])
                            .sort(LIVE_ORDER))
                market = len([t for t in second if t.trade_type is None])
                assert expected.filter(pl.col("resolution") == "1s")["trades"].sum() == market + 1
                publisher.submit(second)
                await _bars_within_5_s(conn, expected)

                # a trade backfill's: three minutes old, stored now, before the trailing window
                late = _second_of_trades("live-test", now - now % 60_000_000_000 - 180_000_000_000, 200_000)
                expected = (live_bars(_frame(published + late)).select([*bars.BAR_SCHEMA, "resolution"])
                            .sort(LIVE_ORDER))
                publisher.submit(late)
                await _bars_within_5_s(conn, expected)
                deadline = time.monotonic() + 5  # the pass deletes the marks it rebuilt after its commit
                while (marks := conn.execute("SELECT count(*) FROM ticklake_late_trades").fetchone()) != (0,):
                    assert time.monotonic() < deadline, f"{marks} marks left"
                    await asyncio.sleep(0.1)
        finally:
            await publisher.close()
            live.send_signal(signal.SIGTERM)
            output, _ = live.communicate(timeout=30)
            stop.set()
            await asyncio.wait_for(sink_task, 30)
        assert live.returncode == 0, output.decode()
        assert b"live bars: " in output and b"refreshes" in output


def test_window_follows_the_slowest_sink_and_is_bounded() -> None:
    config = LiveBarsConfig(pg_dsn="", max_window_s=3600)
    now = 1_723_161_645_500_000_000  # 23:40:45.5
    assert window_start(now, None, config) == 1_723_161_600_000_000_000  # 23:40:35.5 -> 23:40
    assert window_start(now, now - 300 * 10**9, config) == 1_723_161_300_000_000_000  # a sink 5 min behind
    assert window_start(now, 0, config) == now - 3600 * 10**9 - (now - 3600 * 10**9) % (60 * 10**9)


def test_trades_older_than_the_window_are_marked_and_their_minutes_rebuilt() -> None:
    bus = 1_723_161_645_500_000_000  # 23:40:45.5
    ts_event = Trade.__struct_fields__.index("ts_event")

    def rows(*events: int) -> list[tuple[object, ...]]:
        width = len(Trade.__struct_fields__)
        return [tuple(event if i == ts_event else None for i in range(width)) for event in events]

    assert late_span(rows(bus - 1, bus - LATE_NS), bus) is None  # within the window's lag
    assert late_span(rows(bus - LATE_NS - 1, bus, bus - 3600 * 10**9), bus) == (bus - 3600 * 10**9, bus - LATE_NS - 1)
    assert late_span(rows(bus - 8 * 86_400 * 10**9), bus) is None  # older than any live bar kept
    minute = 60 * 10**9
    window = 1_723_161_600_000_000_000  # 23:40
    assert late_window(None, window, 0) is None
    # 23:37:10 .. 23:38:05 -> the minutes 23:37 and 23:38
    assert late_window((window - 170 * 10**9, window - 115 * 10**9), window, 0) == (window - 3 * minute,
                                                                                  window - minute)
    # a span reaching into the window stops where the window's own rebuild starts
    assert late_window((window - 170 * 10**9, window + 5 * 10**9), window, 0) == (window - 3 * minute, window)
    assert late_window((window + 1, window + 2), window, 0) is None  # the window rebuilds it anyway
    assert late_window((window - 2 * minute, window - minute), window, window) is None  # older than the bars kept
    assert late_window((0, window - minute), window, window - 150 * 10**9) == (window - 3 * minute, window)


def test_live_bars_equal_the_sealed_bars_bit_for_bit(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """A day of real Binance trades (BTCUSDT's recorded session, plus non-market prints) in TimescaleDB and
    the lake: the live bars refresh writes equal the bars the daily pipelines build from the sealed day, bit
    for bit, and the asset check says so; one live close moved by 1e-9 makes the check fail on that bar."""
    frames = [f for f in read_capture(BTCUSDT_SESSION) if f.kind == "ws" and b'"e":"trade"' in f.payload]
    trades = [r for r in normalize_frames("binance-usdm", frames)[0].records if isinstance(r, Trade)]
    day = dt.datetime.fromtimestamp(trades[0].ts_event / 1e9, dt.UTC).date()
    start_ns, end_ns = day_bounds_ns(day)
    trades = [t for t in trades if start_ns <= t.ts_event < end_ns]
    prints = [msgspec.structs.replace(t, trade_id=f"{t.trade_id}-liq", trade_type="liquidation", price=t.price * 1.01)
              for t in trades[::50]]
    assert len(trades) > 1000 and prints
    lake = tmp_path / "lake"
    write_records(str(lake), trades + prints, "live-test")
    with private_database(postgres, "ticklake_live_bars_sealed") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.cursor() as cursor:
                copy_rows(cursor, "trade", [msgspec.structs.astuple(t) for t in trades + prints])
            with contextlib.closing(connect_arrow(dsn)) as arrow:
                assert refresh(conn, arrow, start_ns, 0) > 0
            live = {every: read_live_bars(conn, every, day) for every in RESOLUTIONS}

        job = build_definitions(str(lake), dsn).resolve_implicit_global_asset_job_def()
        checks = [f"bars_{every}_live_bars_equal_sealed" for every in RESOLUTIONS]
        instance = DagsterInstance.ephemeral()
        result = job.execute_in_process(partition_key=day.isoformat(), instance=instance, op_selection=[
            "sealed_trade", *(f"bars_{every}" for every in RESOLUTIONS), *checks])
        for every in RESOLUTIONS:
            sealed = read_derived(str(lake), f"bars_{every}", day, bars.BAR_SCHEMA)
            assert sealed.height == live[every].height > 0
            order = ["venue", "instrument", "ts"]
            assert live[every].sort(order).equals(sealed.sort(order)), every
        evaluations = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
        for every in RESOLUTIONS:
            evaluation = evaluations[f"bars_{every}"]
            assert evaluation.passed, evaluation.metadata
            assert evaluation.metadata["live_bars"].value == live[every].height

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE bars_live SET close = close + 1e-9 WHERE resolution = '1m' "
                         "AND (instrument, time) = (SELECT instrument, min(time) FROM bars_live GROUP BY 1 LIMIT 1)")
        again = job.execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False,
                                       op_selection=checks)
        evaluations = {e.asset_key.to_user_string(): e for e in again.get_asset_check_evaluations()}
        assert evaluations["bars_1s"].passed
        altered = evaluations["bars_1m"]
        assert not altered.passed
        assert (altered.metadata["only_live"].value, altered.metadata["only_sealed"].value) == (1, 1)
