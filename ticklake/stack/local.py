"""`ticklake up/down/status`: the embedded default stack and the effective server URLs.

With TICKLAKE_PG_DSN / TICKLAKE_NATS_URL set, those servers are used and nothing is started.
Otherwise `up` starts a private cluster and nats-server under $TICKLAKE_HOME and records them
in `$TICKLAKE_HOME/stack.json`, which is where every other command finds their URLs; `down`
stops only what that file says `up` started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ticklake.settings import Settings
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres, resolve_data_dir

STATE_FILE = "stack.json"


class StackNotUp(RuntimeError):
    """A server URL is needed but neither configured nor started by `ticklake up`."""


@dataclass
class StackState:
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None


def _state_path(settings: Settings) -> Path:
    return settings.home / STATE_FILE


def load_state(settings: Settings) -> StackState:
    path = _state_path(settings)
    if not path.exists():
        return StackState()
    raw = json.loads(path.read_text())
    state = StackState()
    if "postgres" in raw:
        state.postgres = EmbeddedPostgres(Path(raw["postgres"]["data_dir"]), raw["postgres"]["port"])
    if "nats" in raw:
        state.nats = EmbeddedNats(Path(raw["nats"]["store_dir"]), raw["nats"]["port"])
    return state


def save_state(settings: Settings, state: StackState) -> None:
    raw: dict[str, dict[str, object]] = {}
    if state.postgres:
        raw["postgres"] = {"data_dir": str(state.postgres.data_dir), "port": state.postgres.port}
    if state.nats:
        raw["nats"] = {"store_dir": str(state.nats.store_dir), "port": state.nats.port}
    settings.home.mkdir(parents=True, exist_ok=True)
    _state_path(settings).write_text(json.dumps(raw, indent=2) + "\n")


def up(settings: Settings) -> StackState:
    """Start whatever is not configured externally; idempotent."""
    state = load_state(settings)
    if settings.pg_dsn is None:
        if state.postgres is None:
            data_dir = resolve_data_dir(settings.home / "postgres")
            state.postgres = EmbeddedPostgres(data_dir, free_port())
        state.postgres.start()
    if settings.nats_url is None:
        if state.nats is None:
            state.nats = EmbeddedNats((settings.home / "nats").absolute(), free_port())
        state.nats.start()
    save_state(settings, state)
    return state


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


def pg_dsn(settings: Settings) -> str:
    if settings.pg_dsn:
        return settings.pg_dsn
    state = load_state(settings)
    if state.postgres is None:
        raise StackNotUp("TICKLAKE_PG_DSN is not set and no embedded PostgreSQL is up: run `ticklake up`")
    return state.postgres.dsn


def nats_url(settings: Settings) -> str:
    if settings.nats_url:
        return settings.nats_url
    state = load_state(settings)
    if state.nats is None:
        raise StackNotUp("TICKLAKE_NATS_URL is not set and no embedded nats-server is up: run `ticklake up`")
    return state.nats.url
