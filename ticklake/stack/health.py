"""Health probes for the two servers, used by `ticklake status` and `ticklake up`."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from storage.migrate import applied_versions
from storage.pg import DatabaseUnavailable, connect, timescale_info
from ticklake.settings import mask_url


@dataclass(frozen=True)
class Health:
    name: str
    address: str
    ok: bool
    detail: str


def postgres_health(dsn: str) -> Health:
    address = mask_url(dsn)
    try:
        with connect(dsn, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            info = timescale_info(conn)
            migrations = applied_versions(conn)
    except DatabaseUnavailable as exc:
        return Health("postgres", address, False, str(exc))
    timescale = f"timescaledb {info.version} ({info.edition} edition)" if info else "timescaledb not installed"
    schema = f"schema at migration {max(migrations)}" if migrations else "schema not migrated"
    server = version[0] if version else "?"
    return Health("postgres", address, True, f"PostgreSQL {server}, {timescale}, {schema}")


def nats_health(url: str, timeout_s: float = 3.0) -> Health:
    """Read the server's INFO line: proves it is a NATS server and whether JetStream is on."""
    address = mask_url(url)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            line = sock.makefile("rb").readline(65536)
    except OSError as exc:
        return Health("nats", address, False, f"cannot connect to NATS at {address} (TICKLAKE_NATS_URL): {exc}")
    if not line.startswith(b"INFO "):
        return Health("nats", address, False, f"{address} (TICKLAKE_NATS_URL) did not answer like a NATS server")
    info = json.loads(line[5:])
    jetstream = "JetStream on" if info.get("jetstream") else "JetStream OFF"
    return Health("nats", address, bool(info.get("jetstream")), f"nats-server {info.get('version')}, {jetstream}")
