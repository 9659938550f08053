"""Where the pipelines read and write: the lake root and the TimescaleDB connection.

Both come from `ticklake.settings` (TICKLAKE_LAKE / TICKLAKE_HOME and TICKLAKE_PG_DSN) when the
definitions load. The embedded stack's DSN (`ticklake up`) is not known to settings: the
`ticklake pipelines ...` commands pass it to Dagster as TICKLAKE_PG_DSN.
"""

from __future__ import annotations

import psycopg
from dagster import ConfigurableResource

from storage.pg import connect


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
        return connect(self.dsn, autocommit=True)
