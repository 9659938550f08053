"""Running `ticklake replay-server` and `ticklake ingest` as separate processes, as docs/ingest.md
does: one helper for every venue's CLI test."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.waiting import wait_for
from ticklake.stack.ports import free_port, wait_listening

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))


@contextlib.contextmanager
def replay_server_process(venue: str, captures: Sequence[Path], speed: str = "20",
                          server_args: Sequence[str] = ()) -> Iterator[int]:
    """`ticklake replay-server` on a free port for the block; yields the port."""
    port = free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", venue, *map(str, captures), "--port", str(port),
                               "--speed", speed, *server_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert wait_listening(port, 20)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def replay_progress(port: int) -> dict[str, Any]:
    """The replay server's progress on `port` (`GET /_replay`: frames, played, clients, done)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_replay", timeout=5) as response:
        progress: dict[str, Any] = json.loads(response.read())
    return progress


def wait_played(port: int, timeout_s: float = 120) -> None:
    """Until the replay server on `port` has written every frame to its clients."""
    wait_for(lambda: bool(replay_progress(port)["done"]), timeout_s, "the replay to finish", every_s=0.2)


def ingest_from_replay(venue: str, captures: Sequence[Path], symbols: Sequence[str], tmp_path: Path,
                       *ingest_args: str, speed: str = "20", server_args: Sequence[str] = (),
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Replay `captures` on a free port and run the real handler against it for a few seconds;
    TICKLAKE_HOME is `tmp_path/home`. Returns the finished ingest process."""
    with replay_server_process(venue, captures, speed, server_args) as port:
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        run_env.update(TICKLAKE_HOME=str(tmp_path / "home"), **(env or {}))
        return subprocess.run(
            [TICKLAKE, "ingest", "--venue", venue, "--symbols", ",".join(symbols), "--ws-url",
             f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}", *ingest_args],
            env=run_env, capture_output=True, text=True, timeout=120, check=False)
