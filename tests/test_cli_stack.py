"""The stack commands (docs/stack.md), run as a user would: `ticklake up`, `status`, `db migrate`,
`selfcheck`, `down`, each in a fresh TICKLAKE_HOME; and one clear line for bad configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from normalize.records import RECORD_TYPES
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.postgres import EmbeddedPostgres

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))


def _run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TICKLAKE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180,
                          check=False)


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(overrides)
    return env


@pytest.fixture
def home() -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ticklake-cli-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    _run(_env(TICKLAKE_HOME=str(path)), "down")
    shutil.rmtree(path, ignore_errors=True)


def test_up_status_migrate_selfcheck_down(home: Path) -> None:
    env = _env(TICKLAKE_HOME=str(home), TICKLAKE_NATS_MEMORY_LIMIT="512MiB")
    up = _run(env, "up")
    assert up.returncode == 0, up.stderr + up.stdout
    assert "postgres  healthy" in up.stdout and "nats      healthy" in up.stdout
    assert "JetStream on" in up.stdout
    nats_state = json.loads((home / "stack.json").read_text())["nats"]
    server = EmbeddedNats(Path(nats_state["store_dir"]), nats_state["port"])
    assert psutil.Process(server.pid()).environ()["GOMEMLIMIT"] == "512MiB"

    first = _run(env, "db", "migrate")
    assert first.returncode == 0 and "applied 0001_contract_tables" in first.stdout
    second = _run(env, "db", "migrate")
    assert second.returncode == 0 and second.stdout.strip() == "schema is up to date"

    status = _run(env, "status")
    assert status.returncode == 0
    assert "timescaledb 2." in status.stdout and "schema at migration" in status.stdout

    check = _run(env, "selfcheck")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "selfcheck passed" in check.stdout
    # four checks per record type, and the packed book message
    assert check.stdout.count("\nok   ") + check.stdout.startswith("ok   ") == 4 * len(RECORD_TYPES) + 1

    again = _run(env, "up")  # idempotent: same servers, same ports
    addresses = [line.split()[2] for line in up.stdout.splitlines()]
    assert again.returncode == 0 and [line.split()[2] for line in again.stdout.splitlines()] == addresses

    down = _run(env, "down")
    assert down.returncode == 0 and "stopped: postgres, nats" in down.stdout
    after = _run(env, "status")
    assert after.returncode == 1 and "UNHEALTHY" in after.stdout


def test_down_stops_only_what_up_started(home: Path, postgres: EmbeddedPostgres, nats_server: EmbeddedNats) -> None:
    env = _env(TICKLAKE_HOME=str(home), TICKLAKE_PG_DSN=postgres.dsn, TICKLAKE_NATS_URL=nats_server.url)
    up = _run(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert not (home / "postgres").exists() and not (home / "nats").exists()
    down = _run(env, "down")
    assert "nothing started by `ticklake up` is running" in down.stdout
    assert postgres.pid() is not None and nats_server.pid() is not None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TICKLAKE_PG_DSN": "postgresql://w:s3cret@127.0.0.1:9/x", "TICKLAKE_NATS_URL": "nats://127.0.0.1:9"},
         "cannot connect to PostgreSQL at postgresql://w:***@127.0.0.1:9/x (TICKLAKE_PG_DSN)"),
    ],
)
def test_unreachable_servers_give_one_clear_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = _run(_env(TICKLAKE_HOME=str(tmp_path), **env), "db", "migrate")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ticklake: {expected}: ")
    assert "Connection refused" in lines[0]
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    status = _run(_env(TICKLAKE_HOME=str(tmp_path), **env), "status")
    assert status.returncode == 1
    assert "cannot connect to NATS at nats://127.0.0.1:9 (TICKLAKE_NATS_URL)" in status.stdout


def test_unknown_setting_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "ticklake.toml").write_text('lake_root = "/x"\n')
    result = _run(_env(), "config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "ticklake: unknown setting 'lake_root'"


def test_a_new_home_never_adopts_the_database_an_old_one_left_behind() -> None:
    """As root, a home the postgres user cannot reach keeps its cluster under /var/lib/ticklake. A
    home deleted without `down --purge` leaves that cluster behind; a new home at the same path
    starts a cluster of its own, says what it found, and `down --purge` removes everything the
    stack created, the database included."""
    import tempfile

    import psycopg

    closed = Path(tempfile.mkdtemp(prefix="ticklake-closed-", dir="/tmp"))  # mode 700: postgres cannot enter
    home = closed / "home"
    env = _env(TICKLAKE_HOME=str(home))
    leftovers: list[Path] = []
    try:
        assert _run(env, "up").returncode == 0
        first = json.loads((home / "stack.json").read_text())
        data_dir = Path(first["postgres"]["data_dir"])
        assert data_dir.parent == Path("/var/lib/ticklake") and data_dir.name.endswith(first["home_id"])
        leftovers.append(data_dir)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{first['postgres']['port']}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE old_home_was_here")
        assert _run(env, "down").returncode == 0
        shutil.rmtree(home)  # deleted without --purge: the cluster stays behind

        up = _run(env, "up")
        assert up.returncode == 0, up.stderr
        second = json.loads((home / "stack.json").read_text())
        assert second["home_id"] != first["home_id"] and second["postgres"]["data_dir"] != str(data_dir)
        assert f"not using {data_dir}: a database an earlier home at {home} left behind" in up.stderr
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{second['postgres']['port']}/postgres") as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert "old_home_was_here" not in names

        purge = _run(env, "down", "--purge")
        assert purge.returncode == 0, purge.stderr
        assert f"removed {second['postgres']['data_dir']}" in purge.stdout
        assert not Path(second["postgres"]["data_dir"]).exists() and not (home / "stack.json").exists()
        assert not (home / "nats").exists()
    finally:
        _run(env, "down")
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(closed, ignore_errors=True)
