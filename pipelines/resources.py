"""Where the pipelines read and write: the lake root and the TimescaleDB connection.

Both come from `ticklake.settings` (TICKLAKE_LAKE / TICKLAKE_HOME and TICKLAKE_PG_DSN) when the
definitions load; the writer's password (TICKLAKE_PG_PASSWORD(_FILE)) when a connection opens. The
embedded stack's DSN (`ticklake up`) is not known to settings: the `ticklake pipelines ...` commands
pass it to Dagster as TICKLAKE_PG_DSN.
"""

from __future__ import annotations

import psycopg
from dagster import ConfigurableResource
from psycopg.conninfo import conninfo_to_dict

from storage.pg import connect
from storage.pg_auth import with_password
from ticklake.settings import load_settings


class LakeResource(ConfigurableResource):  # type: ignore[type-arg]
    """The Parquet lake root: a local path or s3://bucket/prefix."""

    root: str


class TimescaleResource(ConfigurableResource):  # type: ignore[type-arg]
    """The PostgreSQL+TimescaleDB the dashboards read; None until TICKLAKE_PG_DSN is known."""

    dsn: str | None = None

    def connect(self) -> psycopg.Connection:
        if not self.dsn:
            raise RuntimeError("no TimescaleDB configured for the pipelines: set TICKLAKE_PG_DSN, or run them "
                               "through `ticklake pipelines`, which passes the embedded stack's DSN")
        return connect(_with_configured_password(self.dsn), autocommit=True)


def _with_configured_password(dsn: str) -> str:
    """`dsn` with the writer's password of TICKLAKE_PG_PASSWORD(_FILE), read now, when the DSN holds
    none. A Dagster daemon or webserver started on its own (the compose file's) loads the DSN from
    TICKLAKE_PG_DSN, which names no password; the password is added at connect time, so it never sits
    in the resource's configuration, which Dagster's UI shows. A DSN that holds one (`ticklake
    pipelines` passes such) is used as it is."""
    if "password" in conninfo_to_dict(dsn):
        return dsn
    return with_password(dsn, load_settings().secret("pg_password"))
