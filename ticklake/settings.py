"""Settings from TICKLAKE_* environment variables or a ticklake.toml file.

Precedence: environment, then the TOML file (`./ticklake.toml`, or the path in
TICKLAKE_CONFIG), then defaults. Unknown keys in the file are rejected by name, and so are
TICKLAKE_* environment variables that name no setting (a typo must not fall back silently).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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
    capture_keep_days: int | None = Field(default=None, ge=0)
    """UTC days of raw captures `ticklake capture prune` keeps (only sealed days ever go); unset: no age limit."""
    capture_max_gib: float | None = Field(default=None, gt=0)
    """GiB the raw captures may take before `ticklake capture prune` removes the oldest sealed ones."""
    bus_max_age_s: float = Field(default=7 * 86_400, gt=0)
    """How long the ticks stream keeps a message (JetStream max_age); a sink away longer than this
    finds a bus_gap, which `ticklake backfill` repairs from the raw captures."""
    bus_max_bytes: int | None = Field(default=None, gt=0)
    """The most the ticks stream holds before it discards its oldest messages; unset, the age limit
    alone bounds it. JetStream reserves a byte limit on disk when the stream is created and refuses
    one larger than the store can hold, so a fixed default would stop ticklake on a small disk:
    set it below the disk the NATS store has (docs/capacity.md gives bytes per record)."""
    nats_memory_limit: str | None = None
    """GOMEMLIMIT of the embedded nats-server (`768MiB`): Go's collector then keeps the server's heap under
    it rather than letting it grow to twice what is live; unset, Go's default (no limit). A limit below
    what is live makes the server spend up to half its CPU collecting (docs/deployment.md, "Memory")."""

    # Secrets (docs/security.md). Each password is given either as itself or, better, as a file holding it
    # (`*_file`: a Docker or systemd secret), never both; read when a connection needs it, never printed.
    pg_password: SecretStr | None = None
    """Password of TICKLAKE_PG_DSN's role (the writer) when the DSN holds none."""
    pg_password_file: Path | None = None
    pg_reader_dsn: str | None = None
    """Connection string of the read-only role for the query API; unset: TICKLAKE_PG_DSN (or the embedded
    stack's reader when it is secure)."""
    pg_reader_password: SecretStr | None = None
    """Password of TICKLAKE_PG_READER_DSN's role when the DSN holds none."""
    pg_reader_password_file: Path | None = None
    nats_user: str | None = None
    """NATS user name (with a password: user and password authentication)."""
    nats_password: SecretStr | None = None
    nats_password_file: Path | None = None
    nats_tls_ca: Path | None = None
    """CA certificate (PEM) that signed the NATS server's certificate: set, every client requires TLS and
    verifies the server against it (and its host name)."""
    nats_tls_cert: Path | None = None
    """Client certificate (PEM), for a server that verifies its clients (`verify: true`); with nats_tls_key."""
    nats_tls_key: Path | None = None
    nats_tls_first: bool = False
    """TLS before the NATS protocol starts (a server with `handshake_first: true`): nothing, not even the
    server's INFO, travels in clear, so a man in the middle cannot strip the server's TLS requirement."""

    @field_validator("pg_dsn", "pg_reader_dsn")
    @classmethod
    def _is_dsn(cls, value: str | None) -> str | None:
        """Checked when read, so a typo is named here rather than by the first command that connects."""
        if value is not None:
            try:
                conninfo_to_dict(value)
            except ProgrammingError as exc:
                raise ValueError(f"not a PostgreSQL connection string ({' '.join(str(exc).split())})") from None
        return value

    @model_validator(mode="after")
    def _secrets_once(self) -> Settings:
        """A password given twice (itself and a file) is refused: which one wins would be a guess."""
        for name in SECRETS:
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"give {ENV_PREFIX}{name.upper()} or {ENV_PREFIX}{name.upper()}_FILE, not both")
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError("give TICKLAKE_NATS_TLS_CERT and TICKLAKE_NATS_TLS_KEY together (a client certificate "
                             "and its key)")
        return self

    def secret(self, name: str) -> str | None:
        """The password setting `name` (e.g. "nats_password"): its value, or its file's first line.

        Read here, when a connection needs it, rather than when the settings load: a file that moved
        is named by the command that needed it, and the value never sits in the settings' repr."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        path: Path | None = getattr(self, f"{name}_file")
        return None if path is None else read_secret_file(path, f"{ENV_PREFIX}{name.upper()}_FILE")

    def secret_source(self, name: str) -> str | None:
        """Where the password setting `name` comes from, for `ticklake config` (never the value)."""
        if getattr(self, name) is not None:
            return f"{ENV_PREFIX}{name.upper()}"
        path = getattr(self, f"{name}_file")
        return None if path is None else f"file {path}"

    @field_validator("nats_memory_limit")
    @classmethod
    def _is_go_memory_limit(cls, value: str | None) -> str | None:
        """Checked here: nats-server stops at start on a GOMEMLIMIT it cannot parse, and `ticklake up` would
        only see a server that never listened (the embedded server's stderr is not kept)."""
        if value is not None and not GO_MEMORY_LIMIT.fullmatch(value):
            raise ValueError("not a Go memory limit like 768MiB (bytes, or a whole number of KiB, MiB, GiB or TiB): "
                             f"'{value}'")
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
SECRETS = ("pg_password", "pg_reader_password", "nats_password")
"""Password settings; each has a `<name>_file` twin."""


def read_secret_file(path: Path, setting: str) -> str:
    """A secret file's first line (a trailing newline is no part of a password), or SettingsError naming
    the setting and the file."""
    try:
        text = path.expanduser().read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read {setting} {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise SettingsError(f"{setting} {path} is empty")
    return lines[0]
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
GO_MEMORY_LIMIT = re.compile(r"[0-9]+(B|KiB|MiB|GiB|TiB)?")
"""The form of GOMEMLIMIT (Go's runtime/debug): bytes, or a whole number of binary units."""


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
                problems.append(f"setting '{name}': {error['ctx']['error']}" if name else str(error["ctx"]["error"]))
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
