"""A private PostgreSQL cluster with TimescaleDB preloaded.

initdb and pg_ctl refuse to run as root, so as root the cluster runs as the `postgres` system
user (created by the PostgreSQL package) in a directory it owns. When that user cannot reach
the requested directory (a home under /root, say), the cluster lives under
/var/lib/ticklake/pg-<hash of the requested path>-<home id> instead, and `data_dir` says where.
The home id is the home's own (ticklake.stack.local): a new home at the path of a deleted one
gets a new cluster, never the old one's.

Without `auth` the cluster trusts every local connection (initdb's --auth=trust), fine for a throwaway
stack on a laptop. With `auth` (`ticklake up --secure`) pg_hba.conf holds scram-sha-256 lines only, for
the socket and 127.0.0.1, and is written before the server first runs with it, so it never trusts
anyone. The roles' passwords are set before each start, in single-user mode (no server running, no
connection to authenticate), as scram verifiers computed here: the superuser's, the writer's and the
reader's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from storage.pg_auth import READER, login_statements, with_passfile, with_password
from ticklake.stack.ports import wait_listening
from ticklake.stack.processes import alive

SUPERUSER = "postgres"
DATABASE = "ticklake"
_SYSTEM_USER = "postgres"


class PostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The newest installed PostgreSQL whose share dir has the timescaledb extension."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    for pg_ctl in reversed(versions):
        major = pg_ctl.parts[-3]
        if Path(f"/usr/share/postgresql/{major}/extension/timescaledb.control").exists():
            return pg_ctl.parent
    raise PostgresError(
        "no PostgreSQL with the timescaledb extension found under /usr/lib/postgresql; "
        "run `bash infra/install.sh` as root"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(args: list[str], check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if _as_root():
        args = ["runuser", "-u", _SYSTEM_USER, "--", *args]
    result = subprocess.run(args, capture_output=True, text=True, check=False, input=stdin)
    if check and result.returncode != 0:
        raise PostgresError(f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _reachable_by_system_user(path: Path) -> bool:
    probe = path if path.exists() else path.parent
    result = subprocess.run(["runuser", "-u", _SYSTEM_USER, "--", "test", "-x", str(probe)], check=False)
    return result.returncode == 0


FALLBACK_ROOT = Path("/var/lib/ticklake")


def _fallback_prefix(requested: Path) -> str:
    return f"pg-{hashlib.sha256(str(requested.absolute()).encode()).hexdigest()[:12]}"


def resolve_data_dir(requested: Path, home_id: str) -> Path:
    """Where the cluster will actually live for a requested directory (see module docstring)."""
    requested = requested.absolute()
    if not _as_root() or _reachable_by_system_user(requested):
        return requested
    return FALLBACK_ROOT / f"{_fallback_prefix(requested)}-{home_id}"


def left_behind(requested: Path, data_dir: Path) -> list[Path]:
    """Clusters that earlier homes at the requested path left under the fallback root (other than
    `data_dir`): never adopted, reported so they can be removed."""
    prefix = _fallback_prefix(requested)
    return sorted(p for p in FALLBACK_ROOT.glob(f"{prefix}*") if p != data_dir and (p / "PG_VERSION").exists())


SECURE_HBA = """\
# Written by ticklake (`ticklake up --secure`, docs/security.md): passwords (scram-sha-256) only, never trust.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
"""


@dataclass(frozen=True)
class PostgresAuth:
    """scram-sha-256 logins: the superuser's password and other roles' (the writer's and the reader's)."""

    admin_password: str = field(repr=False)
    passwords: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    auth: PostgresAuth | None = None

    @property
    def dsn(self) -> str:
        """The superuser's DSN, without a password (with `auth`, connecting needs one: `connect_admin`)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def role_dsn(self, role: str, passfile: Path | None = None) -> str:
        """A role's DSN for the ticklake database; with `passfile`, libpq takes the password from it."""
        dsn = f"postgresql://{role}@127.0.0.1:{self.port}/{DATABASE}"
        return with_passfile(dsn, str(passfile)) if passfile is not None else dsn

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb (once) and write our settings; the port is rewritten on every start."""
        bindir = find_bindir()
        if not self.initialized():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if _as_root():
                shutil.chown(self.data_dir, _SYSTEM_USER, _SYSTEM_USER)
            os.chmod(self.data_dir, 0o700)
            _run([str(bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                  "--auth=trust", "-E", "UTF8", "--no-locale"])
        self._write_conf()
        if self.auth is not None:
            self._write_owned(self.data_dir / "pg_hba.conf", SECURE_HBA)

    def _write_conf(self) -> None:
        conf = self.data_dir / "ticklake.conf"
        conf.write_text(
            "\n".join([
                "listen_addresses = '127.0.0.1'",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.data_dir}'",
                "shared_preload_libraries = 'timescaledb'",
                "timescaledb.telemetry_level = off",
                "max_connections = 200",
                "shared_buffers = 256MB",
                "max_wal_size = 2GB",
                "password_encryption = 'scram-sha-256'",
                "",
            ])
        )
        main_conf = self.data_dir / "postgresql.conf"
        include = "include = 'ticklake.conf'"
        if include not in main_conf.read_text():
            with main_conf.open("a") as handle:
                handle.write(f"\n{include}\n")
        if _as_root():
            shutil.chown(conf, _SYSTEM_USER, _SYSTEM_USER)

    def _write_owned(self, path: Path, text: str) -> None:
        """A file in the data directory, owned by the cluster's user (and readable by it alone)."""
        path.write_text(text)
        os.chmod(path, 0o600)
        if _as_root():
            shutil.chown(path, _SYSTEM_USER, _SYSTEM_USER)

    def start(self, timeout_s: float = 60) -> None:
        self.init()
        was_running = self.pid() is not None
        if not was_running:
            # A postmaster killed by a crash can linger as a zombie nobody reaps (containers
            # whose PID 1 is not an init); PostgreSQL would take its lock file as a live server.
            for stale in ("postmaster.pid", f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
                (self.data_dir / stale).unlink(missing_ok=True)
            bindir = find_bindir()
            if self.auth is not None:
                self._set_passwords_offline(bindir)
            _run([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-w", "-t", str(int(timeout_s)), "start"])
        if not wait_listening(self.port, timeout_s):
            raise PostgresError(f"PostgreSQL did not listen on 127.0.0.1:{self.port}; see {self.log_file}")
        if was_running and self.auth is not None:  # set the passwords through the server
            with self.connect_admin("postgres") as conn:
                for statement in self._login_statements():
                    conn.execute(statement.encode())
        self._ensure_database()

    def _login_statements(self) -> list[str]:
        assert self.auth is not None
        statements = login_statements(SUPERUSER, self.auth.admin_password)
        for role, password in self.auth.passwords.items():
            statements += login_statements(role, password)
        if READER in self.auth.passwords:  # as migration 0002 does, in case a reader logs in before it ran
            statements.append(f"ALTER ROLE {READER} SET default_transaction_read_only = on")
        return statements

    def _set_passwords_offline(self, bindir: Path) -> None:
        """Create the roles and set their passwords in single-user mode, before the server starts."""
        script = "".join(f"{statement};\n\n" for statement in self._login_statements())
        result = _run([str(bindir / "postgres"), "--single", "-j", "-D", str(self.data_dir), "postgres"],
                      check=False, stdin=script)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line or "FATAL" in line]
        if result.returncode != 0 or errors:
            raise PostgresError(f"setting the roles' passwords failed: {'; '.join(errors) or result.returncode}")

    def connect_admin(self, dbname: str = DATABASE) -> psycopg.Connection[tuple[Any, ...]]:
        """A superuser connection (autocommit), with the superuser's password when the cluster has `auth`."""
        dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"
        if self.auth is not None:
            dsn = with_password(dsn, self.auth.admin_password)
        return psycopg.connect(dsn, autocommit=True)

    def _ensure_database(self) -> None:
        with self.connect_admin("postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> None:
        if self.pid() is None:
            return
        bindir = find_bindir()
        _run([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster and its children, as a crash would (fault tests)."""
        pid = self.pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
        os.kill(pid, signal.SIGKILL)
        for child in children.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)

    def pid(self) -> int | None:
        """The running postmaster's pid, or None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        return pid if alive(pid) else None
