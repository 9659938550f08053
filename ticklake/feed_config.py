"""The feed configuration file: which feeds a host runs, read by `ticklake ingest`, the sinks and
`ticklake run --config FILE` (the supervisor).

A TOML file, checked whole before anything starts; each mistake is named with the file, its line,
the key, the bad value and the valid choices, so a typo in a feed of twenty is found at once:

    [[feed]]
    venue = "binance-usdm"
    instruments = ["BTC-USDT-PERP", "ETHUSDT"]   # normalized ids or venue symbols, or "all"
    channels = ["trades", "book", "bbo"]         # standard names (default: the venue's default set)
    shards = 2                                   # one child process per shard (stable hash)
    capture = true
    top_depth = 20

`instruments = "all"` is every perpetual the venue lists, read from its instrument master (the
same metadata endpoints and normalizer the handler uses): resolved when the feed starts, and again
every `refresh_s` by the supervisor, which restarts that feed's children when the list changed
(a handler's subscriptions are fixed for its connection's life).
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ingest.feed_handler import rest_request
from ingest.frames import Frame
from ingest.normalizing import normalize_frame
from ingest.venues.interface import UnknownChannel
from ingest.venues.names import UnknownInstrument, venue_symbols
from ingest.venues.registry import CONNECTIONS, NORMALIZERS
from normalize.emitted import Emitted
from normalize.records import Instrument
from ticklake.settings import SettingsError

ALL = "all"
TRADING = {"trading", "live", "open", "online", "active"}
"""Instrument statuses (lower case) that mean listed and trading, across the venues' words for it."""


class FeedConfigError(SettingsError):
    """A feed configuration mistake, worded with the file, line, key, value and the valid choices."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedSpec(_Strict):
    """One feed: a venue and some of its instruments, run as `shards` child processes."""

    venue: str
    instruments: list[str] | Literal["all"]
    name: str = ""
    """Names the feed's children and capture files; default the venue (must be unique in the file)."""
    channels: list[str] | None = None
    """Standard channel names (or the venue's own); default the venue's default set."""
    shards: int = Field(default=1, ge=1, le=64)
    capture: bool = True
    top_depth: int = Field(default=0, ge=0)
    top_every_s: float = Field(default=1.0, gt=0)
    metadata_every_s: float = Field(default=3600.0, gt=0)
    clock: Literal["local", "recorded"] = "local"
    ws_url: str | None = None
    """Base URL overrides (a replay server, a synthetic venue)."""
    rest_url: str | None = None

    @field_validator("venue")
    @classmethod
    def _known_venue(cls, value: str) -> str:
        if value not in CONNECTIONS:
            raise ValueError(f"'{value}' is not a venue (known: {', '.join(CONNECTIONS)})")
        return value

    @field_validator("instruments", mode="before")
    @classmethod
    def _instruments(cls, value: object) -> object:
        if isinstance(value, str) and value != ALL:
            raise ValueError(f"'{value}': give a list of instruments or \"all\"")
        if isinstance(value, list) and not value:
            raise ValueError("an empty list: give instruments or \"all\"")
        return value

    @field_validator("instruments")
    @classmethod
    def _instruments_map(cls, value: list[str] | str, info: ValidationInfo) -> list[str] | str:
        """Checked against the venue's own naming (ingest.venues.names): an id the venue cannot
        express is found before anything starts."""
        venue = info.data.get("venue")
        if isinstance(value, list) and venue is not None:
            try:
                venue_symbols(CONNECTIONS[venue], value)
            except UnknownInstrument as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("channels")
    @classmethod
    def _channels_map(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        """Each channel must be a standard name or one of the venue's own: the handler's check."""
        from ticklake.ingest_run import make_connection

        venue = info.data.get("venue")
        if value is not None and venue is not None:
            try:
                make_connection(venue, list(CONNECTIONS[venue].probe_symbols), channels=value)
            except UnknownChannel as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def label(self) -> str:
        return self.name or self.venue


class CaptureRetention(_Strict):
    """Raw captures kept: at most `keep_days` UTC days and `max_gib` GiB, oldest first, and never a
    capture of a day the lake has not sealed (ticklake/capture_retention.py)."""

    keep_days: int | None = Field(default=None, ge=0)
    max_gib: float | None = Field(default=None, gt=0)


class Schedule(_Strict):
    """The supervisor's schedule: the daily pipelines for each finished UTC day, Timescale retention
    and capture pruning, checked every `every_s`."""

    pipelines: bool = True
    retention: bool = True
    prune_captures: bool = True
    every_s: float = Field(default=300.0, gt=0)
    seal_after_s: float = Field(default=600.0, ge=0)
    """A finished UTC day is sealed this long after its midnight: late records (a sink's last flush, a
    handler's spool) land first. A record later still is merged by the next seal of that day."""


class Supervisor(_Strict):
    health_port: int = Field(default=0, ge=0, le=65535)
    restart_backoff_s: float = Field(default=1.0, gt=0)
    """The first restart's delay; doubled per crash in a row, up to restart_backoff_max_s."""
    restart_backoff_max_s: float = Field(default=60.0, gt=0)
    healthy_after_s: float = Field(default=60.0, gt=0)
    """A child running this long has recovered: its next crash restarts after restart_backoff_s again."""
    catch_up_s: float = Field(default=60.0, ge=0)
    refresh_s: float = Field(default=3600.0, gt=0)
    """How often feeds with `instruments = "all"` are resolved again (new listings)."""


class SinkOptions(_Strict):
    batch: int | None = Field(default=None, ge=1)
    ack_wait_s: float | None = Field(default=None, gt=0)
    flush_rows: int | None = Field(default=None, ge=1)
    flush_age_s: float | None = Field(default=None, gt=0)

    def args(self) -> list[str]:
        pairs = (("--batch", self.batch), ("--ack-wait", self.ack_wait_s), ("--flush-rows", self.flush_rows),
                 ("--flush-age", self.flush_age_s))
        return [part for flag, value in pairs if value is not None for part in (flag, str(value))]


class FeedConfig(_Strict):
    feed: list[FeedSpec] = Field(min_length=1)
    supervisor: Supervisor = Supervisor()
    schedule: Schedule = Schedule()
    capture: CaptureRetention = CaptureRetention()
    sinks: dict[Literal["timescale", "parquet"], SinkOptions] = {}

    @model_validator(mode="after")
    def _unique_names(self) -> FeedConfig:
        seen: set[str] = set()
        for feed in self.feed:
            if feed.label in seen:
                raise ValueError(f"two feeds named '{feed.label}': give each feed of a venue its own `name`")
            seen.add(feed.label)
        return self

    def named(self, name: str | None) -> FeedSpec:
        """The feed called `name`, or the only one when `name` is None."""
        labels = [feed.label for feed in self.feed]
        if name is None:
            if len(self.feed) == 1:
                return self.feed[0]
            raise SettingsError(f"the config has {len(labels)} feeds: name one with --feed ({', '.join(labels)})")
        for feed in self.feed:
            if feed.label == name:
                return feed
        raise SettingsError(f"no feed named '{name}' in the config (feeds: {', '.join(labels)})")


def load_feed_config(path: Path) -> FeedConfig:
    """The file, checked; FeedConfigError naming each problem's line, key and value otherwise."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FeedConfigError(f"cannot read the config {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FeedConfigError(f"{path}: not TOML: {exc}") from None
    try:
        return FeedConfig.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        problems = [_problem(path, lines, error) for error in exc.errors()]
        raise FeedConfigError("; ".join(dict.fromkeys(problems))) from None


def _problem(path: Path, lines: dict[tuple[object, ...], int], error: Any) -> str:
    loc = tuple(error["loc"])
    # pydantic puts a union's branch ("list[str]", "literal['all']") in the path: not the user's key
    loc = tuple(part for part in loc if not (isinstance(part, str) and ("[" in part or part == "function-after")))
    key = loc
    while key and key not in lines:
        key = key[:-1]
    where = f"{path} line {lines[key]}" if key else str(path)
    name = ".".join(f"[{p + 1}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[") or "file"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key '{name}'"
    if error["type"] == "missing":
        return f"{where}: '{name}' is missing"
    message = error["ctx"]["error"] if error["type"] == "value_error" else error["msg"]
    shown = "" if error["type"] == "value_error" else f" = {error['input']!r}"
    return f"{where}: {name}{shown}: {message}"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[object, ...], int]:
    """The line (1-based) of each table and key of a flat TOML file like ours: ("feed", 0, "venue") is
    the `venue` key of the first [[feed]]. tomllib keeps no positions; this covers the file's forms."""
    lines: dict[tuple[object, ...], int] = {}
    arrays: dict[str, int] = {}
    table: tuple[object, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts: tuple[object, ...] = tuple(header.group(2).split("."))
            if header.group(1) == "[[":
                arrays[header.group(2)] = arrays.get(header.group(2), -1) + 1
                parts = (*parts, arrays[header.group(2)])
            table = parts
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, key.group(1)), number)
    return lines


async def _master(venue: str, rest_url: str | None) -> list[Instrument]:
    from ticklake.ingest_run import make_connection

    connection = make_connection(venue, list(CONNECTIONS[venue].probe_symbols), rest_url=rest_url)
    normalizer = NORMALIZERS[venue]()
    out = Emitted()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for url in connection.metadata_urls():
            async with rest_request(session, url) as response:
                if response.status != 200:
                    raise SettingsError(f"{venue}: its instrument list ({url}) answered HTTP {response.status}")
                normalize_frame(normalizer, Frame(time.time_ns(), "rest", await response.read(), url), out)
    return [r for r in out.records if isinstance(r, Instrument)]


def listed_perpetuals(venue: str, rest_url: str | None = None) -> list[str]:
    """The venue symbols of every perpetual it lists as trading now, sorted: what `instruments = "all"`
    subscribes. Read from the venue's instrument master (its metadata endpoints, through its own
    normalizer), so a new listing appears as soon as the venue lists it."""
    try:
        records = asyncio.run(_master(venue, rest_url))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SettingsError(f"{venue}: cannot read its instrument list: {type(exc).__name__}: {exc}") from None
    return sorted({r.symbol for r in records
                   if r.kind == "perpetual" and (r.status is None or r.status.lower() in TRADING)})


def feed_symbols(feed: FeedSpec) -> list[str]:
    """The feed's venue symbols: its list, or the venue's listed perpetuals for "all"."""
    if feed.instruments == ALL:
        return listed_perpetuals(feed.venue, feed.rest_url)
    return venue_symbols(CONNECTIONS[feed.venue], feed.instruments)

