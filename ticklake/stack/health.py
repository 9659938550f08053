"""Health probes for the two servers, used by `ticklake status` and `ticklake up`."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from storage.migrate import applied_versions
from storage.pg import DatabaseUnavailable, connect, timescale_info
from ticklake.bus_auth import BusAuthError, uses_tls
from ticklake.bus_auth import connect as bus_connect
from ticklake.settings import SettingsError, mask_url


@dataclass(frozen=True)
class Health:
    name: str
    address: str
    ok: bool
    detail: str


def postgres_health(dsn: str, setting: str = "TICKLAKE_PG_DSN") -> Health:
    address = mask_url(dsn)
    try:
        with connect(dsn, autocommit=True, setting=setting) as conn:
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
    """Read the server's INFO line (proves it is a NATS server), then log in as every client does
    (ticklake.bus_auth: credentials, TLS) and ask JetStream for the account: a refused login is unhealthy."""
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
    if not info.get("jetstream"):
        return Health("nats", address, False, f"nats-server {info.get('version')}, JetStream OFF")
    try:
        security = asyncio.run(_log_in(url, timeout_s))
    except (BusAuthError, SettingsError) as exc:
        return Health("nats", address, False, str(exc))
    except Exception as exc:  # the server went away between the two probes, or JetStream is not ours to use
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return Health("nats", address, False, f"cannot use NATS at {address} (TICKLAKE_NATS_URL): {reason}")
    return Health("nats", address, True, f"nats-server {info.get('version')}, JetStream on{security}")


async def _log_in(url: str, timeout_s: float) -> str:
    """Connect once (no retries) and read the JetStream account; returns how the connection is secured."""
    client = await bus_connect(url, connect_timeout=timeout_s, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        await client.jetstream(timeout=timeout_s).account_info()
        secured = [word for word, on in (("TLS", uses_tls(client)),
                                         ("authenticated", bool(client._server_info.get("auth_required")))) if on]
    finally:
        await client.close()
    return f", {' and '.join(secured)}" if secured else ""
