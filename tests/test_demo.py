"""`ticklake demo` end to end (run once per session by the `demo` fixture, tests/demo_data.py): it exits
0; every venue's trades and books land in TimescaleDB and the lake alike, every recorded trade exactly
once; the fixture frames go through the replay server too; the pipelines seal every day with trades
and build bars holding every trade; the report's numbers are the stores' numbers. And the demo
empties only stores it filled itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import nats
import polars as pl
import psycopg
import pytest
from psycopg import sql

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.flags import GAP_BEFORE
from normalize.records import RECORD_TYPES, Trade
from storage.seal_manifest import sealed_days
from tests.demo_data import DemoRun
from tests.pg_databases import private_database
from ticklake.demo import FIRST_DAY, SESSIONS, session_files
from ticklake.demo_state import DemoError, Held, Stores, contents, prepare
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

pytestmark = pytest.mark.xdist_group("demo")
"""Every module reading the demo's stores runs on one xdist worker, so the demo runs once."""

VENUES = ["binance-spot", "binance-usdm", "bitmex", "bybit", "coinbase", "deribit", "hyperliquid", "kraken",
          "kraken-futures", "okx"]


def _lake_rows_per_venue(lake: Path, record_type: str) -> dict[str, int]:
    counts = pl.scan_parquet(f"{lake}/{record_type}/**/*.parquet", hive_partitioning=True).group_by("venue").len()
    return dict(counts.collect().iter_rows())


def _trade_days(dsn: str) -> dict[dt.date, int]:
    """Trades per UTC day from the first day the demo runs the pipelines for."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT ts_event / 86400000000000, count(*) FROM trade GROUP BY 1").fetchall()
    days = {dt.date(1970, 1, 1) + dt.timedelta(days=day): count for day, count in rows}
    return {day: count for day, count in days.items() if day >= FIRST_DAY}


def test_the_demo_succeeds_and_says_where_to_look(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout[-4000:]
    assert demo.report["ok"] is True
    assert "demo ok" in demo.stdout
    for line in (f'psql "{demo.dsn}"', ".venv/bin/jupyter lab notebooks/", "ticklake pipelines dev",
                 f"lake          {demo.lake}"):
        assert line in demo.stdout, line
    assert [s["venue"] for s in demo.report["sessions"]] == [s.venue for s in SESSIONS]


def test_every_venue_lands_in_both_stores_as_the_report_says(demo: DemoRun) -> None:
    records = demo.report["records"]
    for venue in VENUES:
        for record_type in ("trade", "book_delta", "bbo"):
            assert records[record_type][venue]["timescale"] > 0, (record_type, venue)
    with psycopg.connect(demo.dsn) as conn:
        for record_type in RECORD_TYPES:
            query = sql.SQL("SELECT venue, count(*) FROM {} GROUP BY venue").format(sql.Identifier(record_type))
            in_timescale = dict(conn.execute(query).fetchall())
            reported = records.get(record_type, {})
            assert {venue: c["timescale"] for venue, c in reported.items()} == in_timescale, record_type
            assert {venue: c["lake"] for venue, c in reported.items()} == in_timescale, record_type
            if in_timescale:  # sealed days included: the seal kept every row
                assert _lake_rows_per_venue(demo.lake, record_type) == in_timescale, record_type


def test_every_recorded_trade_lands_exactly_once(demo: DemoRun) -> None:
    expected = set()
    for session in SESSIONS:
        out, _ = normalize_frames(session.venue, read_frames(session_files(session)))
        expected |= {(session.venue, r.instrument, r.trade_id) for r in out.records
                     if isinstance(r, Trade) and r.symbol in session.symbols}
    with psycopg.connect(demo.dsn) as conn:
        landed = conn.execute("SELECT venue, instrument, trade_id FROM trade").fetchall()
    assert len(landed) == len(set(landed)) == len(expected) == 32_454
    assert set(landed) == expected


def test_fixture_frames_go_through_the_replay_server(demo: DemoRun) -> None:
    """JSONL fixtures (no receive time) merged with timed captures, each venue's own channels."""
    with psycopg.connect(demo.dsn) as conn:
        def one(query: str) -> tuple[object, ...]:
            rows = conn.execute(query).fetchall()
            assert len(rows) == 1, (query, rows)
            return tuple(rows[0])

        assert one("SELECT price, size, side, order_side FROM liquidation WHERE venue = 'binance-usdm'") == (
            4706.04, 0.014, -1, 1)
        assert one("SELECT size, side, order_side FROM liquidation WHERE venue = 'bybit'") == (2846.0, -1, 1)
        assert one("SELECT mark_price, index_price FROM mark_index WHERE venue = 'hyperliquid' "
                   "AND symbol = 'MOODENG'") == (0.19963, 0.1995)  # its subscription is the last one sent
        assert one("SELECT open_interest FROM open_interest WHERE venue = 'okx' AND symbol = 'WNCG-USDT-SWAP'") == (
            644195.0,)
        assert one("SELECT count(*) FROM funding WHERE venue = 'binance-usdm'") == (2,)
        # BitMEX's liquidation insert (9,214 XBTUSD contracts of 1 USD at 10,106 USD: size in BTC) and the
        # Deribit perpetual's trades flagged as liquidations, from its tickers' and trades' fixtures
        assert one("SELECT price, size, side, order_side FROM liquidation WHERE venue = 'bitmex'") == (
            10106.0, 9214 / 10106, -1, 1)
        assert one("SELECT count(*), sum(size) FROM liquidation WHERE venue = 'deribit'") == (
            2, 0.2505873140172279 + 0.56072670180554)
        assert one("SELECT count(*) FROM funding WHERE venue = 'deribit' AND interval_s = 28800") == (2,)


def test_pipelines_seal_every_day_with_trades_and_bar_every_trade(demo: DemoRun) -> None:
    runs = {dt.date.fromisoformat(run["day"]): run for run in demo.report["runs"]}
    assert all(run["success"] for run in runs.values())
    trade_days = _trade_days(demo.dsn)
    assert set(trade_days) == set(runs) and len(runs) == 7
    bars = pl.read_parquet(f"{demo.lake}/derived/bars_1m/**/*.parquet", hive_partitioning=True)
    with psycopg.connect(demo.dsn) as conn:
        in_timescale = dict(conn.execute("SELECT ts / 86400000000000, count(*) FROM bars_1m GROUP BY 1").fetchall())
    for day, trades in trade_days.items():
        of_day = bars.filter(pl.col("date") == day)
        assert of_day["trades"].sum() == trades, day  # every trade of the day in exactly one 1m bar
        assert demo.report["bars"]["bars_1m"][day.isoformat()] == of_day.height > 0
        assert in_timescale[(day - dt.date(1970, 1, 1)).days] == of_day.height
    sealed = {day for record_type in ("trade", "book_delta", "bbo") for _, day in sealed_days(str(demo.lake),
                                                                                           record_type)}
    assert sealed == set(runs)  # the days with trades, and only those


def test_gap_journal_and_dead_letters_are_reported(demo: DemoRun) -> None:
    sessions = Counter(session.venue for session in SESSIONS)
    # the trade fixture's BTCUSDT trades of 2019 and 2020 play before the 2024 session: two jumps in
    # BTCUSDT's raw trade ids (journaled, not fetched again: Binance serves raw trades by id only
    # with an API key)
    # Deribit's trade fixture (three BTC-PERPETUAL frames of 2019 and 2020) jumps twice in trade_seq; the
    # replay server has no trade history to serve, so the handler journals what it could not fetch
    trade_gaps = {"binance-usdm": {"trade_gap": 2}, "deribit": {"trade_gap": 2, "trades_lost": 1}}
    routes = {"binance-usdm": 2}  # a Binance USD-M feed connects to /public and /market
    for venue, count in sessions.items():
        connections = count * routes.get(venue, 1)
        assert demo.report["feed_events"][venue] == {"connect": connections, "disconnect": connections,
                                                     **trade_gaps.get(venue, {})}
    flagged: Counter[str] = Counter()
    with psycopg.connect(demo.dsn) as conn:
        for record_type in RECORD_TYPES:
            query = sql.SQL("SELECT venue, count(*) FROM {} WHERE flags & %s <> 0 GROUP BY venue").format(
                sql.Identifier(record_type))
            flagged.update(dict(conn.execute(query, (GAP_BEFORE,)).fetchall()))
    assert demo.report["gap_flagged"] == dict(flagged)
    # the OKX fixture's funding frame without a rate is the one frame a normalizer rejects
    assert demo.report["dead_letters"] == {"normalizers": {"okx": 1}, "sinks": 0}
    letter = json.loads((demo.home / "dead_letters" / "okx.jsonl").read_text())
    assert "SOS-USDT-SWAP without fundingRate" in letter["reason"]


def test_the_venue_analytics_of_the_new_venues(demo: DemoRun) -> None:
    """Binance spot's BTCUSDT meets the USD-M perpetual in the same seven minutes; Kraken Futures' ETH and
    XRP futures meet their perpetuals; each day's checks passed (the runs succeeded)."""
    with psycopg.connect(demo.dsn) as conn:
        basis = conn.execute("SELECT spot_venue, spot_instrument, perp_venue, perp_instrument, count(*), "
                             "count(DISTINCT ts / 60000000000) FROM spot_perp_basis GROUP BY 1, 2, 3, 4").fetchall()
        curve = conn.execute("SELECT venue, instrument, reference_instrument, rank FROM term_structure "
                             "ORDER BY instrument").fetchall()
        wide = conn.execute("SELECT count(*) FROM spot_perp_basis WHERE basis_bps NOT BETWEEN -6 AND -2").fetchone()
    assert basis == [("binance-spot", "BTC-USDT", "binance-usdm", "BTC-USDT-PERP", 7, 7)]
    assert wide == (0,)
    assert curve == [("kraken-futures", "ETH-USD-20210730", "ETH-USD-PERP", 1),
                     ("kraken-futures", "ETH-USD-20211231", "ETH-USD-PERP", 2),
                     ("kraken-futures", "XRP-USD-20210924", "XRP-USD-PERP", 1)]
    lake = pl.read_parquet(f"{demo.lake}/derived/spot_perp_basis/**/*.parquet", hive_partitioning=True)
    assert lake.height == 7 and set(lake["venue"]) == {"all"}


def _fill(stores: Stores, home: Path) -> None:
    """Something in every store: a bus message, a table row, a lake file, a raw capture."""
    async def publish() -> None:
        client = await nats.connect(stores.nats_url)
        js = client.jetstream()
        await js.add_stream(name="TICKS", subjects=["ticks.>"])
        await js.publish("ticks.trade.okx.BTC-USDT", b"x")
        await client.close()

    asyncio.run(publish())
    with psycopg.connect(stores.dsn) as conn:
        conn.execute("INSERT INTO ticklake_sink_offsets (consumer, stream, last_seq) VALUES ('timescale', 'TICKS', 7)")
    (Path(stores.lake_root) / "trade").mkdir(parents=True)
    (Path(stores.lake_root) / "trade" / "part.parquet").write_bytes(b"x")
    (home / "capture").mkdir()
    (home / "capture" / "okx.tlcap.zst").write_bytes(b"x")


def test_the_demo_empties_only_stores_it_filled(postgres: EmbeddedPostgres, bus: EmbeddedNats,
                                                tmp_path: Path) -> None:
    with private_database(postgres, "ticklake_demo_state_test") as dsn:
        home, lake = tmp_path / "home", tmp_path / "lake"
        stores = Stores(dsn, bus.url, str(lake))
        assert not prepare(stores, home)  # nothing to empty; from now on these stores are the demo's
        _fill(stores, home)
        held = Held({"TICKS": 1}, ["ticklake_sink_offsets"], 1, [home / "capture"])
        assert prepare(stores, home) == held
        assert not contents(stores, home)
        _fill(stores, home)
        (home / "demo" / "stores.json").unlink()  # stores the demo has no record of having filled
        with pytest.raises(DemoError, match="did not write .stream TICKS: 1 messages; 1 tables with rows "
                                            r"\(ticklake_sink_offsets\); 1 lake files; "):
            prepare(stores, home)
        assert contents(stores, home) == held  # left alone
