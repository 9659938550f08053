"""Connecting to PostgreSQL with errors a user can act on, and TimescaleDB edition detection."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ticklake.settings import mask_url


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be reached; the message names the setting and address."""


def connect(dsn: str, *, autocommit: bool = False, setting: str = "TICKLAKE_PG_DSN",
            connect_timeout_s: int = 5) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout_s)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {mask_url(dsn)} ({setting}): {reason}") from None


@dataclass(frozen=True)
class TimescaleInfo:
    version: str
    edition: str
    """'apache' (no compression, continuous aggregates or job policies) or 'timescale' (full)."""

    @property
    def full(self) -> bool:
        return self.edition == "timescale"


def timescale_info(conn: psycopg.Connection) -> TimescaleInfo | None:
    """The installed extension's version and license edition, or None when not installed."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if row is None:
        return None
    license_row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    edition = (license_row[0] if license_row and license_row[0] else "apache").lower()
    return TimescaleInfo(version=row[0], edition=edition)
