"""The Dagster pipelines end to end over the real-capture lake: every asset of several days
materializes in-process, checks pass, outputs hold exactly the independently computed values,
re-runs are idempotent, and retention honours the seals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
import pytest
from dagster import (
    DagsterInstance,
    ExecuteInProcessResult,
    RunRequest,
    build_run_status_sensor_context,
    build_schedule_context,
)

from normalize.records import RECORD_TYPES
from pipelines.definitions import build_definitions
from pipelines.partitions import utc_today
from pipelines.runner import pipelines_env, plan_days, run_days
from pipelines.timescale_tables import TIMESCALE_TABLES, pg_type, retime_derived_ddl, table_ddl
from storage.timescale_rows import copy_table
from tests.pg_databases import private_database
from tests.pipelines_chunked_data import build_chunked_lake, truth
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
DAYS = ["2021-07-22", "2022-05-13", "2023-04-05", "2023-07-17", "2024-08-08", "2024-08-09", "2024-12-01",
        "2025-01-26"]
"""Every day with trades, books or funding in the sample lake from 2021-07-01 on (the fixture days
before that, and 2025-02-25, stay unsealed: retention must keep them)."""
DATABASE = "ticklake_pipelines_test"


@pytest.fixture(scope="module")
def pg_dsn(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A database of this module's own in the session cluster, migrated: derived tables and
    retention see only what these tests put there."""
    with private_database(postgres, DATABASE) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chunked_lake(tmp_path_factory.mktemp("dagster-lake"))


@pytest.fixture(scope="module")
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def runs(lake: Path, pg_dsn: str, instance: DagsterInstance) -> dict[str, ExecuteInProcessResult]:
    """The scheduled job (every asset and check) for each sample day, one in-process run per day: a
    backfill."""
    job = build_definitions(str(lake), pg_dsn).resolve_job_def("daily")
    return {day: job.execute_in_process(partition_key=day, instance=instance) for day in DAYS}


def test_every_run_succeeds(runs: dict[str, ExecuteInProcessResult]) -> None:
    for day, result in runs.items():
        assert result.success, day


def _minute_bars(trades: pl.DataFrame) -> dict[tuple[str, str, int], tuple[Decimal, ...]]:
    """1m bars computed with Decimal over trades in (ts_event, ts_recv, trade id) order."""
    bars: dict[tuple[str, str, int], list[Decimal]] = {}
    rows = sorted(trades.iter_rows(named=True), key=lambda r: (r["venue"], r["instrument"], r["ts_event"],
                                                              r["ts_recv"], len(r["trade_id"]), r["trade_id"]))
    for row in rows:
        ns = int(row["ts_event"].timestamp()) * 10**9
        key = (row["venue"], row["instrument"], ns - ns % 60_000_000_000)
        price, size = Decimal(repr(row["price"])), Decimal(repr(row["size"]))
        if key not in bars:
            bars[key] = [price, price, price, price, Decimal(0), Decimal(0)]
        bar = bars[key]
        bar[1], bar[2], bar[3] = max(bar[1], price), min(bar[2], price), price
        bar[4] += size
        bar[5] += 1
    return {key: tuple(values) for key, values in bars.items()}


def test_minute_bars_in_lake_and_timescale(runs: dict[str, ExecuteInProcessResult], lake: Path, pg_dsn: str) -> None:
    trades = truth("trade").filter(pl.col("date") == dt.date(2024, 8, 8))
    expected = _minute_bars(trades)
    assert len(expected) >= 5
    files = sorted((lake / "derived" / "bars_1m").glob("venue=*/date=2024-08-08/*.parquet"))
    assert [f.relative_to(lake).as_posix() for f in files] == [
        "derived/bars_1m/venue=binance-usdm/date=2024-08-08/part-0.parquet"]
    lake_bars = pl.read_parquet(files[0])
    got = {(r["venue"], r["instrument"], r["ts"].timestamp().__int__() * 10**9): (
        Decimal(repr(r["open"])), Decimal(repr(r["high"])), Decimal(repr(r["low"])), Decimal(repr(r["close"])),
        r["volume"], r["trades"]) for r in lake_bars.iter_rows(named=True)}
    assert got.keys() == expected.keys()
    for key, (o, h, lo, c, volume, count) in got.items():
        e = expected[key]
        assert (o, h, lo, c, count) == (e[0], e[1], e[2], e[3], e[5])
        assert volume == pytest.approx(float(e[4]), rel=1e-12)
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT venue, instrument, ts, trades FROM bars_1m WHERE ts >= %s AND ts < %s",
                            (1723075200 * 10**9, 1723161600 * 10**9)).fetchall()
    assert sorted((v, i, t) for v, i, t, _ in rows) == sorted(expected)
    assert {(v, i, t): n for v, i, t, n in rows} == {k: int(e[5]) for k, e in expected.items()}


GRAPH_QUERY = ("{ assetNodes { assetKey { path } dependencyKeys { path } "
               "assetChecksOrError { ... on AssetChecks { checks { name } } } } }")


def _ui_graph(port: int, timeout_s: float = 60) -> dict[str, tuple[set[str], set[str]]]:
    """Asset -> (upstream assets, checks), as the running Dagster UI's GraphQL API serves them."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"query": GRAPH_QUERY}).encode())
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = json.loads(urllib.request.urlopen(request, timeout=10).read())["data"]["assetNodes"]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the code server is still loading
    return {"/".join(node["assetKey"]["path"]): ({"/".join(dep["path"]) for dep in node["dependencyKeys"]},
                                                 {check["name"] for check in node["assetChecksOrError"]["checks"]})
            for node in nodes}


def test_dagster_dev_shows_the_assets_with_lineage_and_checks(lake: Path, pg_dsn: str, tmp_path: Path) -> None:
    """`ticklake pipelines dev` (which runs `dagster dev -m pipelines`) serves exactly the graph the
    definitions declare, with its run history under TICKLAKE_HOME and telemetry off."""
    definitions = build_definitions(str(lake), pg_dsn)
    graph = definitions.resolve_asset_graph()
    expected = {key.to_user_string(): ({dep.to_user_string() for dep in graph.get(key).parent_keys},
                                       {check.name for check in graph.get_check_keys_for_assets({key})})
                for key in graph.get_all_asset_keys()}
    assert expected["bars_1m"] == ({"sealed_trade"}, {"bars_consistent", "live_bars_equal_sealed"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKLAKE_", "DAGSTER_"))}
    env.update(TICKLAKE_LAKE=str(lake), TICKLAKE_PG_DSN=pg_dsn, TICKLAKE_HOME=str(tmp_path / "home"))
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).with_name("ticklake")), "pipelines", "dev", "--port", str(port)],
                          env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_listening(port, 120), ui.communicate(timeout=10)[0] if ui.poll() is not None else "no UI"
        assert _ui_graph(port) == expected
    finally:
        ui.terminate()
        ui.wait(60)
    assert "telemetry:\n  enabled: false" in (tmp_path / "home" / "dagster" / "dagster.yaml").read_text()


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "_manifests" not in p.parts}


def test_every_asset_is_materialized_for_every_day(runs: dict[str, ExecuteInProcessResult]) -> None:
    specs = build_definitions("/nonexistent", "postgresql://x").resolve_all_asset_specs()
    names = {spec.key.to_user_string() for spec in specs}
    for day, result in runs.items():
        materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()
                        for m in [m.materialization]}
        assert materialized == names, day
        assert {m.materialization.partition for m in result.get_asset_materialization_events()} == {day}


def test_sealed_lake_holds_each_record_once(runs: dict[str, ExecuteInProcessResult], lake: Path) -> None:
    days = {dt.date.fromisoformat(day) for day in DAYS}
    for record_type in RECORD_TYPES:
        paths = [p for p in sorted(lake.glob(f"{record_type}/venue=*/date=*/*.parquet"))
                 if dt.date.fromisoformat(p.parent.name[5:]) in days]
        assert all(p.name.startswith("sealed-g0001-") for p in paths), paths
        expected = truth(record_type).filter(pl.col("date").is_in(days)).drop("date")
        got = pl.concat([pl.read_parquet(p) for p in paths]) if paths else expected.clear()
        assert got.sort(expected.columns).equals(expected.sort(expected.columns)), record_type


def test_partitions_run_from_the_lakes_first_day_to_the_last_closed_one(lake: Path, pg_dsn: str) -> None:
    """The first partition is the lake's earliest day folder of any record type (2019 fixtures here), or the
    configured one; the last is yesterday, or today for `ticklake pipelines run`."""
    earliest = min(dt.date.fromisoformat(p.name[5:]) for p in lake.glob("*/venue=*/date=*"))  # not derived/*/
    assert earliest < dt.date(2021, 1, 1)
    today = utc_today()
    yesterday = today - dt.timedelta(days=1)
    for first_day, through_today, expected in [(None, False, (earliest, yesterday)), (None, True, (earliest, today)),
                                               (dt.date(2023, 1, 1), False, (dt.date(2023, 1, 1), yesterday))]:
        definitions = build_definitions(str(lake), pg_dsn, first_day, through_today=through_today)
        partitions = definitions.resolve_job_def("daily").partitions_def
        assert partitions is not None
        assert (partitions.get_first_partition_key(), partitions.get_last_partition_key()) == (
            expected[0].isoformat(), expected[1].isoformat())


def test_schedule_runs_the_previous_utc_day(lake: Path, pg_dsn: str) -> None:
    definitions = build_definitions(str(lake), pg_dsn)
    schedule = definitions.resolve_schedule_def("daily_schedule")
    assert schedule.cron_schedule == "30 0 * * *" and schedule.execution_timezone in (None, "UTC")
    context = build_schedule_context(scheduled_execution_time=dt.datetime(2024, 8, 9, 0, 30, tzinfo=dt.UTC))
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests or []] == ["2024-08-08"]


def test_a_rerun_changes_no_file_and_no_row(runs: dict[str, ExecuteInProcessResult], lake: Path, pg_dsn: str,
                                           instance: DagsterInstance) -> None:
    before, rows_before = _digest(lake), _timescale_rows(pg_dsn)
    job = build_definitions(str(lake), pg_dsn).resolve_job_def("daily")
    assert job.execute_in_process(partition_key="2024-08-08", instance=instance).success
    assert _digest(lake) == before
    assert _timescale_rows(pg_dsn) == rows_before


def _timescale_rows(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in TIMESCALE_TABLES}


def test_partition_range_from_the_command_line(lake: Path, pg_dsn: str, tmp_path: Path,
                                               runs: dict[str, ExecuteInProcessResult]) -> None:
    """`dagster asset materialize --partition-range`: one run over two days, the same results as the
    in-process runs (a fresh chunked lake; Timescale rows replaced with the same values)."""
    fresh = build_chunked_lake(tmp_path / "lake")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(pipelines_env(tmp_path / "home", str(fresh), pg_dsn))
    rows_before = _timescale_rows(pg_dsn)
    result = subprocess.run([str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipelines",
                             "--select", "sealed_trade,bars_1m", "--partition-range", "2024-08-08...2024-08-09"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for path in ["trade/venue=binance-usdm/date=2024-08-08/sealed-g0001-00000.parquet",
                 "derived/bars_1m/venue=binance-usdm/date=2024-08-08/part-0.parquet"]:
        assert pl.read_parquet(fresh / path).equals(pl.read_parquet(lake / path)), path
    assert not list((fresh / "trade").glob("venue=*/date=2024-08-08/*.chunk*.parquet"))
    assert _timescale_rows(pg_dsn) == rows_before
    assert (tmp_path / "home" / "dagster").is_dir()


def test_retention_after_the_daily_run_drops_only_sealed_days(runs: dict[str, ExecuteInProcessResult], lake: Path,
                                                              pg_dsn: str, instance: DagsterInstance) -> None:
    """Ticks of every sample day in Timescale; the sensor's retention run after a daily run drops the
    trade days (all sealed) and keeps every liquidation (2020-03-13 and 2025-02-25 are not sealed)."""
    with psycopg.connect(pg_dsn) as conn:
        with conn.cursor() as cursor:
            for record_type in ("trade", "liquidation"):
                copy_table(cursor, record_type, truth(record_type).drop("date").to_arrow())
        conn.commit()
    liquidations = truth("liquidation").height
    assert liquidations >= 2
    definitions = build_definitions(str(lake), pg_dsn)
    daily = definitions.resolve_job_def("daily").execute_in_process(partition_key="2024-08-08", instance=instance)
    success = next(e for e in daily.all_events if e.event_type_value == "PIPELINE_SUCCESS")
    sensor = definitions.resolve_sensor_def("retention_after_daily")
    context = build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=success,
                                              dagster_instance=instance, dagster_run=daily.dagster_run)
    request = sensor(context)
    assert isinstance(request, RunRequest) and request.run_key == daily.run_id
    assert sensor.job_name == "retention_job"  # type: ignore[attr-defined]
    retention = definitions.resolve_job_def("retention_job").execute_in_process(instance=instance)
    assert retention.success
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM trade").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM liquidation").fetchone() == (liquidations,)


@pytest.mark.parametrize("table", sorted(TIMESCALE_TABLES))
def test_derived_tables_match_their_declarations(pg_dsn: str, table: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                               "ORDER BY ordinal_position", (table,)).fetchall()
        dimension = conn.execute("SELECT column_name FROM timescaledb_information.dimensions "
                                 "WHERE hypertable_name = %s", (table,)).fetchall()
    assert columns == [*((name, pg_type(dtype)) for name, dtype in TIMESCALE_TABLES[table].columns.items()),
                       ("time", "timestamp with time zone")]
    assert dimension == [("time",)]


def test_migration_holds_the_generated_ddl() -> None:
    """0005 created the first tables (on their bigint or date column), 0011 moved those to `time`, as generated
    (a table added later is created on `time` by table_ddl)."""
    sql = (ROOT / "storage/migrations/0005_derived_tables.sql").read_text()
    first = [table for table in TIMESCALE_TABLES if f"CREATE TABLE {table} (" in sql]
    assert "bars_1m" in first and "order_flow_imbalance" in first
    moved = (ROOT / "storage/migrations/0011_time_columns.sql").read_text()
    for table in first:
        assert retime_derived_ddl([table]) in moved, table


def test_every_later_table_is_created_as_generated() -> None:
    """Tables added after 0011 (0012: the venue analytics) are created on `time` by table_ddl, verbatim."""
    first = (ROOT / "storage/migrations/0005_derived_tables.sql").read_text()
    later = [table for table in TIMESCALE_TABLES if f"CREATE TABLE {table} (" not in first]
    assert later == ["spot_perp_basis", "term_structure", "funding_comparison"]
    sql = (ROOT / "storage/migrations/0012_venue_analytics.sql").read_text()
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    assert body.strip() == "\n\n".join(table_ddl(table) for table in later)


def test_run_days_records_its_runs_under_ticklake_home(pg_dsn: str, tmp_path: Path) -> None:
    fresh = build_chunked_lake(tmp_path / "lake")
    plan = plan_days(dt.date(2024, 8, 7), dt.date(2024, 8, 9), lake_root=str(fresh))
    assert (plan.days, plan.skipped) == ([dt.date(2024, 8, 8), dt.date(2024, 8, 9)], [dt.date(2024, 8, 7)])
    runs = list(run_days(plan.days, ticklake_home=tmp_path / "home", lake_root=str(fresh), pg_dsn=pg_dsn,
                         selection=["sealed_trade"]))
    assert [(r.day, r.success) for r in runs] == [(dt.date(2024, 8, 8), True), (dt.date(2024, 8, 9), True)]
    recorded = DagsterInstance.from_config(str(tmp_path / "home" / "dagster")).get_runs()
    assert sorted(run.run_id for run in recorded) == sorted(r.run_id for r in runs)
    assert [p.name for p in (fresh / "trade/venue=binance-usdm/date=2024-08-08").iterdir()] == [
        "sealed-g0001-00000.parquet"]
    assert len(list((fresh / "bbo/venue=binance-usdm/date=2024-08-08").iterdir())) == 4  # not selected


HOUR_NS = 3_600 * 10**9
YEAR_S = 365 * 24 * 3600
FUNDING_DAYS = {dt.date(2023, 4, 5), dt.date(2023, 7, 17)}
"""Bybit stream forecasts of two BTC perpetuals (one spread), and Hyperliquid's settled history."""


def _ns_rows(frame: pl.DataFrame) -> list[dict[str, object]]:
    return frame.with_columns(pl.col(pl.Datetime).dt.epoch("ns")).to_dicts()


def _expected_settlements() -> dict[tuple[str, str, int], tuple[float, int | None]]:
    """(venue, instrument, funding hour) -> (rate, interval_s): the venue's settled rate (REST history
    stamped at or after the settlement) where it exists, else the last stream forecast made up to it."""
    settled: dict[tuple[str, str, int], tuple[float, int | None]] = {}
    forecast: dict[tuple[str, str, int], tuple[float, int | None]] = {}
    for row in sorted(_ns_rows(truth("funding")), key=lambda r: (r["ts_event"], r["ts_recv"])):
        if row["next_funding_ts"] is None:
            continue
        settles = int(row["next_funding_ts"])  # type: ignore[call-overload]
        key = (str(row["venue"]), str(row["instrument"]), (settles + HOUR_NS // 2) // HOUR_NS * HOUR_NS)
        if int(row["flags"]) & 32 and int(row["ts_event"]) >= settles:  # type: ignore[call-overload]
            settled[key] = (float(row["funding_rate"]), row["interval_s"])  # type: ignore[arg-type]
        elif int(row["ts_event"]) <= settles:  # type: ignore[call-overload]
            forecast[key] = (float(row["funding_rate"]), row["interval_s"])  # type: ignore[arg-type]
    return {**forecast, **settled}


def _in_days(ns: int, days: set[dt.date]) -> bool:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ns // (24 * HOUR_NS)) in days


def test_funding_history_and_spreads_in_timescale(runs: dict[str, ExecuteInProcessResult], pg_dsn: str) -> None:
    settlements = _expected_settlements()
    expected = {(v, i, t, rate) for (v, i, t), (rate, _) in settlements.items() if _in_days(t, FUNDING_DAYS)}
    with psycopg.connect(pg_dsn) as conn:
        history = conn.execute("SELECT venue, instrument, funding_time, rate FROM funding_history").fetchall()
        spreads = conn.execute("SELECT underlying, funding_time, venue, instrument, annualized_rate, spread "
                               "FROM funding_spreads").fetchall()
    got = {row for row in history if _in_days(row[2], FUNDING_DAYS)}
    assert len(expected) >= 20 and got == expected
    # each settlement pays for the hours of its interval ending at it; per BTC hour, max - min across perpetuals
    hours: dict[tuple[str, int], dict[tuple[str, str], float]] = {}
    for (venue, instrument, settles), (rate, interval_s) in sorted(settlements.items(), key=lambda kv: -kv[0][2]):
        if not instrument.endswith("-PERP") or interval_s is None:
            continue
        for back in range(-(-interval_s // 3600)):
            hours.setdefault((instrument.split("-")[0], settles - back * HOUR_NS), {})[(venue, instrument)] = (
                rate * YEAR_S / interval_s)
    expected_spreads = {
        (underlying, hour, venue, instrument, annualized,
         max(quotes.values()) - min(quotes.values()) if len(quotes) > 1 else None)
        for (underlying, hour), quotes in hours.items() if _in_days(hour, FUNDING_DAYS)
        for (venue, instrument), annualized in quotes.items()}
    assert {row for row in spreads if _in_days(row[1], FUNDING_DAYS)} == expected_spreads
    assert any(row[5] is not None for row in expected_spreads)


def test_every_check_passes_with_its_numbers(runs: dict[str, ExecuteInProcessResult]) -> None:
    # per sealed type 2, crossed books, completeness, 5 time bars, 2 live bars, spot-perp basis 1, term structure 1,
    # funding comparison 2
    expected_checks = 2 * len(RECORD_TYPES) + 2 + 5 + 2 + 4
    for day, result in runs.items():
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == expected_checks, day
        failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
        assert failed == [], day
    btc = {(e.asset_key.to_user_string(), e.check_name): e.metadata
           for e in runs["2024-08-08"].get_asset_check_evaluations()}
    assert btc[("sealed_book_delta", "no_duplicate_keys")]["rows"].value == 287_109
    assert btc[("sealed_book_delta", "no_duplicate_keys")]["extra_rows"].value == 0
    assert btc[("bars_1m", "bars_consistent")]["bars"].value == len(_minute_bars(
        truth("trade").filter(pl.col("date") == dt.date(2024, 8, 8))))


def test_completeness_scores_the_real_gap(runs: dict[str, ExecuteInProcessResult]) -> None:
    """The dropped depth frame: a gap and a resync_start that never completes, so the BTC book is out
    from the earliest of the two events to midnight."""
    journal = _ns_rows(truth("feed_status").filter(pl.col("date") == dt.date(2024, 8, 8)))
    assert sorted(str(r["event"]) for r in journal) == ["gap", "resync_start"]
    start = min(int(r["ts_event"]) for r in journal)  # type: ignore[call-overload]
    outage_s = Decimal(1723161600 * 10**9 - start) / 10**9
    for day, result in runs.items():
        evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "completeness")
        scores = evaluation.metadata["scores"].value
        if day == "2024-08-08":
            assert scores == [{"venue": "binance-usdm", "date": day, "gaps": 1, "checksum_failures": 0, "resyncs": 1,
                               "resyncs_done": 0, "stale": 0, "disconnects": 0, "queue_overflows": 0,
                               "trade_gaps": 0, "trades_lost": 0,
                               "affected_s": pytest.approx(float(outage_s), abs=1e-9),
                               "completeness": pytest.approx(float(1 - outage_s / 86_400), abs=1e-15)}]
            assert evaluation.metadata["min_completeness"].value < 0.9988
        else:
            assert {score["completeness"] for score in scores} <= {1.0}, day


def test_checks_catch_an_unsealed_partition(pg_dsn: str, tmp_path: Path, instance: DagsterInstance) -> None:
    """The same checks over the raw chunk files (not sealed): the duplicates and the step back at each
    chunk's overlap are found and counted."""
    fresh = build_chunked_lake(tmp_path / "lake")
    raw = pl.concat([pl.read_parquet(p) for p in sorted(fresh.glob("book_delta/venue=binance-usdm/date=2024-08-08/*"))])
    keys = ["venue", "instrument", "ts_event", "exch_seq", "ts_recv", "side", "price"]
    job = build_definitions(str(fresh), pg_dsn).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(partition_key="2024-08-08", instance=instance, raise_on_error=False, op_selection=[
        "sealed_book_delta_no_duplicate_keys", "sealed_book_delta_ts_event_in_order"])
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not result.get_asset_materialization_events()
    duplicates = evaluations["no_duplicate_keys"]
    assert not duplicates.passed
    assert duplicates.metadata["extra_rows"].value == raw.height - raw.select(keys).n_unique()
    assert not evaluations["ts_event_in_order"].passed


@pytest.mark.parametrize("table", sorted(TIMESCALE_TABLES))
def test_timescale_holds_what_the_lake_holds(runs: dict[str, ExecuteInProcessResult], lake: Path, pg_dsn: str,
                                             table: str) -> None:
    files = [p for p in sorted((lake / "derived" / table).glob("venue=*/date=*/part-0.parquet"))
             if p.parent.name[5:] in DAYS]
    frame = pl.concat([pl.read_parquet(p) for p in files], how="vertical_relaxed") if files else pl.DataFrame()
    columns = list(TIMESCALE_TABLES[table].columns)
    expected = sorted(frame.select(columns).with_columns(pl.col(pl.Datetime).dt.epoch("ns")).iter_rows(),
                      key=repr) if files else []
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # not `time`: a copy of ts
    assert sorted(rows, key=repr) == expected


def test_order_flow_and_spreads_of_the_btc_day(runs: dict[str, ExecuteInProcessResult], pg_dsn: str) -> None:
    day = dt.date(2024, 8, 8)
    flow: dict[int, list[Decimal]] = {}
    for row in _ns_rows(truth("trade").filter(pl.col("date") == day)):
        minute = int(row["ts_event"]) // 60_000_000_000 * 60_000_000_000  # type: ignore[call-overload]
        sides = flow.setdefault(minute, [Decimal(0), Decimal(0)])
        size = Decimal(repr(row["size"]))
        if row["side"] == 1:
            sides[0] += size
        elif row["side"] == -1:
            sides[1] += size
    quotes: dict[bool, int] = {}
    for row in truth("bbo").filter(pl.col("date") == day).to_dicts():
        if row["bid_price"] is not None and row["ask_price"] is not None:
            derived = bool(row["flags"] & 64)
            quotes[derived] = quotes.get(derived, 0) + 1
    start, end = 1723075200 * 10**9, 1723161600 * 10**9
    with psycopg.connect(pg_dsn) as conn:
        got = conn.execute("SELECT ts, buy_volume, sell_volume, imbalance FROM order_flow_imbalance "
                           "WHERE venue = 'binance-usdm' AND ts >= %s AND ts < %s ORDER BY ts", (start, end)).fetchall()
        spread = dict(conn.execute("SELECT derived, quotes FROM spread_stats WHERE date = %s", (day,)).fetchall())
    assert [ts for ts, *_ in got] == sorted(flow)
    for ts, buy, sell, imbalance in got:
        b, s = flow[ts]
        assert (buy, sell) == (pytest.approx(float(b), rel=1e-12), pytest.approx(float(s), rel=1e-12))
        assert imbalance == pytest.approx(float((b - s) / (b + s)), rel=1e-12)
    assert spread == quotes and set(quotes) == {False, True}
