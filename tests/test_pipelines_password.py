"""The pipelines' database connection under Dagster's own daemon (compose's `dagster-daemon`): the
resource holds TICKLAKE_PG_DSN without a password and takes the writer's password from
TICKLAKE_PG_PASSWORD_FILE when it connects, against a real scram-only PostgreSQL; the password never
appears in the resource's configuration."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.definitions import build_definitions
from pipelines.resources import TimescaleResource
from storage.pg import DatabaseUnavailable
from storage.pg_auth import READER, WRITER
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres, PostgresAuth

PASSWORD = "wr1ter-pw-Tq4"


@pytest.fixture(scope="module")
def scram_postgres() -> Iterator[EmbeddedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="ticklake-test-pipelines-pw-", dir="/tmp"))
    os.chmod(root, 0o755)
    server = EmbeddedPostgres(root / "pg", free_port(), PostgresAuth("adm1n-pw-Lw8", {WRITER: PASSWORD,
                                                                                      READER: "re4der-pw-Yc1"}))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_the_password_comes_from_its_file_at_connect_time(scram_postgres: EmbeddedPostgres, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("TICKLAKE_")]:
        monkeypatch.delenv(name)
    dsn = scram_postgres.role_dsn(WRITER)
    monkeypatch.setenv("TICKLAKE_PG_DSN", dsn)
    monkeypatch.setenv("TICKLAKE_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("TICKLAKE_HOME", str(tmp_path / "home"))
    resource = TimescaleResource(dsn=dsn)
    with pytest.raises(DatabaseUnavailable, match="password"):
        resource.connect()  # no password configured: the server refuses
    (tmp_path / "writer").write_text(PASSWORD + "\n")
    monkeypatch.setenv("TICKLAKE_PG_PASSWORD_FILE", str(tmp_path / "writer"))
    with resource.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (WRITER,)
    definitions = build_definitions(first_day=None)  # as `dagster-daemon run -m pipelines` loads them
    configured = definitions.resources["timescale"]
    assert isinstance(configured, TimescaleResource) and configured.dsn == dsn and PASSWORD not in str(configured)
    with configured.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (WRITER,)
