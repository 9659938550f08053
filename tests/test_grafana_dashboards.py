"""The Grafana provisioning in infra/grafana, checked without Grafana: every dashboard panel's SQL and
every template variable's query, expanded as Grafana would (tests/grafana_sql.py), runs as the
read-only role ticklake_reader against a database holding the real demo data of every venue (the
contract tables, and the derived tables of the daily pipelines for the days with trades or funding)
and returns rows; the SQL data source is the read-only role and every SQL query uses it; the
operations dashboard's Prometheus queries parse (promtool) and read metrics the code exports; the
compose service mounts and configures what the provisioning files expect."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from dagster import DagsterInstance

from normalize.records import RECORD_TYPES
from pipelines.definitions import build_definitions
from pipelines.live_bars import connect_arrow, refresh
from storage.timescale_rows import copy_table
from tests.grafana_sql import ExpansionError, TimeRange, Variable, expand
from tests.pg_databases import private_database
from tests.pipelines_chunked_data import build_chunked_lake, truth
from ticklake.stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "infra/grafana"
DATASOURCES = GRAFANA / "provisioning/datasources/ticklake.yaml"
PROMETHEUS_SOURCE = GRAFANA / "provisioning/datasources/prometheus.yaml"
PROVIDERS = GRAFANA / "provisioning/dashboards/ticklake.yaml"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATABASE = "ticklake_grafana_test"
READER = "ticklake_reader"
DAYS = ["2021-07-22", "2022-05-13", "2023-04-05", "2023-07-17", "2024-08-08", "2025-01-26"]
"""The days with trades of each venue (bars) and with funding settlements (funding_history, spreads)."""
RANGE = TimeRange(from_ns=0, to_ns=int(dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9,
                  interval_ms=86_400_000)
"""Every record of the demo data (fixture records without a time are stamped at the epoch), in buckets
of a day."""


@cache
def dashboard(name: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((GRAFANA / "dashboards" / name).read_text())
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def datasource_uid() -> str:
    uid: str = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    return uid


def sql_targets(panel: dict[str, Any]) -> list[dict[str, Any]]:
    return [target for target in panel.get("targets", []) if "rawSql" in target]


def prometheus_targets(panel: dict[str, Any]) -> list[dict[str, Any]]:
    return [target for target in panel.get("targets", []) if "expr" in target]


SQL_PANELS = [(path.name, panel["title"]) for path in DASHBOARDS for panel in panels(dashboard(path.name))
              if sql_targets(panel)]


@pytest.fixture(scope="module")
def reader(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[psycopg.Connection]:
    """A connection as ticklake_reader to a database of this module's own: the contract tables hold every
    record of the real captures of all venues, bars_live their live bars, the derived tables what the daily
    job wrote for DAYS."""
    with private_database(postgres, DATABASE) as dsn:
        with psycopg.connect(dsn) as conn:
            with conn.cursor() as cursor:
                for record_type in RECORD_TYPES:
                    copy_table(cursor, record_type, truth(record_type).drop("date").to_arrow())
            conn.commit()
            with contextlib.closing(connect_arrow(dsn)) as arrow:
                assert refresh(conn, arrow, 0, 0) > 0  # the live bars of every trade, as `ticklake sink live-bars` does
            conn.commit()
        lake = build_chunked_lake(tmp_path_factory.mktemp("grafana-lake"))
        job = build_definitions(str(lake), dsn).resolve_job_def("daily")
        instance = DagsterInstance.ephemeral()
        for day in DAYS:
            assert job.execute_in_process(partition_key=day, instance=instance).success, day
        with psycopg.connect(dsn.replace("//postgres@", f"//{READER}@"), autocommit=True) as conn:
            assert conn.execute("SELECT current_user, current_setting('default_transaction_read_only')").fetchone() \
                == (READER, "on")
            yield conn


def run(conn: psycopg.Connection, raw_sql: str, selection: dict[str, Variable],
        where: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Expand a query as Grafana would and run it: columns and rows; a failure names `where`."""
    try:
        sql = expand(raw_sql, selection, RANGE)
    except ExpansionError as exc:
        pytest.fail(f"{where}: {exc}")
    try:
        cursor = conn.execute(sql)
    except psycopg.Error as exc:
        pytest.fail(f"{where}: {exc}\n{sql}")
    assert cursor.description is not None, where
    return [column.name for column in cursor.description], cursor.fetchall()


def _selections(conn: psycopg.Connection, board: dict[str, Any]) -> list[dict[str, Variable]]:
    """The variable values a dashboard is tried with. Query variables are run in order (a later one may
    use an earlier one) and select All, as the dashboards open; custom variables are tried with each
    option, so every combination of them is one selection."""
    chosen: dict[str, Variable] = {}
    options: dict[str, list[str]] = {}
    for variable in board["templating"]["list"]:
        where = f"{board['title']} / variable ${variable['name']}"
        if variable["type"] == "custom":
            options[variable["name"]] = variable["query"].split(",")
            continue
        assert variable["type"] == "query" and variable["multi"] and variable["includeAll"], where
        assert variable["current"]["value"] == ["$__all"], where
        _, rows = run(conn, variable["query"], chosen, where)
        values = tuple(str(row[0]) for row in rows if row[0] is not None)
        assert values, f"{where}: no values"
        chosen[variable["name"]] = Variable(values, quoted=True)
    return [{**chosen, **{name: Variable((value,), quoted=False)
                          for name, value in zip(options, combination, strict=True)}}
            for combination in itertools.product(*options.values())]


@pytest.fixture(scope="module")
def selections(reader: psycopg.Connection) -> dict[str, list[dict[str, Variable]]]:
    """Dashboard file name -> its selections; running the variable queries is their test."""
    return {path.name: _selections(reader, dashboard(path.name)) for path in DASHBOARDS}


@pytest.mark.parametrize(("name", "title"), SQL_PANELS, ids=[f"{name}:{title}" for name, title in SQL_PANELS])
def test_panel_sql_returns_rows(reader: psycopg.Connection, selections: dict[str, list[dict[str, Variable]]],
                                name: str, title: str) -> None:
    """Each target returns rows in which every column has a value somewhere; a time series target has an
    ascending `time` column (Grafana refuses a long frame that is not sorted by time)."""
    board = dashboard(name)
    panel = next(p for p in panels(board) if p["title"] == title)
    for target in sql_targets(panel):
        for selection in selections[name]:
            single = {key: value.values[0] for key, value in selection.items() if not value.quoted}
            where = f"{board['title']} / {title} / {target['refId']} {single or ''}"
            columns, rows = run(reader, target["rawSql"], selection, where)
            assert rows, f"{where}: no rows"
            empty = [column for i, column in enumerate(columns) if all(row[i] is None for row in rows)]
            assert not empty, f"{where}: columns without a value: {empty}"
            if target["format"] == "time_series":
                assert "time" in columns, f"{where}: no time column"
                times = [row[columns.index("time")] for row in rows]
                assert times == sorted(times), f"{where}: not sorted by time"


def test_the_datasource_is_the_read_only_role() -> None:
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(sources) == 1
    source = sources[0]
    assert source["type"] == "grafana-postgresql-datasource" and source["uid"] == "ticklake"
    assert source["user"] == READER
    assert source["jsonData"]["timescaledb"] is True and source["jsonData"]["sslmode"] == "disable"


def prometheus_uid() -> str:
    source = yaml.safe_load(PROMETHEUS_SOURCE.read_text())["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "${GRAFANA_PROMETHEUS_URL}"
    uid: str = source["uid"]
    return uid


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.name for path in DASHBOARDS])
def test_every_query_uses_the_provisioned_datasource(path: Path) -> None:
    """SQL through the read-only `ticklake` source, PromQL through `prometheus`; a panel's own data
    source is its targets'."""
    board = dashboard(path.name)
    sources = {"rawSql": {"type": "grafana-postgresql-datasource", "uid": datasource_uid()},
               "expr": {"type": "prometheus", "uid": prometheus_uid()}}
    queries = [(f"{panel['title']} / {target['refId']}", target) for panel in panels(board)
               for target in panel.get("targets", [])]
    queries += [(f"variable {variable['name']}", {**variable, "rawSql": variable["query"]})
                for variable in board["templating"]["list"] if variable["type"] == "query"]
    assert len(queries) >= 3
    for where, query in queries:
        kinds = [kind for kind in sources if kind in query]
        assert len(kinds) == 1 and query["datasource"] == sources[kinds[0]], where
    for panel in panels(board):
        targets = panel.get("targets", [])
        if targets:
            assert all(panel["datasource"] == target["datasource"] for target in targets), panel["title"]
        else:
            assert panel["type"] in {"row", "text"}, panel["title"]


def test_operations_queries_parse_and_read_exported_metrics(tmp_path: Path) -> None:
    """Every PromQL target of the dashboards, with Grafana's $__rate_interval as a duration, parses
    (promtool checks it as a recording rule) and reads only metrics ticklake or NATS's exporter export
    (or Prometheus's own ALERTS)."""
    from tests.test_prometheus_rules import NATS_EXPORTER, _exported, _promtool

    exprs = {f"{path.name} / {panel['title']} / {target['refId']}": target["expr"]
             for path in DASHBOARDS for panel in panels(dashboard(path.name)) for target in prometheus_targets(panel)}
    assert len(exprs) >= 8
    rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
             for i, expr in enumerate(exprs.values())]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _promtool("check", "rules", str(tmp_path / "queries.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    exported = _exported() | NATS_EXPORTER | {"ALERTS"}
    for where, expr in exprs.items():
        names = set(re.findall(r"\b((?:ticklake|jetstream)_[a-z0-9_]+|ALERTS)\b", expr))
        assert names and names <= exported, f"{where}: {names - exported}"


def test_dashboard_uids_and_panel_titles_are_unique() -> None:
    """Panels are found by title here, so a repeated title would leave one untested."""
    uids = [dashboard(path.name)["uid"] for path in DASHBOARDS]
    assert len(DASHBOARDS) == 4 and len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        titles = [panel["title"] for panel in panels(dashboard(path.name))]
        assert len(set(titles)) == len(titles), path.name


def test_compose_serves_the_provisioning() -> None:
    """The grafana service mounts both folders, points the provider at the dashboards' mount and sets every
    variable the provisioning files use."""
    service = yaml.safe_load((ROOT / "infra/docker/compose.yaml").read_text())["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in service["volumes"] if volume.startswith("../"))
    assert {(ROOT / "infra/docker" / source).resolve() for source in mounts} == {
        GRAFANA / "provisioning", GRAFANA / "dashboards"}
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    assert service["environment"]["GRAFANA_DASHBOARDS"] == mounts["../grafana/dashboards"]
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    assert provider["options"]["path"] == "${GRAFANA_DASHBOARDS}"
    values = json.dumps([yaml.safe_load(path.read_text())
                         for path in (DATASOURCES, PROMETHEUS_SOURCE, PROVIDERS)])  # no comments
    used = set(re.findall(r"\$\{?(\w+)", values))
    assert used == {"GRAFANA_PG_HOST", "GRAFANA_PG_PORT", "GRAFANA_PG_DATABASE", "GRAFANA_PG_PASSWORD",
                    "GRAFANA_DASHBOARDS", "GRAFANA_PROMETHEUS_URL"}
    # the password is the reader's secret file, read into the environment by the entrypoint
    entrypoint = service["entrypoint"]
    assert entrypoint[:2] == ["sh", "-c"] and entrypoint[2] == (
        'GRAFANA_PG_PASSWORD="$$(cat /run/secrets/pg_reader_password)" exec /run.sh')
    assert "pg_reader_password" in service["secrets"]
    assert used - {"GRAFANA_PG_PASSWORD"} <= service["environment"].keys()
    assert service["environment"]["GRAFANA_PROMETHEUS_URL"] == "http://prometheus:9090"


SAMPLE = TimeRange(from_ns=1_723_161_600_000_000_000, to_ns=1_723_248_000_000_000_000, interval_ms=60_000)


def test_expansion_is_what_grafana_sends() -> None:
    sql = ("SELECT time_bucket($__interval_ms::bigint * 1000000, ts_event) FROM bars_${bar} "
           "WHERE venue IN ($venue) AND [[kind]] = 1 AND $__unixEpochNanoFilter(ts_event) "
           "AND ts < $__unixEpochNanoTo() AND ts > $__unixEpochNanoFrom( )")
    variables = {"venue": Variable(("okx", "o'k"), quoted=True), "bar": Variable(("1m",), quoted=False),
                 "kind": Variable(("side",), quoted=False)}
    assert expand(sql, variables, SAMPLE) == (
        "SELECT time_bucket(60000::bigint * 1000000, ts_event) FROM bars_1m "
        "WHERE venue IN ('okx','o''k') AND side = 1 AND ts_event >= 1723161600000000000 AND "
        "ts_event <= 1723248000000000000 AND ts < 1723248000000000000 AND ts > 1723161600000000000")


def test_time_macros_expand_as_the_timescaledb_data_source_does() -> None:
    """The standard macros on `time`: $__interval as the browser writes it, time_bucket in whole seconds."""
    sql = ("SELECT $__timeGroupAlias(time, $__interval), $__timeGroup(time, '5m') FROM trade "
           "WHERE $__timeFilter(time)")
    assert expand(sql, {}, SAMPLE) == (
        "SELECT time_bucket('60s',time) AS \"time\", time_bucket('300s',time) FROM trade "
        "WHERE time BETWEEN '2024-08-09T00:00:00Z' AND '2024-08-10T00:00:00Z'")


@pytest.mark.parametrize("sql", [
    "SELECT 1 WHERE $__timeEpoch(time)",           # a macro the expander does not know
    "SELECT $__timeGroup(time)",                    # a known one without its interval
    "SELECT 1 WHERE $__unixEpochNanoFilter()",      # a known one without its column
    "SELECT 1 WHERE venue IN ($venu)",              # an undefined variable
    "SELECT 1 WHERE venue IN (${venue:csv})",       # a format the expander does not apply
    "SELECT $__range",                              # a global it does not replace
])
def test_expansion_refuses_what_it_cannot_expand(sql: str) -> None:
    with pytest.raises(ExpansionError):
        expand(sql, {"venue": Variable(("okx",), quoted=True)}, SAMPLE)
