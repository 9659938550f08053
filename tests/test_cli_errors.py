"""Every user error of every command is one line on stderr and exit code 2, never a traceback: bad
settings, unreachable servers, missing or unreadable files, bad shard specs, out-of-range numbers, unknown
venues and channels, bad dates and windows, and the parser's own usage errors. Each case runs the
installed `ticklake` script as a user would, in a fresh TICKLAKE_HOME with no stack up.

Servers that "cannot be reached" are free ports nobody listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ticklake import __version__
from ticklake.recordings import RECORDINGS
from ticklake.stack.ports import free_port

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
CAPTURE = RECORDINGS / "okx" / "funding-rate.tardis-fixture.jsonl"
NOT_A_CAPTURE = Path(__file__)
CLOSED_PG = f"postgresql://nobody:s3cret@127.0.0.1:{free_port()}/ticklake"
CLOSED_NATS = f"nats://127.0.0.1:{free_port()}"
UNREACHABLE = {"TICKLAKE_PG_DSN": CLOSED_PG, "TICKLAKE_NATS_URL": CLOSED_NATS}

CASES: list[tuple[str, dict[str, str], list[str], str]] = [
    # (case id, environment, arguments, what the line says)
    ("malformed DSN", {"TICKLAKE_PG_DSN": "nonsense"}, ["db", "migrate"],
     "setting 'pg_dsn': not a PostgreSQL connection string"),
    ("malformed NATS URL", {"TICKLAKE_NATS_URL": "foo:bar"}, ["sink", "parquet"], "setting 'nats_url': not a NATS"),
    ("NATS URL with a bad port", {"TICKLAKE_NATS_URL": "nats://127.0.0.1:99999"}, ["status"], "setting 'nats_url'"),
    ("negative retention", {"TICKLAKE_RETENTION_DAYS": "-1"}, ["config"], "setting 'retention_days'"),
    ("zero bus age", {"TICKLAKE_BUS_MAX_AGE_S": "0"}, ["config"], "setting 'bus_max_age_s'"),
    ("bad pipelines start", {"TICKLAKE_PIPELINES_START": "2024-13-01"}, ["config"], "setting 'pipelines_start'"),
    ("unknown setting", {"TICKLAKE_NOPE": "1"}, ["status"], "unknown setting(s) in the environment: TICKLAKE_NOPE"),
    ("home is a file", {"TICKLAKE_HOME": str(NOT_A_CAPTURE)}, ["up"], str(NOT_A_CAPTURE)),
    ("migrate, database unreachable", UNREACHABLE, ["db", "migrate"], "cannot connect to PostgreSQL at"),
    ("retention, database unreachable", UNREACHABLE, ["db", "retention", "--dry-run"], "cannot connect to PostgreSQL"),
    ("selfcheck, database unreachable", UNREACHABLE, ["selfcheck"], "cannot connect to PostgreSQL"),
    ("timescale sink, database unreachable", UNREACHABLE, ["sink", "timescale"], "cannot connect to PostgreSQL"),
    ("parquet sink, bus unreachable", UNREACHABLE, ["sink", "parquet"], "cannot connect to NATS"),
    ("backfill, no captures", UNREACHABLE, ["backfill", "--from", "2024-08-08", "--to", "2024-08-09"],
     "no raw captures of any venue under"),
    ("demo, servers unreachable", UNREACHABLE, ["demo"], "cannot connect to PostgreSQL"),
    ("migrate, no stack", {}, ["db", "migrate"], "no embedded PostgreSQL is up: run `ticklake up`"),
    ("run, no stack", {}, ["run", "--venue", "okx", "--symbols", "BTC-USDT"], "no embedded nats-server is up"),
    ("pipelines dev, no stack", {}, ["pipelines", "dev"], "no embedded PostgreSQL is up"),
    ("normalize, missing capture", {}, ["normalize", "okx", "missing.jsonl", "--out", "out"],
     "capture not found: missing.jsonl"),
    ("normalize, not a capture", {}, ["normalize", "okx", str(NOT_A_CAPTURE), "--out", "out"],
     "not a capture format ticklake reads"),
    ("normalize, unwritable output", {}, ["normalize", "okx", str(CAPTURE), "--out", "/proc/ticklake-out"],
     "/proc/ticklake-out"),
    ("normalize, unknown venue", {}, ["normalize", "nope", str(CAPTURE), "--out", "out"], "unknown venue 'nope'"),
    ("normalize, zero top interval", {}, ["normalize", "okx", str(CAPTURE), "--out", "out", "--top-every", "0"],
     "Invalid value for '--top-every': must be above 0, not 0"),
    ("replay server, missing capture", {}, ["replay-server", "okx", "missing.jsonl"], "capture not found"),
    ("replay server, unknown venue", {}, ["replay-server", "nope", str(CAPTURE)], "unknown venue 'nope'"),
    ("replay server, port out of range", {}, ["replay-server", "okx", str(CAPTURE), "--port", "70000"],
     "Invalid value for '--port'"),
    ("replay server, negative speed", {}, ["replay-server", "okx", str(CAPTURE), "--speed", "-1"],
     "Invalid value for '--speed'"),
    ("replay server, no clients", {}, ["replay-server", "okx", str(CAPTURE), "--clients", "0"],
     "Invalid value for '--clients'"),
    ("ingest, shard beyond count", {}, ["ingest", "--venue", "okx", "--symbols", "BTC-USDT", "--shard", "3/2"],
     "shard"),
    ("ingest, shard not K/N", {}, ["ingest", "--venue", "okx", "--symbols", "BTC-USDT", "--shard", "x"], "shard"),
    ("ingest, unknown venue", {}, ["ingest", "--venue", "nope", "--symbols", "X"], "unknown venue 'nope'"),
    ("ingest, venues without symbols", {}, ["ingest", "--venue", "okx", "--venue", "bybit", "--symbols", "A"],
     "2 --venue but 1 --symbols"),
    ("ingest, unknown channel", UNREACHABLE, ["ingest", "--venue", "okx", "--symbols", "BTC-USDT", "--channels",
                                              "nosuch", "--out", "out", "--ws-url", "ws://127.0.0.1:1"], "nosuch"),
    ("ingest, zero duration", {}, ["ingest", "--venue", "okx", "--symbols", "BTC-USDT", "--duration", "0"],
     "Invalid value for '--duration': must be above 0"),
    ("ingest, negative metrics port", {}, ["ingest", "--venue", "okx", "--symbols", "A", "--metrics-port", "-1"],
     "Invalid value for '--metrics-port'"),
    ("ingest, negative top depth", {}, ["ingest", "--venue", "okx", "--symbols", "A", "--top-depth", "-1"],
     "Invalid value for '--top-depth'"),
    ("ingest, negative metadata interval", {}, ["ingest", "--venue", "okx", "--symbols", "A", "--metadata-every",
                                                "-5"], "Invalid value for '--metadata-every'"),
    ("probe, unknown venue", {}, ["probe", "nope"], "unknown venue 'nope'"),
    ("probe, zero seconds", {}, ["probe", "okx", "--seconds", "0"], "Invalid value for '--seconds': must be above 0"),
    ("probe, bad route", {}, ["probe", "okx", "--route", "market"], "--route takes NAME=PATH"),
    ("probe, seconds not a number", {}, ["probe", "okx", "--seconds", "abc"], "Invalid value for '--seconds'"),
    ("run, negative duration", {}, ["run", "--venue", "okx", "--symbols", "A", "--duration", "-1"],
     "Invalid value for '--duration'"),
    ("run, negative catch-up", {}, ["run", "--venue", "okx", "--symbols", "A", "--catch-up", "-1"],
     "Invalid value for '--catch-up'"),
    ("run, metrics ports out of range", {}, ["run", "--venue", "okx", "--symbols", "A", "--metrics-port", "65535"],
     "Invalid value for '--metrics-port'"),
    ("backfill, from after to", UNREACHABLE, ["backfill", "--from", "2024-08-09", "--to", "2024-08-08"],
     "--to must be after --from"),
    ("backfill, bad date", {}, ["backfill", "--from", "2024-13-01", "--to", "2024-12-02"], "--from '2024-13-01'"),
    ("backfill, unknown venue", UNREACHABLE, ["backfill", "--from", "2024-08-08", "--to", "2024-08-09", "--venue",
                                              "nope"], "unknown venue nope (known: binance-usdm"),
    ("pipelines run, bad date", {}, ["pipelines", "run", "--from", "2024-02-30"], "--from"),
    ("pipelines run, from after to", {}, ["pipelines", "run", "--from", "2024-08-09", "--to", "2024-08-08"],
     "--to 2024-08-08 is before --from 2024-08-09"),
    ("pipelines dev, port zero", {}, ["pipelines", "dev", "--port", "0"], "Invalid value for '--port'"),
    ("parquet sink, zero batch", {}, ["sink", "parquet", "--batch", "0"], "Invalid value for '--batch'"),
    ("parquet sink, zero flush rows", {}, ["sink", "parquet", "--flush-rows", "0"], "Invalid value for '--flush-rows'"),
    ("parquet sink, negative flush age", {}, ["sink", "parquet", "--flush-age", "-1"],
     "Invalid value for '--flush-age'"),
    ("timescale sink, zero ack wait", {}, ["sink", "timescale", "--ack-wait", "0"], "Invalid value for '--ack-wait'"),
    ("timescale sink, metrics port out of range", {}, ["sink", "timescale", "--metrics-port", "70000"],
     "Invalid value for '--metrics-port'"),
    ("retention, negative days", {}, ["db", "retention", "--keep-days", "-1"], "Invalid value for '--keep-days'"),
    ("unknown command", {}, ["nosuch"], "No such command 'nosuch'. (see 'ticklake --help')"),
    ("unknown option", {}, ["up", "--nope"], "No such option: --nope (see 'ticklake up --help')"),
    ("missing argument", {}, ["probe"], "Missing argument 'venue'. (see 'ticklake probe --help')"),
    ("missing option", {}, ["pipelines", "run"], "Missing option '--from'. (see 'ticklake pipelines run --help')"),
    ("no feeds", {}, ["ingest", "--venue", "okx"], "give --venue and --symbols, or --config FILE"),
]


def _run(env: dict[str, str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    return subprocess.run([TICKLAKE, *args], env=base | {"TICKLAKE_HOME": str(cwd / "home")} | env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("env", "args", "says"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_user_error_is_one_line_and_exit_code_2(tmp_path: Path, env: dict[str, str], args: list[str],
                                                  says: str) -> None:
    result = _run(env, args, tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("ticklake: "), result.stderr[-3000:]
    assert says in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "s3cret" not in result.stderr
    assert not (tmp_path / "home" / "nats").exists()  # nothing was started


def test_version(tmp_path: Path) -> None:
    result = _run({}, ["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout == f"ticklake {__version__}\n" and not result.stderr


def test_a_group_without_its_command_shows_its_help(tmp_path: Path) -> None:
    result = _run({}, ["db"], tmp_path)
    assert result.returncode == 2 and "migrate" in result.stdout and not result.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run({}, ["replay-server", "okx", str(CAPTURE), "--port", str(port)], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("ticklake: ") and "address already in use" in line
