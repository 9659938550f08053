"""The stores `ticklake demo` fills, and emptying them before a rerun.

The demo replays fixed recordings. Run twice into the same stores, the second run would publish the
same records again: JetStream drops the copies it sees within its duplicate window but not all of
them (envelopes close on time as well as size), so the stores would hold a mix and the report could
not say what one run lands. So every run starts from empty stores: it deletes the bus streams,
empties the database tables (the schema stays) and the lake, and the home's capture, spool and
dead-letter folders.

It does that only to stores the demo filled itself. `$TICKLAKE_HOME/demo/stores.json` names them
(database, bus, lake) and is written before anything else is; stores that hold data without that
record, or other stores than it names, are refused, so the demo never empties a stack that holds
someone's live data.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from nats.js.errors import NotFoundError
from psycopg import sql
from pyarrow import fs

from storage.parquet_files import filesystem_for
from storage.pg import connect
from ticklake.bus_auth import connect as bus_connect
from ticklake.settings import mask_url

STREAMS = ("TICKS", "DEADLETTER")
"""The publishers' stream and the sinks' dead letters (consumers go with their stream)."""
HOME_FOLDERS = ("capture", "spool", "dead_letters")
KEPT_TABLES = {"ticklake_schema_migrations"}
MARKER = Path("demo") / "stores.json"


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Stores:
    dsn: str
    nats_url: str
    lake_root: str

    def describe(self) -> dict[str, str]:
        """The stores without secrets: what the marker records and compares."""
        return {"dsn": mask_url(self.dsn), "nats_url": mask_url(self.nats_url), "lake_root": self.lake_root}


def _tables(dsn: str) -> list[str]:
    """Every table of ticklake's schema except the migrations' record (hypertables included)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                            "ORDER BY tablename").fetchall()
    return [name for (name,) in rows if name not in KEPT_TABLES]


def _tables_with_rows(dsn: str) -> list[str]:
    tables = _tables(dsn)
    with connect(dsn) as conn:
        return [table for table in tables
                if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))).fetchone()
                == (True,)]


async def _stream_messages(nats_url: str, streams: tuple[str, ...]) -> dict[str, int]:
    client = await bus_connect(nats_url, connect_timeout=5)
    try:
        js = client.jetstream()
        found = {}
        for name in streams:
            try:
                found[name] = (await js.stream_info(name)).state.messages
            except NotFoundError:
                continue
        return found
    finally:
        await client.close()


def stream_messages(nats_url: str, streams: tuple[str, ...]) -> dict[str, int]:
    """Messages held per stream, for those of `streams` that exist."""
    return asyncio.run(_stream_messages(nats_url, streams))


async def _delete_streams(nats_url: str) -> None:
    client = await bus_connect(nats_url, connect_timeout=5)
    try:
        js = client.jetstream()
        for name in STREAMS:
            try:
                await js.delete_stream(name)
            except NotFoundError:
                continue
    finally:
        await client.close()


def _lake_files(lake_root: str) -> int:
    filesystem, base = filesystem_for(lake_root)
    infos = filesystem.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    return sum(info.type == fs.FileType.File for info in infos)


@dataclass(frozen=True)
class Held:
    """What the stores and the home hold."""

    messages: dict[str, int]
    """Stream -> messages, for streams holding any."""
    tables: list[str]
    """Tables with rows."""
    lake_files: int
    folders: list[Path]
    """The home's data folders that are not empty."""

    def __bool__(self) -> bool:
        return bool(self.messages or self.tables or self.lake_files or self.folders)

    def __str__(self) -> str:
        parts = [f"stream {name}: {count:,} messages" for name, count in self.messages.items()]
        if self.tables:
            parts.append(f"{len(self.tables)} tables with rows ({', '.join(self.tables[:3])}"
                         f"{', ...' if len(self.tables) > 3 else ''})")
        if self.lake_files:
            parts.append(f"{self.lake_files:,} lake files")
        return "; ".join(parts + [str(folder) for folder in self.folders])


def contents(stores: Stores, home: Path) -> Held:
    """What the stores and the home's data folders hold."""
    messages = {name: count for name, count in stream_messages(stores.nats_url, STREAMS).items() if count}
    folders = [home / folder for folder in HOME_FOLDERS if any((home / folder).glob("*"))]
    return Held(messages, _tables_with_rows(stores.dsn), _lake_files(stores.lake_root), folders)


def reset(stores: Stores, home: Path) -> None:
    """Empty the stores and the home's data folders (see the module docstring)."""
    asyncio.run(_delete_streams(stores.nats_url))
    tables = _tables(stores.dsn)
    if tables:
        with connect(stores.dsn) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    filesystem, base = filesystem_for(stores.lake_root)
    filesystem.delete_dir_contents(base, missing_dir_ok=True)
    for folder in HOME_FOLDERS:
        shutil.rmtree(home / folder, ignore_errors=True)


def prepare(stores: Stores, home: Path) -> Held:
    """Make the stores empty and the demo's, or refuse; returns what an earlier demo run left there
    and was removed (nothing, for fresh stores)."""
    marker = home / MARKER
    held = contents(stores, home)
    if held:
        recorded = json.loads(marker.read_text()) if marker.exists() else None
        if recorded != stores.describe():
            raise DemoError(
                f"these stores hold data that `ticklake demo` did not write ({held}), and the demo empties its "
                "stores before each run. Run it on a stack of its own, e.g. `TICKLAKE_HOME=.ticklake-demo "
                "ticklake demo` with TICKLAKE_PG_DSN, TICKLAKE_NATS_URL and TICKLAKE_LAKE unset")
        reset(stores, home)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(stores.describe(), indent=2) + "\n")
    return held
