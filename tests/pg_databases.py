"""A migrated database of a test module's own in the session's PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from storage.migrate import migrate
from ticklake.stack.postgres import EmbeddedPostgres


@contextmanager
def private_database(postgres: EmbeddedPostgres, name: str) -> Iterator[str]:
    """Create database `name` (dropping a leftover of an aborted run), migrate it, yield its DSN
    (as the superuser), drop it afterwards: what the module writes, and only that, is in it."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    migrate(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
            conn.execute(drop)
