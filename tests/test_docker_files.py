"""The compose file cannot run here (no Docker engine, no compose plugin); check what can be checked
without one: every service is there with a pinned image, a healthcheck and a restart policy; no
`trust` and no password in it, every secret read from a file; every command in it parses with the
installed tools (ticklake, Dagster, Prometheus) and uses only options they have; the volumes hold
the NATS store, the lake and the captures; the NATS configuration refuses a client without the
password (a real nats-server); the roles script gives the writer and the reader scram passwords
(a real PostgreSQL); the image copies every package and creates the folders the volumes mount on."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
import yaml

from ingest.venues.registry import PROTOCOLS
from tests.cli_options import check_parses
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres, find_bindir

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra/docker"
BIN = Path(sys.executable).parent
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ONE_SHOT = {"migrate", "roles", "status", "dagster-schedules"}
REQUIRED = {"timescaledb", "nats", "nats-exporter", "migrate", "roles", "sink-timescale", "sink-parquet",
            "dagster-daemon", "dagster-webserver", "prometheus", "grafana"}


def _app(service: dict[str, Any]) -> bool:
    return "build" in service


def test_every_service_is_there() -> None:
    assert REQUIRED <= SERVICES.keys()
    ingest = {name: service for name, service in SERVICES.items() if name.startswith("ingest-")}
    assert len(ingest) >= 2
    for name, service in ingest.items():
        command = service["command"]
        assert command[:2] == ["ingest", "--venue"] and command[2] in PROTOCOLS, name
        assert name == f"ingest-{command[2]}", "one service per venue, named for it"
        assert "--metrics-port" in command, name
    assert SERVICES["dagster-daemon"]["entrypoint"][:2] == ["dagster-daemon", "run"]
    assert SERVICES["dagster-webserver"]["entrypoint"][0] == "dagster-webserver"


def test_every_image_is_pinned() -> None:
    """A full version in every tag (no `latest`, no floating `2.10`); the app image is built from this tree."""
    for name, service in SERVICES.items():
        if _app(service):
            assert service["build"]["dockerfile"] == "infra/docker/Dockerfile", name
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*", image), f"{name}: {image} is not pinned"
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "-oss" not in SERVICES["timescaledb"]["image"], "the full edition, not the Apache-only build"


def test_healthchecks_and_restart_policies() -> None:
    """Long-running services restart and say whether they are healthy; one-shots run once. The NATS
    exporter's image has no shell or HTTP client to check itself with: Prometheus's `up` watches it."""
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] in {"unless-stopped", "always"}, name
        if name != "nats-exporter":
            assert service["healthcheck"]["test"][0] == "CMD", name


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_no_trust_and_every_secret_from_a_file() -> None:
    """scram everywhere; a variable that names a password names a file under /run/secrets that the
    service mounts; no DSN or URL carries a password; the secret files live outside git."""
    text = (DOCKER / "compose.yaml").read_text()
    assert "trust" not in re.sub(r"#.*", "", text)
    database = _environment(SERVICES["timescaledb"])
    assert database["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert database["POSTGRES_INITDB_ARGS"] == "--auth-host=scram-sha-256 --auth-local=scram-sha-256"
    assert "password_encryption=scram-sha-256" in SERVICES["timescaledb"]["command"]
    declared = COMPOSE["secrets"]
    for name, service in SERVICES.items():
        mounted = set(service.get("secrets", []))
        assert mounted <= declared.keys(), name
        for key, value in _environment(service).items():
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{name}: {key} holds a password"
            if "PASSWORD" in key:
                assert key.endswith("FILE"), f"{name}: {key} is a password in the environment"
                secret = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and secret in mounted, f"{name}: {key}"
        for step in service.get("entrypoint", []):  # a shell step reads each secret it uses from its mounted file
            for secret in re.findall(r"/run/secrets/(\w+)", step):
                assert secret in mounted, f"{name}: {secret} not mounted"
    for secret in declared.values():
        assert secret["file"].startswith("${TICKLAKE_SECRETS:-./secrets}/")
    ignored = subprocess.run(["git", "check-ignore", "-q", "infra/docker/secrets/nats_password"], cwd=ROOT,
                             check=False)
    assert ignored.returncode == 0, "infra/docker/secrets/ must be ignored by git"
    tracked = subprocess.run(["git", "ls-files", "infra/docker/secrets"], cwd=ROOT, capture_output=True, text=True,
                             check=True)
    assert not tracked.stdout.strip()


def test_every_command_parses() -> None:
    """ticklake commands as the image's entrypoint runs them, Dagster's and Prometheus's as given,
    each step of a shell entrypoint that runs one of those."""
    checked = 0
    for name, service in SERVICES.items():
        if _app(service) and "entrypoint" not in service:
            check_parses(["ticklake", *service["command"]], name)
            checked += 1
            continue
        entrypoint = service.get("entrypoint") or []
        if entrypoint[:2] == ["sh", "-c"]:
            steps = [shlex.split(step) for step in re.split(r"&&|;", entrypoint[2])]
            steps = [step[step.index("exec") + 1:] if "exec" in step else step for step in steps]
        else:
            steps = [entrypoint]
        for step in steps:
            if step and step[0] in {"dagster", "dagster-daemon", "dagster-webserver"}:
                check_parses(step, name)
                checked += 1
        if name == "prometheus":
            check_parses(["prometheus", *service["command"]], name)  # Debian's prometheus (infra/install.sh)
            checked += 1
    assert checked >= len([s for s in SERVICES.values() if _app(s)]) + 1


def test_app_environments_are_accepted_by_ticklake(tmp_path: Path) -> None:
    """Each distinct environment an app service gets passes ticklake's settings (which refuse unknown
    TICKLAKE_* names and malformed values), with its passwords taken from their files."""
    environments = {tuple(sorted(_environment(service).items())) for service in SERVICES.values() if _app(service)}
    assert len(environments) >= 2  # the app's, the migration's as the owner, Dagster's
    for secret in COMPOSE["secrets"]:
        (tmp_path / secret).write_text("not-a-real-one\n")
    for environment in environments:
        env = {key: value.replace("/run/secrets/", f"{tmp_path}/") for key, value in environment}
        env |= {"TICKLAKE_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "250"}
        result = subprocess.run([str(BIN / "ticklake"), "config"], capture_output=True, text=True, check=False,
                                env=env)
        assert result.returncode == 0, f"{env}: {result.stderr}"
        assert "not-a-real-one" not in result.stdout
        rows = [line for line in result.stdout.splitlines() if re.match(r"│ TICKLAKE_\w*PASSWORD +│", line)]
        assert len(rows) == 3 and all(re.search(r"│ \*\*\* +│ file\b", row) for row in rows), rows


def test_volumes_hold_the_nats_store_the_lake_and_the_captures() -> None:
    volumes = COMPOSE["volumes"].keys()

    def mounts(service: str) -> dict[str, str]:
        return dict(volume.split(":")[:2] for volume in SERVICES[service].get("volumes", []))

    assert mounts("nats")["natsdata"] == "/data"
    config = (ROOT / "infra/nats/nats-server.conf").read_text()
    assert 'store_dir: "/data"' in config
    lake = _environment(SERVICES["sink-parquet"])["TICKLAKE_LAKE"]
    for service in ("sink-parquet", "dagster-daemon", "dagster-webserver"):
        assert mounts(service)["lake"] == lake, service
    for name in SERVICES:
        if name.startswith("ingest-"):
            home = _environment(SERVICES[name])["TICKLAKE_HOME"]
            assert mounts(name)["captures"] == f"{home}/capture", name
            assert mounts(name)["spool"] == f"{home}/spool", name
    used = {volume.split(":")[0] for service in SERVICES.values() for volume in service.get("volumes", [])
            if not volume.startswith(".")}
    assert used <= volumes and {"natsdata", "lake", "captures", "pgdata"} <= used
    dockerfile = (DOCKER / "Dockerfile").read_text()
    for folder in ("/lake", "/var/lib/ticklake/capture", "/var/lib/ticklake/spool", "/var/lib/ticklake/dagster"):
        assert folder in dockerfile.split("install -d -o ticklake -g ticklake", 1)[1].split("\n#")[0], folder


def test_image_copies_every_package() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    for package in ("normalize", "ingest", "storage", "pipelines", "ticklake"):
        assert f"COPY {package} ./{package}" in dockerfile


async def _connects(url: str, **auth: str) -> bool:
    try:
        client = await nats.connect(url, allow_reconnect=False, connect_timeout=5, **auth)  # type: ignore[arg-type]
    except Exception:
        return False
    try:
        info = await client.jetstream().account_info()
        return info.limits.max_storage != 0
    finally:
        await client.close()


def test_nats_config_requires_the_password(tmp_path: Path) -> None:
    """The compose service's nats-server.conf, run by a real nats-server with the password in its
    environment as the entrypoint puts it there: the user with it gets JetStream, anyone else nothing.
    The service's GOMEMLIMIT is in that environment too: a value Go cannot parse stops the server."""
    server = shutil.which("nats-server", path=str(BIN)) or shutil.which("nats-server")
    assert server is not None
    port, monitor = free_port(), free_port()
    config = (ROOT / "infra/nats/nats-server.conf").read_text()
    assert 'store_dir: "/data"' in config
    (tmp_path / "nats.conf").write_text(config.replace('"/data"', f'"{tmp_path}/store"'))  # the volume's place
    process = subprocess.Popen([server, "-c", str(tmp_path / "nats.conf"), "-a", "127.0.0.1",
                                "-p", str(port), "-m", str(monitor)],
                               env={"NATS_PASSWORD": "not-this-one-in-production", **SERVICES["nats"]["environment"]},
                               stderr=subprocess.PIPE)
    try:
        url = f"nats://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not asyncio.run(_connects(url, user="ticklake", password="not-this-one-in-production")):
            assert process.poll() is None and time.monotonic() < deadline, "nats-server did not come up"
            time.sleep(0.2)
        assert not asyncio.run(_connects(url))
        assert not asyncio.run(_connects(url, user="ticklake", password="wrong"))
    finally:
        process.terminate()
        process.wait(10)


def test_roles_script_sets_scram_passwords(postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    """infra/docker/roles.sql as the `roles` service runs it (psql, the secret files read by psql):
    both roles get a scram-sha-256 verifier of the file's password, and no password is on psql's
    command line. The roles' passwords are cleared again after (the session's cluster is shared)."""
    secrets = {"pg_writer_password": "writer-secret-1", "pg_reader_password": "reader-secret-2"}
    for name, value in secrets.items():
        (tmp_path / name).write_text(value + "\n")
    script = (DOCKER / "roles.sql").read_text().replace("/run/secrets/", f"{tmp_path}/")
    (tmp_path / "roles.sql").write_text(script)
    argv = [str(find_bindir() / "psql"), "-v", "ON_ERROR_STOP=1", "-d", postgres.dsn, "-f", str(tmp_path / "roles.sql")]
    assert not any(value in " ".join(argv) for value in secrets.values())
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    try:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            rows = dict(conn.execute("SELECT rolname, rolpassword FROM pg_authid "
                                     "WHERE rolname IN ('ticklake_writer', 'ticklake_reader')").fetchall())
            assert set(rows) == {"ticklake_writer", "ticklake_reader"}
            for role, verifier in rows.items():
                assert verifier.startswith("SCRAM-SHA-256$4096:"), role
                assert not any(value in verifier for value in secrets.values())
    finally:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute("ALTER ROLE ticklake_writer PASSWORD NULL")
            conn.execute("ALTER ROLE ticklake_reader PASSWORD NULL")


@pytest.mark.parametrize("path", ["infra/docker/compose.yaml", "infra/nats/nats-server.conf",
                                  "infra/docker/roles.sql", "infra/prometheus/prometheus.yml"])
def test_no_secret_committed(path: str) -> None:
    """Nothing that looks like a password value or a key sits in the deployment files."""
    text = (ROOT / path).read_text()
    assert not re.search(r"(?i)password\s*[:=]\s*['\"]?(?!\$)[A-Za-z0-9+/]{8,}", text), path
    assert "PRIVATE KEY" not in text
