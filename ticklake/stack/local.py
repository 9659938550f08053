"""`ticklake up/down/status`: the embedded default stack and the effective server URLs.

With TICKLAKE_PG_DSN / TICKLAKE_NATS_URL set, those servers are used and nothing is started.
Otherwise `up` starts a private cluster and nats-server under $TICKLAKE_HOME and records them
in `$TICKLAKE_HOME/stack.json`, which is where every other command finds their URLs; `down`
stops only what that file says `up` started, and `down --purge` also removes what it created.

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

from ticklake.settings import Settings
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres, left_behind, resolve_data_dir

STATE_FILE = "stack.json"
log = logging.getLogger(__name__)


class StackNotUp(RuntimeError):
    """A server URL is needed but neither configured nor started by `ticklake up`."""


@dataclass
class StackState:
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    home_id: str = ""


def _state_path(settings: Settings) -> Path:
    return settings.home / STATE_FILE


def load_state(settings: Settings) -> StackState:
    path = _state_path(settings)
    if not path.exists():
        return StackState()
    raw = json.loads(path.read_text())
    state = StackState(home_id=raw.get("home_id", ""))
    if "postgres" in raw:
        state.postgres = EmbeddedPostgres(Path(raw["postgres"]["data_dir"]), raw["postgres"]["port"])
    if "nats" in raw:
        state.nats = EmbeddedNats(Path(raw["nats"]["store_dir"]), raw["nats"]["port"])
    return state


def save_state(settings: Settings, state: StackState) -> None:
    raw: dict[str, object] = {"home_id": state.home_id}
    if state.postgres:
        raw["postgres"] = {"data_dir": str(state.postgres.data_dir), "port": state.postgres.port}
    if state.nats:
        raw["nats"] = {"store_dir": str(state.nats.store_dir), "port": state.nats.port}
    settings.home.mkdir(parents=True, exist_ok=True)
    _state_path(settings).write_text(json.dumps(raw, indent=2) + "\n")


def up(settings: Settings) -> StackState:
    """Start whatever is not configured externally; idempotent."""
    state = load_state(settings)
    state.home_id = state.home_id or uuid.uuid4().hex[:12]
    if settings.pg_dsn is None:
        if state.postgres is None:
            requested = settings.home / "postgres"
            data_dir = resolve_data_dir(requested, state.home_id)
            for old in left_behind(requested, data_dir):
                log.warning("not using %s: a database an earlier home at %s left behind (remove it if it is not "
                            "needed: `rm -rf %s`)", old, settings.home.absolute(), old)
            state.postgres = EmbeddedPostgres(data_dir, free_port())
        save_state(settings, state)  # where the cluster lives is recorded before it is created
        state.postgres.start()
    if settings.nats_url is None:
        if state.nats is None:
            state.nats = EmbeddedNats((settings.home / "nats").absolute(), free_port())
        state.nats.start()
    save_state(settings, state)
    return state


HOME_ENTRIES = ("postgres", "nats", "capture", "spool", "dead_letters", "dagster", "logs", "demo", "lake",
                STATE_FILE)
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
