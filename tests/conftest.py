"""Real servers for the tests: a throwaway PostgreSQL+TimescaleDB cluster and a nats-server,
each on a free port in a temp dir, started once per session with the same classes that
`ticklake up` uses. Fault tests stop, kill and restart them through these fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from storage.migrate import migrate
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

if TYPE_CHECKING:
    from tests.demo_data import DemoRun



def _scratch_dir(prefix: str) -> Path:
    """A temp dir under /tmp that the postgres system user can reach when we run as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    root = _scratch_dir("ticklake-test-pg-")
    server = EmbeddedPostgres(root / "data", free_port())
    server.start()
    migrate(server.dsn)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _nats(prefix: str) -> Iterator[EmbeddedNats]:
    root = _scratch_dir(prefix)
    server = EmbeddedNats(root, free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[EmbeddedNats]:
    yield from _nats("ticklake-test-nats-")


@pytest.fixture
def bus() -> Iterator[EmbeddedNats]:
    """A nats-server of the test's own, for tests that stop and restart it or need an empty stream."""
    yield from _nats("ticklake-test-bus-")


@pytest.fixture
def pg_conn(postgres: EmbeddedPostgres) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres.dsn) as conn:
        yield conn


@pytest.fixture(scope="session")
def demo(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`ticklake demo` as `make demo` runs it, once per session, on a database and bus of its own
    (tests/demo_data.py): its report, and the stores it filled for the modules that read them."""
    from tests.demo_data import run_demo

    with run_demo(postgres, tmp_path_factory.mktemp("demo")) as run:
        yield run
