"""`ticklake pipelines run` as a user runs it: a subprocess with TICKLAKE_HOME in a temp dir and a
database of its own, over a lake that `ticklake normalize` wrote from the Binance trade fixture (one
BTCUSDT trade on 2019-11-22, an ETHUSDT trade on 2020-07-29 and a BTCUSDT trade on 2020-08-01).

History older than any fixed start date is sealed; today's open day runs without its seal; a bad day
is one line on stderr and exit code 2; the terminal shows the command's own lines only, Dagster's go
to $TICKLAKE_HOME/logs/pipelines.log unless --verbose.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest

from pipelines.partitions import day_bounds_ns, utc_today
from storage.parquet_files import filesystem_for, write_atomic
from storage.seal_manifest import sealed_days
from tests import binance_data
from tests.cli_replay import TICKLAKE
from tests.pg_databases import private_database
from ticklake.stack.postgres import EmbeddedPostgres

DATABASE = "ticklake_pipelines_cli_test"
TRADES = binance_data.DATA / "trade.tardis-fixture.jsonl"
OLD_DAYS = [dt.date(2019, 11, 22), dt.date(2020, 7, 29), dt.date(2020, 8, 1)]
RUN_LINE = r"(?P<day>\d{4}-\d\d-\d\d)  ok      run [0-9a-f-]{36}"


@pytest.fixture(scope="module")
def env(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a user whose lake holds the fixture's trades (and its feed_status journal)."""
    home = tmp_path_factory.mktemp("pipelines-cli") / "home"
    with private_database(postgres, DATABASE) as dsn:
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        run_env.update(TICKLAKE_HOME=str(home), TICKLAKE_PG_DSN=dsn)
        normalized = _ticklake(run_env, "normalize", "binance-usdm", str(TRADES), "--out", str(home / "lake"))
        assert normalized.returncode == 0, normalized.stderr
        yield run_env


def _ticklake(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TICKLAKE, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def _lake(env: dict[str, str]) -> Path:
    return Path(env["TICKLAKE_HOME"]) / "lake"


def _bars_1m(env: dict[str, str], day: dt.date) -> pl.DataFrame:
    return pl.read_parquet(_lake(env) / f"derived/bars_1m/venue=binance-usdm/date={day}/part-0.parquet")


def _timescale_bars(env: dict[str, str], day: dt.date) -> list[tuple[str, int]]:
    with psycopg.connect(env["TICKLAKE_PG_DSN"]) as conn:
        return conn.execute("SELECT instrument, trades FROM bars_1m WHERE ts >= %s AND ts < %s ORDER BY ts",
                            day_bounds_ns(day)).fetchall()


def test_old_history_is_sealed_and_the_terminal_shows_only_the_summary(env: dict[str, str]) -> None:
    result = _ticklake(env, "pipelines", "run", "--from", "2019-11-22", "--to", "2020-08-01")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    log = Path(env["TICKLAKE_HOME"]) / "logs" / "pipelines.log"
    skipped = (OLD_DAYS[-1] - OLD_DAYS[0]).days + 1 - len(OLD_DAYS)
    assert len(lines) == len(OLD_DAYS) + 2, lines
    runs = [re.fullmatch(RUN_LINE, line) for line in lines[:3]]
    assert [run["day"] if run else line for run, line in zip(runs, lines, strict=False)] == [
        day.isoformat() for day in OLD_DAYS]
    assert lines[3:] == [f"{skipped} days without data in the lake: skipped", f"Dagster's log: {log}"]
    assert sealed_days(str(_lake(env)), "trade") == {("binance-usdm", day) for day in OLD_DAYS}
    assert sealed_days(str(_lake(env)), "feed_status") == {("binance-usdm", dt.date(2020, 8, 1))}
    for day in OLD_DAYS:
        files = sorted(p.name for p in (_lake(env) / f"trade/venue=binance-usdm/date={day}").iterdir())
        assert files == ["sealed-g0001-00000.parquet"], day
    bars = _bars_1m(env, OLD_DAYS[0])
    assert bars.select("instrument", "open", "close", "volume", "trades").rows() == [
        ("BTC-USDT-PERP", 7627.6, 7627.6, 0.044, 1)]  # the fixture's first trade: p 7627.60, q 0.044
    assert _timescale_bars(env, OLD_DAYS[0]) == [("BTC-USDT-PERP", 1)]
    assert _timescale_bars(env, OLD_DAYS[1]) == []  # its one print is the insurance fund's (X INSURANCE_FUND):
    # not a market trade, so bars leave it out (pipelines/bars.py)
    text = log.read_text()
    assert text.count("RUN_SUCCESS") == len(OLD_DAYS) and "STEP_SUCCESS" in text  # Dagster's lines, kept there


def test_verbose_shows_dagsters_own_lines(env: dict[str, str]) -> None:
    result = _ticklake(env, "pipelines", "run", "--from", "2019-11-22", "--verbose")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [re.fullmatch(RUN_LINE, line) is not None for line in result.stdout.splitlines()] == [True]
    assert result.stderr.count("STEP_SUCCESS") >= 27 and "RUN_SUCCESS" in result.stderr


def test_todays_open_day_runs_without_its_seal(env: dict[str, str]) -> None:
    """The fixture's first trade again, moved to today: bars, in the lake and in TimescaleDB, from the file as
    it is; no seal, no manifest; a selection of seals alone is refused."""
    today = utc_today()
    trade = pl.read_parquet(_lake(env) / f"trade/venue=binance-usdm/date={OLD_DAYS[0]}/*.parquet")
    shift = today - OLD_DAYS[0]
    filesystem, base = filesystem_for(str(_lake(env)))
    folder = f"{base}/trade/venue=binance-usdm/date={today}"
    write_atomic(filesystem, f"{folder}/live.parquet",
                 trade.with_columns(pl.col("ts_event", "ts_recv") + shift).to_arrow(), "trade")
    result = _ticklake(env, "pipelines", "run", "--from", "today")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("Dagster's log: "), lines
    assert re.fullmatch(RUN_LINE + "  today's open day: not sealed, outputs partial", lines[0])
    assert result.stderr == ""
    assert sorted(p.name for p in Path(folder).iterdir()) == ["live.parquet"]
    assert ("binance-usdm", today) not in sealed_days(str(_lake(env)), "trade")
    assert _bars_1m(env, today).select("instrument", "close", "trades").rows() == [("BTC-USDT-PERP", 7627.6, 1)]
    assert _timescale_bars(env, today) == [("BTC-USDT-PERP", 1)]
    refused = _ticklake(env, "pipelines", "run", "--from", OLD_DAYS[0].isoformat(), "--to", "today",
                        "--select", "sealed_trade")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (f"ticklake: today ({today}) is still open and is never sealed: select other assets, "
                              "or end the range yesterday\n")


TOMORROW = (utc_today() + dt.timedelta(days=1)).isoformat()
BAD_DAYS = {
    "malformed": (["--from", "2019-11-31"], {}, "--from '2019-11-31' is not a day: give YYYY-MM-DD or 'today'"),
    "reversed": (["--from", "2020-08-01", "--to", "2020-07-29"], {}, "--to 2020-07-29 is before --from 2020-08-01"),
    "future": (["--from", "2020-08-01", "--to", TOMORROW], {}, f"{TOMORROW} is in the future: today is "
                                                               f"{utc_today()} (UTC)"),
    "before the lake": (["--from", "2019-11-21"], {},
                        "--from 2019-11-21 is before the first partition, 2019-11-22 (the earliest day in the lake)"),
    "before the configured start": (["--from", "2019-11-22"], {"TICKLAKE_PIPELINES_START": "2020-01-01"},
                                    "--from 2019-11-22 is before the first partition, 2020-01-01 "
                                    "(TICKLAKE_PIPELINES_START)"),
    "no data": (["--from", "2019-11-23"], {}, "no data in the lake on 2019-11-23"),
    "no data in the range": (["--from", "2019-12-01", "--to", "2020-07-28"], {},
                             "no data in the lake from 2019-12-01 to 2020-07-28"),
    "unknown asset": (["--from", "2019-11-22", "--select", "bars_2m"], {}, "unknown asset bars_2m (known: "),
}


@pytest.mark.parametrize("case", BAD_DAYS)
def test_a_bad_day_is_one_line_and_exit_code_2(env: dict[str, str], case: str) -> None:
    args, extra_env, message = BAD_DAYS[case]
    result = _ticklake(env | extra_env, "pipelines", "run", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"ticklake: {message}")
