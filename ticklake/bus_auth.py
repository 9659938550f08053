"""Connecting to the bus with this process's credentials and TLS: the one place nats.connect's options come from.

Every client of the bus (the publisher, both sinks, `ticklake run`'s catch-up check, the demo's store
reset, selfcheck, the health checks) connects through `connect`, so authentication and TLS are set up
once, from settings (docs/security.md), and a client cannot forget them:

* TICKLAKE_NATS_USER with TICKLAKE_NATS_PASSWORD or TICKLAKE_NATS_PASSWORD_FILE: user and password.
* TICKLAKE_NATS_TLS_CA: TLS required, the server verified against that CA and its host name;
  TICKLAKE_NATS_TLS_CERT and TICKLAKE_NATS_TLS_KEY add a client certificate; TICKLAKE_NATS_TLS_FIRST the
  TLS handshake before anything else.
* Unset, and connecting to the embedded nats-server of a secure stack (`ticklake up --secure`): the
  stack's own user, the password it generated and its CA, as its home's client file names them.

A refusal that retrying cannot cure (wrong or missing credentials, a certificate that does not verify,
TLS asked for and not offered) raises BusAuthError at once, one line naming the setting to fix, instead of
nats-py's reconnect loop with a traceback per attempt. Anything else that goes wrong while connecting
(a server not up yet) is one log line per attempt.

This module may be imported by the data packages (ingest, storage): it imports nothing of the project but
ticklake.settings (tests/test_layout.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from prometheus_client import Counter

from ticklake.settings import Settings, load_settings, mask_url, read_secret_file

log = logging.getLogger(__name__)

EMBEDDED_USER = "ticklake"
"""The user the secure embedded nats-server knows."""
SECRETS_DIR = "secrets"
"""Where a secure embedded stack keeps its generated passwords and TLS files, under TICKLAKE_HOME (0700)."""
EMBEDDED_CLIENT = "nats-client.json"
"""In SECRETS_DIR: how to reach the secure embedded nats-server (its URL, user, password file and CA; no
secret itself), written by `ticklake up --secure`."""


class _HarmlessTlsEof(logging.Filter):
    """asyncio warns "returning true from eof_received() has no effect when using ssl" whenever a TLS peer
    closes a stream connection (the bus refusing a password, say): a line of noise next to the one line
    that says what happened."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received() has no effect when using ssl" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_HarmlessTlsEof())


class BusAuthError(RuntimeError):
    """The bus refused this client for a reason retrying cannot cure; the message names the setting to fix."""


@dataclass(frozen=True)
class BusAuth:
    """What a client presents to the bus. `source` says where it came from, for error messages."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    tls_first: bool = False
    source: str = "settings"

    @property
    def tls(self) -> bool:
        """TLS is required: a CA to verify the server, or a certificate of our own, was given."""
        return self.ca is not None or self.cert is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifying context (host name checked) trusting only `ca`, with our certificate when given."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            if self.cert is not None and self.key is not None:
                context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise BusAuthError(f"cannot load the NATS TLS files ({self.source}): {_reason(exc)}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def options(self) -> dict[str, Any]:
        """nats.connect's keyword arguments for these credentials."""
        options: dict[str, Any] = {}
        if self.user is not None:
            options["user"] = self.user
        if self.password is not None:
            options["password"] = self.password
        context = self.ssl_context()
        if context is not None:
            options["tls"] = context
            options["tls_handshake_first"] = self.tls_first
        return options


def embedded_client_file(home: Path) -> Path:
    return home / SECRETS_DIR / EMBEDDED_CLIENT


def write_embedded_client(home: Path, url: str, password_file: Path, ca: Path) -> None:
    """Record how to reach the secure embedded nats-server (called by `ticklake up --secure`)."""
    path = embedded_client_file(home)
    path.write_text(json.dumps({"url": url, "user": EMBEDDED_USER, "password_file": str(password_file.absolute()),
                                "ca": str(ca.absolute())}, indent=2) + "\n")


def _embedded(settings: Settings, url: str) -> dict[str, str] | None:
    """The secure embedded stack's client file, when `url` is that stack's nats-server (the URL is
    compared so that a test bus or another server never receives the stack's password)."""
    if settings.nats_url is not None:
        return None
    path = embedded_client_file(settings.home)
    try:
        client: dict[str, str] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BusAuthError(f"cannot read {path} (written by `ticklake up --secure`): {exc}") from None
    return client if client.get("url") == url else None


def bus_auth(settings: Settings, url: str) -> BusAuth:
    """The credentials for `url`: the settings' where given, else the secure embedded stack's for its own
    server, else none."""
    embedded = _embedded(settings, url)
    user = settings.nats_user
    password = settings.secret("nats_password")
    ca = settings.nats_tls_ca
    source = "TICKLAKE_NATS_* settings"
    if embedded is not None:
        source = f"the secure embedded stack's {embedded_client_file(settings.home)}"
        user = user or embedded["user"]
        if password is None:
            password = read_secret_file(Path(embedded["password_file"]), "the embedded stack's NATS password")
        ca = ca or Path(embedded["ca"])
    if password is not None and user is None:
        raise BusAuthError("TICKLAKE_NATS_PASSWORD(_FILE) is set without TICKLAKE_NATS_USER: give the user too")
    return BusAuth(user, password, ca, settings.nats_tls_cert, settings.nats_tls_key, settings.nats_tls_first, source)


ErrorCallback = Callable[[Exception], Awaitable[None]]


async def connect(url: str, settings: Settings | None = None, **options: Any) -> Client:
    """nats.connect(url, **options) with this process's credentials and TLS (see the module docstring).

    An `error_cb` in `options` sees the errors a retry may cure (while connecting and afterwards); without
    one, each is a log line. Raises BusAuthError for a refusal retrying cannot cure."""
    settings = settings if settings is not None else load_settings()
    auth = bus_auth(settings, url)
    caller_cb: ErrorCallback | None = options.pop("error_cb", None)
    client = Client()
    connected = refused = False

    def permanent(exc: BaseException) -> bool:
        """A refusal a retry cannot cure. A server that verifies client certificates (`tls_verify` in its
        INFO) drops a client without one after the handshake, seen as an alert or as a lost connection
        depending on timing: without a certificate of our own, either is that refusal."""
        info = getattr(client, "_server_info", None) or {}
        return _permanent(exc) or (auth.cert is None and bool(info.get("tls_verify")))

    async def on_error(exc: Exception) -> None:
        nonlocal refused
        if refused:  # what closing a refused connection reports is no news
            return
        if not connected and permanent(exc):
            refused = True
            raise BusAuthError(_refusal(url, auth, exc))  # out of nats-py's connect loop, which would retry
        if caller_cb is not None:
            await caller_cb(exc)
        else:
            log.warning("bus %s: %s", mask_url(url), _reason(exc))

    backoff = None
    if options.get("allow_reconnect", True) and "reconnect_to_server_handler" not in options:
        backoff = _Backoff(mask_url(url), options.pop("reconnected_cb", None))
        options.update(reconnect_to_server_handler=backoff.next_server, reconnected_cb=backoff.reconnected)
        if caller_cb is None:
            caller_cb = backoff.failed
    try:
        await client.connect(url, error_cb=on_error, **auth.options(), **options)
    except BusAuthError:
        await _abandon(client)
        raise
    except Exception as exc:
        refused = True
        await _abandon(client)
        if permanent(exc):
            raise BusAuthError(_refusal(url, auth, exc)) from None
        raise
    connected = True
    if backoff is not None:
        backoff.connected, backoff.attempts = True, 0
    if auth.tls and not uses_tls(client):
        await client.close()
        raise BusAuthError(f"the bus at {mask_url(url)} did not use TLS, which {auth.source} require "
                           "(TICKLAKE_NATS_TLS_CA): refusing to talk to it in clear")
    return client


RECONNECT_ATTEMPTS = Counter("ticklake_bus_connection_errors_total",
                             "Bus connection errors while connecting or reconnecting (each one log line)")
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 10.0


class _Backoff:
    """Reconnects to a lost bus with exponential backoff (0.2 s doubling to 10 s, jittered) and one log line
    per failed attempt, counted in ticklake_bus_connection_errors_total: nats-py alone retries every
    reconnect_time_wait forever, a line each time, and a handler whose bus was down 20 s logged thousands
    (docs/operations.md has the figures). The count starts again once the bus is back."""

    def __init__(self, where: str, reconnected_cb: Callable[[], Awaitable[None]] | None) -> None:
        self.where, self.caller_reconnected = where, reconnected_cb
        self.attempts = 0
        self.delay = 0.0
        self.connected = False
        """Set once the first connect succeeded: from then on, attempts are reconnects on this backoff."""

    def next_server(self, servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
        """nats-py's reconnect_to_server_handler: the servers in turn, after this attempt's delay."""
        self.delay = 0.0 if self.attempts == 0 else min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self.attempts - 1))
        return servers[self.attempts % len(servers)], self.delay * random.uniform(0.8, 1.0)

    async def failed(self, exc: Exception) -> None:
        self.attempts += 1
        RECONNECT_ATTEMPTS.inc()
        if not self.connected:  # the first connect: nats-py's own pace (reconnect_time_wait), as the caller set it
            log.warning("bus %s: %s; attempt %d", self.where, _reason(exc), self.attempts)
            return
        following = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self.attempts - 1))
        log.warning("bus %s: %s; attempt %d, next in %.1f s", self.where, _reason(exc), self.attempts, following)

    async def reconnected(self) -> None:
        if self.attempts:
            log.info("bus %s: back after %d failed attempts", self.where, self.attempts)
        self.attempts = 0
        if self.caller_reconnected is not None:
            await self.caller_reconnected()


async def _abandon(client: Client) -> None:
    """Close a client whose connection failed. After a failed TLS handshake nats-py's close never returns
    (asyncio's start_tls swapped the stream's protocol, so the stream never learns it closed): bounded."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 1)


def uses_tls(client: Client) -> bool:
    """Whether the client's connection is TLS (nats-py keeps its transport private)."""
    transport = getattr(client, "_transport", None)
    writer = getattr(transport, "_io_writer", None)
    return writer is not None and writer.get_extra_info("ssl_object") is not None


def _permanent(exc: BaseException) -> bool:
    """A refusal a retry cannot cure: authentication, or TLS (verification, a missing client certificate)."""
    return isinstance(exc, ssl.SSLError) or _authorization(exc)


def _authorization(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "authorization" in text or "authentication" in text


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc)
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.removeprefix("nats: ").replace("'", "").split())


def _refusal(url: str, auth: BusAuth, exc: BaseException) -> str:
    """One line: what the bus refused and which settings to look at."""
    where = mask_url(url)
    if isinstance(exc, ssl.SSLCertVerificationError):
        fix = ("check that TICKLAKE_NATS_TLS_CA is the CA that signed the server's certificate, for the host "
               "name in the URL" if auth.ca else "set TICKLAKE_NATS_TLS_CA to the CA that signed it")
        return (f"cannot verify the TLS certificate of the bus at {where} ({exc.verify_message or _reason(exc)}): "
                f"{fix}")
    if isinstance(exc, ssl.SSLError) or not _authorization(exc):
        fix = ("it requires a client certificate: set TICKLAKE_NATS_TLS_CERT and TICKLAKE_NATS_TLS_KEY"
               if auth.cert is None else f"check the TLS settings ({auth.source})")
        return f"TLS with the bus at {where} failed ({_reason(exc)}): {fix}"
    if auth.user is None:
        return (f"the bus at {where} requires authentication ({_reason(exc)}): set TICKLAKE_NATS_USER and "
                "TICKLAKE_NATS_PASSWORD_FILE (docs/security.md)")
    return (f"the bus at {where} refused user '{auth.user}' ({_reason(exc)}): check the password "
            f"({auth.source})")
