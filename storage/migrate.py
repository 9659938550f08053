"""Versioned plain-SQL migrations (`storage/migrations/NNNN_name.sql`), applied in order.

Each migration runs in its own transaction together with its row in ticklake_schema_migrations,
so a failing migration leaves the schema as it was. An advisory lock serialises concurrent
runs. A migration already applied whose file has since changed is an error, not a silent skip.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from storage.pg import connect

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 7_460_201_101
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return migrations


def _applied(conn: psycopg.Connection) -> dict[int, str]:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS ticklake_schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    return dict(conn.execute("SELECT version, checksum FROM ticklake_schema_migrations").fetchall())


def applied_versions(conn: psycopg.Connection) -> list[int]:
    exists = conn.execute("SELECT to_regclass('ticklake_schema_migrations')").fetchone()
    if not exists or exists[0] is None:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM ticklake_schema_migrations ORDER BY version")]


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; returns those applied now (empty when up to date)."""
    migrations = discover(directory)
    with connect(dsn, autocommit=True) as conn:
        return _apply(conn, migrations)


def _apply(conn: psycopg.Connection, migrations: list[Migration]) -> list[Migration]:
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        applied = _applied(conn)
        done = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it was applied"
                    )
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql)  # type: ignore[arg-type]
                    conn.execute(
                        "INSERT INTO ticklake_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed and was rolled back: "
                    f"{str(exc).strip().splitlines()[0]}"
                ) from None
            done.append(migration)
        return done
    finally:
        if not conn.closed:  # a server that ended the session (a FATAL error) released the lock with it
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
