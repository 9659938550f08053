"""A private PostgreSQL cluster with TimescaleDB preloaded.

initdb and pg_ctl refuse to run as root, so as root the cluster runs as the `postgres` system
user (created by the PostgreSQL package) in a directory it owns. When that user cannot reach
the requested directory (a home under /root, say), the cluster lives under
/var/lib/ticklake/pg-<hash of the requested path>-<home id> instead, and `data_dir` says where.
The home id is the home's own (ticklake.stack.local): a new home at the path of a deleted one
gets a new cluster, never the old one's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

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


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        args = ["runuser", "-u", _SYSTEM_USER, "--", *args]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
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


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

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

    def start(self, timeout_s: float = 60) -> None:
        self.init()
        if self.pid() is None:
            # A postmaster killed by a crash can linger as a zombie nobody reaps (containers
            # whose PID 1 is not an init); PostgreSQL would take its lock file as a live server.
            for stale in ("postmaster.pid", f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
                (self.data_dir / stale).unlink(missing_ok=True)
            bindir = find_bindir()
            _run([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-w", "-t", str(int(timeout_s)), "start"])
        if not wait_listening(self.port, timeout_s):
            raise PostgresError(f"PostgreSQL did not listen on 127.0.0.1:{self.port}; see {self.log_file}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
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
