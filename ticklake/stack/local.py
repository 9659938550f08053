"""`ticklake up/down/status`: the embedded default stack and the effective server URLs.

With TICKLAKE_PG_DSN / TICKLAKE_NATS_URL set, those servers are used and nothing is started.
Otherwise `up` starts a private cluster and nats-server under $TICKLAKE_HOME and records them
in `$TICKLAKE_HOME/stack.json`, which is where every other command finds their URLs; `down`
stops only what that file says `up` started, and `down --purge` also removes what it created.

`up --secure` makes the embedded stack require passwords and TLS (docs/security.md): PostgreSQL with
scram-sha-256 logins for the superuser, `ticklake_writer` and `ticklake_reader`, nats-server with a user,
a password and TLS with a CA made for the home; the secrets are generated once into `<home>/secrets`
(ticklake.stack.credentials). stack.json records it, and the stack stays secure from then on. The
connection strings this module hands out then name password files, never passwords: `pg_dsn` the
writer's (sinks, backfill, pipelines), `pg_reader_dsn` the reader's (query API), `pg_owner_dsn` the
superuser's (migrations, retention); the bus's credentials come from ticklake.bus_auth.

stack.json also holds the home's id, made when the home's stack first starts. Where the cluster
cannot live inside the home (ticklake.stack.postgres), its directory is named by that id, and
`stack.json` records it: a home created again at the path of a deleted one starts a new cluster,
and `up` reports any cluster an earlier home left behind rather than adopting it.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.pg_auth import READER, WRITER, with_password
from ticklake.bus_auth import EMBEDDED_USER, SECRETS_DIR, write_embedded_client
from ticklake.settings import Settings
from ticklake.stack import credentials
from ticklake.stack.nats import EmbeddedNats, NatsServerAuth
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import SUPERUSER, EmbeddedPostgres, PostgresAuth, left_behind, resolve_data_dir

STATE_FILE = "stack.json"
log = logging.getLogger(__name__)


class StackNotUp(RuntimeError):
    """A server URL is needed but neither configured nor started by `ticklake up`."""


class StackError(RuntimeError):
    """The stack cannot do what was asked as it is; the message says what to do first."""


@dataclass
class StackState:
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    home_id: str = ""
    secure: bool = False
    """Started by `up --secure`: passwords and TLS required (see the module docstring)."""


def _state_path(settings: Settings) -> Path:
    return settings.home / STATE_FILE


def load_state(settings: Settings) -> StackState:
    path = _state_path(settings)
    if not path.exists():
        return StackState()
    raw = json.loads(path.read_text())
    state = StackState(home_id=raw.get("home_id", ""), secure=bool(raw.get("secure", False)))
    if "postgres" in raw:
        state.postgres = EmbeddedPostgres(Path(raw["postgres"]["data_dir"]), raw["postgres"]["port"])
    if "nats" in raw:
        state.nats = EmbeddedNats(Path(raw["nats"]["store_dir"]), raw["nats"]["port"], tls=state.secure)
    return state


def save_state(settings: Settings, state: StackState) -> None:
    raw: dict[str, object] = {"home_id": state.home_id, "secure": state.secure}
    if state.postgres:
        raw["postgres"] = {"data_dir": str(state.postgres.data_dir), "port": state.postgres.port}
    if state.nats:
        raw["nats"] = {"store_dir": str(state.nats.store_dir), "port": state.nats.port}
    settings.home.mkdir(parents=True, exist_ok=True)
    _state_path(settings).write_text(json.dumps(raw, indent=2) + "\n")


def up(settings: Settings, secure: bool = False) -> StackState:
    """Start whatever is not configured externally; idempotent. `secure` turns authentication and TLS on
    for good (a stack that runs without them must be stopped first)."""
    state = load_state(settings)
    state.home_id = state.home_id or uuid.uuid4().hex[:12]
    if secure and not state.secure:
        running = [name for name, server in (("postgres", state.postgres), ("nats", state.nats))
                   if server is not None and server.pid() is not None]
        if running:
            raise StackError(f"the embedded {' and '.join(running)} run without authentication: stop them first "
                             "(`ticklake down`), then `ticklake up --secure`")
        state.secure = True
    if settings.pg_dsn is None:
        if state.postgres is None:
            requested = settings.home / "postgres"
            data_dir = resolve_data_dir(requested, state.home_id)
            for old in left_behind(requested, data_dir):
                log.warning("not using %s: a database an earlier home at %s left behind (remove it if it is not "
                            "needed: `rm -rf %s`)", old, settings.home.absolute(), old)
            state.postgres = EmbeddedPostgres(data_dir, free_port())
        save_state(settings, state)  # where the cluster lives is recorded before it is created
        state.postgres.auth = _postgres_auth(settings.home) if state.secure else None
        state.postgres.start()
    if settings.nats_url is None:
        if state.nats is None:
            state.nats = EmbeddedNats((settings.home / "nats").absolute(), free_port())
        state.nats.memory_limit = settings.nats_memory_limit
        if state.secure:
            password_file, password = credentials.ensure_nats_password(settings.home)
            tls = credentials.ensure_tls(settings.home)
            state.nats.auth = NatsServerAuth(EMBEDDED_USER, password, tls.cert, tls.key)
            state.nats.tls = True
            write_embedded_client(settings.home, state.nats.url, password_file, tls.ca)
        state.nats.start()
    save_state(settings, state)
    return state


def _postgres_auth(home: Path) -> PostgresAuth:
    """The three roles' passwords, from their files under the home (made on first use)."""
    _, admin = credentials.ensure_pgpass(home, SUPERUSER)
    return PostgresAuth(admin, {role: credentials.ensure_pgpass(home, role)[1] for role in (WRITER, READER)})


HOME_ENTRIES = ("postgres", "nats", "capture", "spool", "dead_letters", "dagster", "logs", "demo", "lake",
                SECRETS_DIR, STATE_FILE)
"""What ticklake creates in its home (the lake only where it is the default, `<home>/lake`)."""


def down(settings: Settings) -> list[str]:
    """Stop what `up` started; returns the names of what was stopped."""
    state = load_state(settings)
    stopped = []
    if state.postgres and state.postgres.pid() is not None:
        state.postgres.stop()
        stopped.append("postgres")
    if state.nats and state.nats.pid() is not None:
        state.nats.stop()
        stopped.append("nats")
    return stopped


def purge(settings: Settings) -> list[Path]:
    """After `down`: remove everything the stack and ticklake created in its home, and the
    embedded database wherever it lives; returns what was removed. A lake configured outside the
    home (TICKLAKE_LAKE) and servers named by URL are not the stack's and stay."""
    state = load_state(settings)
    targets = [settings.home / name for name in HOME_ENTRIES]
    if state.postgres is not None:
        targets.append(state.postgres.data_dir)
    if state.nats is not None:
        targets.append(state.nats.store_dir)
    removed = []
    for target in dict.fromkeys(t.absolute() for t in targets):
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            continue
        removed.append(target)
    return removed


def _embedded_postgres(settings: Settings) -> tuple[EmbeddedPostgres, bool]:
    state = load_state(settings)
    if state.postgres is None:
        raise StackNotUp("TICKLAKE_PG_DSN is not set and no embedded PostgreSQL is up: run `ticklake up`")
    return state.postgres, state.secure


def pg_dsn(settings: Settings) -> str:
    """The writer's connection string (sinks, backfill, pipelines), with TICKLAKE_PG_PASSWORD(_FILE) when set."""
    password = settings.secret("pg_password")
    if settings.pg_dsn:
        return with_password(settings.pg_dsn, password)
    postgres, secure = _embedded_postgres(settings)
    if not secure:
        return postgres.dsn
    return with_password(postgres.role_dsn(WRITER, credentials.pgpass_file(settings.home, WRITER)), password,
                         "the embedded writer's DSN")


def pg_reader_dsn(settings: Settings) -> str:
    """The read-only role's connection string (the query API): TICKLAKE_PG_READER_DSN, else the secure
    embedded stack's reader, else the same as `pg_dsn`."""
    password = settings.secret("pg_reader_password")
    if settings.pg_reader_dsn:
        return with_password(settings.pg_reader_dsn, password, "TICKLAKE_PG_READER_DSN",
                             "TICKLAKE_PG_READER_PASSWORD")
    if settings.pg_dsn:
        return pg_dsn(settings)
    postgres, secure = _embedded_postgres(settings)
    if not secure:
        return postgres.dsn
    return with_password(postgres.role_dsn(READER, credentials.pgpass_file(settings.home, READER)), password,
                         "the embedded reader's DSN", "TICKLAKE_PG_READER_PASSWORD")


def pg_owner_dsn(settings: Settings) -> str:
    """The tables' owner's connection string, for migrations and retention (DDL, drop_chunks): the secure
    embedded stack's superuser; elsewhere TICKLAKE_PG_DSN, which must then name an owner for them."""
    if settings.pg_dsn:
        return pg_dsn(settings)
    postgres, secure = _embedded_postgres(settings)
    if not secure:
        return postgres.dsn
    return postgres.role_dsn(SUPERUSER, credentials.pgpass_file(settings.home, SUPERUSER))


def nats_url(settings: Settings) -> str:
    if settings.nats_url:
        return settings.nats_url
    state = load_state(settings)
    if state.nats is None:
        raise StackNotUp("TICKLAKE_NATS_URL is not set and no embedded nats-server is up: run `ticklake up`")
    return state.nats.url
