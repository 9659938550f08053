"""Settings from TICKLAKE_* environment variables or a ticklake.toml file.

Precedence: environment, then the TOML file (`./ticklake.toml`, or the path in
TICKLAKE_CONFIG), then defaults. Unknown keys in the file are rejected by name, and so are
TICKLAKE_* environment variables that name no setting (a typo must not fall back silently).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "TICKLAKE_"
CONFIG_PATH_VARIABLE = "TICKLAKE_CONFIG"


class SettingsError(ValueError):
    """A configuration problem, worded for the user."""


class Settings(BaseSettings):
    """Effective configuration. Unset server URLs mean "use the embedded stack" (`ticklake up`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", toml_file="ticklake.toml")

    home: Path = Path(".ticklake")
    """Where the embedded stack, captures, spools and Dagster history live."""
    pg_dsn: str | None = None
    """PostgreSQL/TimescaleDB connection string; unset means the embedded cluster."""
    nats_url: str | None = None
    """NATS server URL; unset means the embedded nats-server."""
    lake: str | None = None
    """Parquet lake root: a local path or an s3:// URL; default `<home>/lake`."""
    retention_days: int = Field(default=30, ge=0)
    """Days of ticks kept in TimescaleDB by `ticklake db retention` (the lake keeps everything)."""
    pipelines_start: dt.date | None = None
    """First daily partition of the pipelines (YYYY-MM-DD); unset: the earliest day in the lake."""
    bus_max_age_s: float = Field(default=7 * 86_400, gt=0)
    """How long the ticks stream keeps a message (JetStream max_age); a sink away longer than this
    finds a bus_gap, which `ticklake backfill` repairs from the raw captures."""
    bus_max_bytes: int | None = Field(default=None, gt=0)
    """The most the ticks stream holds before it discards its oldest messages; unset, the age limit
    alone bounds it. JetStream reserves a byte limit on disk when the stream is created and refuses
    one larger than the store can hold, so a fixed default would stop ticklake on a small disk:
    set it below the disk the NATS store has (docs/capacity.md gives bytes per record)."""

    @field_validator("pg_dsn")
    @classmethod
    def _is_dsn(cls, value: str | None) -> str | None:
        """Checked when read, so a typo is named here rather than by the first command that connects."""
        if value is not None:
            try:
                conninfo_to_dict(value)
            except ProgrammingError as exc:
                raise ValueError(f"not a PostgreSQL connection string ({' '.join(str(exc).split())})") from None
        return value

    @field_validator("nats_url")
    @classmethod
    def _is_nats_url(cls, value: str | None) -> str | None:
        if value is not None:
            for url in value.split(","):  # a client may list several servers
                parts = urlsplit(url.strip())
                try:
                    parts.port  # noqa: B018 (parsing it is the check)
                except ValueError:
                    parts = parts._replace(netloc="")
                if parts.scheme not in NATS_SCHEMES or not parts.hostname:
                    shown = mask_url(url) if "://" in url else url
                    raise ValueError(f"not a NATS server URL like nats://127.0.0.1:4222: '{shown}'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get(CONFIG_PATH_VARIABLE, "ticklake.toml")
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)

    @property
    def lake_root(self) -> str:
        return self.lake if self.lake else str(self.home / "lake")


_NOT_SETTINGS = {CONFIG_PATH_VARIABLE, "TICKLAKE_LOG_JSON", "TICKLAKE_TIMESCALE_SUITE"}
"""TICKLAKE_* variables that are not settings and so not rejected: the config file's path, JSON log
lines (ticklake/logs.py), and the TimescaleDB source suite of infra/install.sh (which `make demo`
passes on to `ticklake demo` when it is set for the install)."""
NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def load_settings() -> Settings:
    """Load settings, turning validation problems into one readable SettingsError."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | _NOT_SETTINGS
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise SettingsError(f"unknown setting(s) in the environment: {', '.join(unknown)}")
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown setting '{name}'")
            elif error["type"] == "value_error":  # our validators' own words, without pydantic's prefix
                problems.append(f"setting '{name}': {error['ctx']['error']}")
            else:
                problems.append(f"setting '{name}': {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


def mask_url(url: str) -> str:
    """A connection URL or libpq DSN with any password replaced by ***."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "<unparseable DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)
