"""infra/systemd: `systemd-analyze verify` accepts every unit without a warning (with ExecStart pointed
at this virtualenv's ticklake, since verify wants the binary to exist, and the template unit as an
instance for a real venue); long-running services restart on failure, all are hardened and read
their passwords as credentials; every ticklake command line parses; the example environment files
are accepted by ticklake's own settings, which reject unknown TICKLAKE_* names."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest.venues.registry import PROTOCOLS
from tests.cli_options import check_parses

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "infra/systemd"
INSTALLED = "/opt/ticklake/.venv/bin/ticklake"
TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
UNITS = sorted(path for path in SYSTEMD.iterdir() if path.suffix in {".service", ".timer", ".target"})
SERVICES = [path for path in UNITS if path.suffix == ".service"]
LONG_RUNNING = {"ticklake-ingest@.service", "ticklake-sink-timescale.service", "ticklake-sink-parquet.service",
                "nats-server.service"}
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
             "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}


def _directives(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def _verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze missing: infra/install.sh installs systemd"
    return subprocess.run([analyze, "verify", "--man=no", *map(str, units)], capture_output=True, text=True,
                          check=False, cwd=units[0].parent, env={**os.environ, "SYSTEMD_LOG_LEVEL": "info"})


def _installed_copy(target: Path) -> list[Path]:
    """The units as installed on a host whose venv is this one, the template also as an instance."""
    copies = []
    for unit in UNITS:
        copy = target / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED, TICKLAKE))
        copies.append(copy)
    instance = target / "ticklake-ingest@binance-usdm.service"
    shutil.copy(target / "ticklake-ingest@.service", instance)
    return [unit for unit in copies if "@." not in unit.name] + [instance]


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    result = _verify(_installed_copy(tmp_path))
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """What the check above relies on: a misspelt directive is a warning on stderr, a missing binary a
    failure; the units' check refuses both."""
    units = _installed_copy(tmp_path)
    sink = next(unit for unit in units if unit.name == "ticklake-sink-parquet.service")
    sink.write_text(sink.read_text().replace("ProtectSystem=", "ProtectSystm="))
    assert "Unknown key 'ProtectSystm'" in _verify([sink]).stderr
    fixed = sink.read_text().replace("ProtectSystm=", "ProtectSystem=")
    sink.write_text(fixed.replace(TICKLAKE, "/nonexistent/ticklake"))
    missing = _verify([sink])
    assert missing.returncode != 0 and "/nonexistent/ticklake" in missing.stderr


@pytest.mark.parametrize("unit", SERVICES, ids=[unit.name for unit in SERVICES])
def test_services_are_hardened_and_read_secrets_as_credentials(unit: Path) -> None:
    directives = _directives(unit)
    assert directives["User"] == ["nats" if unit.name == "nats-server.service" else "ticklake"], unit.name
    for key, value in HARDENING.items():
        assert directives.get(key) == [value], f"{unit.name}: {key}"
    if unit.name in LONG_RUNNING:
        assert directives["Restart"] == ["on-failure"] and directives["KillSignal"] == ["SIGTERM"], unit.name
    else:
        assert directives["Type"] == ["oneshot"] and (SYSTEMD / unit.name.replace(".service", ".timer")).exists()
    credentials = {value.split(":")[0]: value.split(":")[1] for value in directives.get("LoadCredential", [])}
    assert credentials, unit.name
    for name, source in credentials.items():
        assert source == f"/etc/ticklake/credentials/{name}", unit.name
    for value in directives.get("Environment", []):
        key, setting = value.split("=", 1)
        if "PASSWORD" in key:
            assert key.endswith("_FILE") and setting.startswith("%d/") and setting[3:] in credentials, value
    # a password is a credential's path, or read from one by the shell: never a value
    assert not re.search(r'(?i)password=(?!%d/|"\$\$\(cat "\$\$CREDENTIALS_DIRECTORY/)',
                         unit.read_text().replace("_FILE=", "")), unit.name


def _ticklake_argv(unit: Path, environment: dict[str, str]) -> list[str]:
    """The ticklake (or nats-server) command of a unit's ExecStart, with systemd's and the shell's expansions done as
    they would be for the instance `binance-usdm`."""
    line = _directives(unit)["ExecStart"][0].replace("%i", "binance-usdm").replace("$$", "$").replace("%%", "%")
    for key, value in environment.items():
        line = line.replace("${" + key + "}", value).replace("$" + key, value)
    words = shlex.split(line)
    if words[:2] == ["/bin/sh", "-c"]:
        words = shlex.split(words[2].replace('"$(date -u -d yesterday +%F)"', "2024-08-08"))
        words = words[words.index("exec") + 1:]
    assert words[0] in {INSTALLED, "/usr/local/bin/nats-server"}, unit.name
    return words


def _environment_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_every_command_parses() -> None:
    environment = _environment_file(SYSTEMD / "ingest.env.example")
    for unit in SERVICES:
        argv = _ticklake_argv(unit, environment)
        check_parses(argv, unit.name)  # nats-server: the virtualenv's, as docs/deployment.md installs it
        if unit.name == "ticklake-ingest@.service":
            assert argv[1:4] == ["ingest", "--venue", "binance-usdm"] and "binance-usdm" in PROTOCOLS


def test_example_environment_is_accepted_by_ticklake(tmp_path: Path) -> None:
    """ticklake.env and an ingest instance's file together, with the credentials as systemd passes
    them: `ticklake config` accepts every name and value and takes each password from its file."""
    for name in ("pg_writer_password", "pg_reader_password", "nats_password"):
        (tmp_path / name).write_text("not-a-real-one\n")
    environment = {**_environment_file(SYSTEMD / "ticklake.env.example"),
                   **_environment_file(SYSTEMD / "ingest.env.example"),
                   "TICKLAKE_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
                   "TICKLAKE_PG_PASSWORD_FILE": str(tmp_path / "pg_writer_password"),
                   "TICKLAKE_PG_READER_PASSWORD_FILE": str(tmp_path / "pg_reader_password"),
                   "TICKLAKE_NATS_PASSWORD_FILE": str(tmp_path / "nats_password"), "COLUMNS": "250"}
    result = subprocess.run([TICKLAKE, "config"], capture_output=True, text=True, check=False, env=environment)
    assert result.returncode == 0, result.stderr
    for setting in ("TICKLAKE_PG_PASSWORD", "TICKLAKE_PG_READER_PASSWORD", "TICKLAKE_NATS_PASSWORD"):
        row = next(line for line in result.stdout.splitlines() if re.match(rf"│ {setting} +│", line))
        assert re.search(r"│ \*\*\* +│ file\b", row), row  # masked, and from its file (the path wraps)
    assert "not-a-real-one" not in result.stdout


def test_nats_server_has_the_compose_services_memory_limit() -> None:
    """One GOMEMLIMIT for both deployments; tests/test_docker_files.py starts a real nats-server with it."""
    compose = yaml.safe_load((ROOT / "infra/docker/compose.yaml").read_text())
    limit = compose["services"]["nats"]["environment"]["GOMEMLIMIT"]
    assert _directives(SYSTEMD / "nats-server.service")["Environment"] == [f"GOMEMLIMIT={limit}"]
