"""Security for a real deployment (docs/security.md), run as a user would.

The whole path with authentication on: a nats-server requiring a user, a password and TLS with client
certificates (a CA the test makes itself, tests/tls_data.py), a PostgreSQL cluster with scram-sha-256
logins only; a handler against the replay server, both sinks and the query API as processes and calls
configured only by TICKLAKE_* settings (passwords in files). Every trade lands once in each store, the
query API reads as the read-only role, which cannot write; a client without credentials, with a wrong
password or without the CA is refused with one line and no traceback; no password appears in any output.

Then the embedded stack's secure mode (`ticklake up --secure`): generated secrets in 0600 files, a
pg_hba.conf without trust, every command working through it, a restart, and clients without its
secrets refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.records import Trade
from storage.migrate import migrate
from storage.pg_auth import READER, WRITER, scram_verifier, with_password
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.tls_data import Pki, make_pki
from ticklake.bus_auth import BusAuthError
from ticklake.bus_auth import connect as bus_connect
from ticklake.settings import Settings, SettingsError, mask_url
from ticklake.stack.nats import EmbeddedNats, NatsServerAuth
from ticklake.stack.ports import free_port, wait_listening
from ticklake.stack.postgres import EmbeddedPostgres, PostgresAuth

TICKLAKE = str(Path(sys.executable).with_name("ticklake"))
NATS_USER = "ticklake-handlers"
PASSWORDS = {"nats": "n4ts-pw-Qx7", "admin": "adm1n-pw-Zr2", WRITER: "wr1ter-pw-Kp9", READER: "re4der-pw-Hm3"}
"""Distinct and recognisable, so a test can look for each in every output."""


def _scratch_dir(prefix: str) -> Path:
    """Under /tmp, reachable by the postgres system user when we run as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    return path


def _clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(settings)
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TICKLAKE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _flat(table: str) -> str:
    """A rich table's text without its borders and whitespace, so a value it folded reads whole."""
    return "".join(char for char in table if char not in "│┃ \n")


def _no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets or PASSWORDS.values():
        assert secret not in text, f"a password in the output: {text[:2000]}"


def _one_line_refusal(result: subprocess.CompletedProcess[str], expected: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("ticklake: ") and expected in lines[0], lines[0]
    _no_secrets(result.stdout + result.stderr)
    return lines[0]


@dataclass(frozen=True)
class SecureServers:
    root: Path
    pki: Pki
    nats: EmbeddedNats
    postgres: EmbeddedPostgres
    secrets: Path

    def env(self, home: Path, **overrides: str) -> dict[str, str]:
        """Every setting a client needs, passwords in files; an override of "" drops that setting."""
        settings = {
            "TICKLAKE_HOME": str(home), "TICKLAKE_LAKE": str(home / "lake"),
            "TICKLAKE_NATS_URL": self.nats.url, "TICKLAKE_NATS_USER": NATS_USER,
            "TICKLAKE_NATS_PASSWORD_FILE": str(self.secrets / "nats"),
            "TICKLAKE_NATS_TLS_CA": str(self.pki.ca), "TICKLAKE_NATS_TLS_CERT": str(self.pki.client_cert),
            "TICKLAKE_NATS_TLS_KEY": str(self.pki.client_key),
            "TICKLAKE_PG_DSN": self.postgres.role_dsn(WRITER),
            "TICKLAKE_PG_PASSWORD_FILE": str(self.secrets / WRITER),
            "TICKLAKE_PG_READER_DSN": self.postgres.role_dsn(READER),
            "TICKLAKE_PG_READER_PASSWORD_FILE": str(self.secrets / READER),
        }
        settings.update(overrides)
        return _clean_env(**{k: v for k, v in settings.items() if v})

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "nats_url": self.nats.url, "nats_user": NATS_USER, "nats_password_file": self.secrets / "nats",
            "nats_tls_ca": self.pki.ca, "nats_tls_cert": self.pki.client_cert, "nats_tls_key": self.pki.client_key}
        values.update(overrides)
        return Settings.model_validate({k: v for k, v in values.items() if v is not None})


@pytest.fixture(scope="module")
def servers() -> Iterator[SecureServers]:
    root = _scratch_dir("ticklake-test-secure-")
    pki = make_pki(root / "pki")
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    for name, password in PASSWORDS.items():
        (secrets / name).write_text(password + "\n")
        (secrets / name).chmod(0o600)
    nats = EmbeddedNats(root / "nats", free_port(), NatsServerAuth(NATS_USER, PASSWORDS["nats"], pki.server_cert,
                                                                     pki.server_key, client_ca=pki.ca))
    postgres = EmbeddedPostgres(root / "pg", free_port(), PostgresAuth(
        PASSWORDS["admin"], {WRITER: PASSWORDS[WRITER], READER: PASSWORDS[READER]}))
    nats.start()
    postgres.start()
    try:
        migrate(with_password(postgres.dsn, PASSWORDS["admin"]))  # the tables' owner migrates
        yield SecureServers(root, pki, nats, postgres, secrets)
    finally:
        postgres.stop()
        nats.stop()
        shutil.rmtree(root, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def test_the_whole_path_with_authentication_on(servers: SecureServers, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = servers.env(tmp_path / "home")
    status = _run(env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "JetStream on, TLS and authenticated" in status.stdout
    assert "reader    healthy" in status.stdout
    config = _run(env, "config")
    assert config.returncode == 0 and "ticklake_writer:***@" in _flat(config.stdout)
    assert "TICKLAKE_NATS_PASSWORD***file" in _flat(config.stdout)
    _no_secrets(status.stdout + status.stderr + config.stdout + config.stderr)

    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    replay = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", *map(str, CRYPTOFEED_RUN), "--port",
                               str(port), "--speed", "20"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    sinks = {kind: subprocess.Popen([TICKLAKE, "sink", kind, *(["--flush-age", "1"] if kind == "parquet" else [])],
                                    env=env, stdout=(logs / f"{kind}.log").open("wb"), stderr=subprocess.STDOUT)
             for kind in ("timescale", "parquet")}
    try:
        assert wait_listening(port, 20)
        ingest = _run(env, "ingest", "--venue", "binance-usdm", "--symbols", ",".join(CRYPTOFEED_SYMBOLS),
                      "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
                      "--duration", "5", timeout=180)
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        offline, _ = normalize_frames("binance-usdm", read_frames(CRYPTOFEED_RUN))
        expected = sorted(r.trade_id for r in offline.records if isinstance(r, Trade))
        deadline = time.monotonic() + 60
        with psycopg.connect(with_password(servers.postgres.role_dsn(WRITER), PASSWORDS[WRITER])) as conn:
            while time.monotonic() < deadline:
                count = conn.execute("SELECT count(*) FROM trade").fetchone()
                if count and count[0] >= len(expected):
                    break
                time.sleep(0.3)
        time.sleep(2)  # the lake sink flushes every second
    finally:
        codes = {kind: _stop(process) for kind, process in sinks.items()}
        replay.terminate()
        replay.wait(10)
    outputs = ingest.stdout + ingest.stderr + "".join((logs / f"{kind}.log").read_text() for kind in sinks)
    assert codes == {"timescale": 0, "parquet": 0}, outputs
    assert "Traceback" not in outputs
    _no_secrets(outputs)

    with psycopg.connect(with_password(servers.postgres.role_dsn(WRITER), PASSWORDS[WRITER])) as conn:
        stored = sorted(row[0] for row in conn.execute("SELECT trade_id FROM trade WHERE venue = 'binance-usdm'"))
    assert stored == expected, "trades missing or twice in TimescaleDB"
    import polars as pl

    lake = pl.read_parquet(f"{tmp_path / 'home' / 'lake'}/trade/**/*.parquet", hive_partitioning=False)
    assert sorted(lake["trade_id"]) == expected, "trades missing or twice in the lake"

    # the query API, configured by the same settings, reads as the read-only role
    for name, value in env.items():
        if name.startswith("TICKLAKE_"):
            monkeypatch.setenv(name, value)
    from ticklake import query

    with query.connect(strict=True) as q:
        trades = q.trades("binance-usdm")
        assert sorted(trades["trade_id"]) == expected
        database = q._database()
        assert database is not None
        assert database.execute("SELECT current_user").fetchone() == (READER,)

    # the reader cannot write, even in a read-write transaction
    with psycopg.connect(with_password(servers.postgres.role_dsn(READER), PASSWORDS[READER])) as conn:
        conn.execute("BEGIN READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM trade")


@pytest.mark.parametrize(
    ("case", "overrides", "command", "expected"),
    [
        ("no credentials", {"TICKLAKE_NATS_USER": "", "TICKLAKE_NATS_PASSWORD_FILE": ""},
         ["ingest", "--venue", "okx", "--symbols", "BTC-USDT-PERP", "--ws-url", "ws://127.0.0.1:9", "--rest-url",
          "http://127.0.0.1:9", "--no-capture"], "requires authentication"),
        ("wrong password", {"TICKLAKE_NATS_PASSWORD_FILE": "WRONG"}, ["sink", "parquet"], "refused user"),
        ("no CA", {"TICKLAKE_NATS_TLS_CA": ""}, ["sink", "timescale"], "cannot verify the TLS certificate"),
        ("no database password", {"TICKLAKE_PG_PASSWORD_FILE": ""}, ["db", "migrate"], "no password supplied"),
        ("wrong database password", {"TICKLAKE_PG_PASSWORD_FILE": "WRONG"}, ["sink", "timescale"],
         "password authentication failed"),
    ],
)
def test_a_client_without_the_right_credentials_is_refused_in_one_line(
        servers: SecureServers, tmp_path: Path, case: str, overrides: dict[str, str], command: list[str],
        expected: str) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    overrides = {k: str(wrong) if v == "WRONG" else v for k, v in overrides.items()}
    line = _one_line_refusal(_run(servers.env(tmp_path / "home", **overrides), *command, timeout=60), expected)
    assert "tls://127.0.0.1" in line or "postgresql://" in line  # says which server refused


def test_bus_refusals_in_process(servers: SecureServers, tmp_path: Path) -> None:
    """What the CLI cases cannot reach: the client certificate, a CA that signed something else, a
    server that offers no TLS when TLS is configured; and a good connection."""

    async def attempt(settings: Settings, url: str | None = None) -> str:
        try:
            client = await bus_connect(url or servers.nats.url, settings, connect_timeout=3, allow_reconnect=False,
                                       max_reconnect_attempts=0)
        except BusAuthError as exc:
            return f"refused: {exc}"
        await client.close()
        return "connected"

    assert asyncio.run(attempt(servers.settings())) == "connected"
    no_client_cert = asyncio.run(attempt(servers.settings(nats_tls_cert=None, nats_tls_key=None)))
    assert no_client_cert.startswith("refused: TLS with the bus") and "client certificate" in no_client_cert
    other_ca = asyncio.run(attempt(servers.settings(nats_tls_ca=servers.pki.other_ca)))
    assert other_ca.startswith("refused: cannot verify the TLS certificate")
    plain = EmbeddedNats(tmp_path / "plain", free_port())
    plain.start()
    try:
        cleartext = asyncio.run(attempt(servers.settings(nats_url=plain.url), plain.url))
    finally:
        plain.stop()
    assert cleartext.startswith("refused: the bus at nats://127.0.0.1") and "did not use TLS" in cleartext
    assert "without TICKLAKE_NATS_USER" in asyncio.run(attempt(servers.settings(nats_user=None)))


def test_password_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TICKLAKE_NATS_PASSWORD or TICKLAKE_NATS_PASSWORD_FILE, not both"):
        Settings(nats_password=SecretStr("a"), nats_password_file=tmp_path / "f")
    with pytest.raises(ValueError, match="TICKLAKE_NATS_TLS_CERT and TICKLAKE_NATS_TLS_KEY together"):
        Settings(nats_tls_cert=tmp_path / "c")
    settings = Settings(pg_password_file=tmp_path / "missing")
    with pytest.raises(SettingsError, match=r"cannot read TICKLAKE_PG_PASSWORD_FILE .*missing"):
        settings.secret("pg_password")
    (tmp_path / "pw").write_text("s3cret pass\nignored\n")
    settings = Settings(pg_password_file=tmp_path / "pw", nats_password=SecretStr("n"))
    assert settings.secret("pg_password") == "s3cret pass" and settings.secret("nats_password") == "n"
    assert "s3cret" not in repr(settings) and "'n'" not in repr(settings)

    url = with_password("postgresql://w@db:5432/ticklake", "p@ss:/w rd")
    assert url.startswith("postgresql://w:p%40ss%3A%2Fw%20rd@db:5432/") and "p%40ss" not in mask_url(url)
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "p@ss:/w rd"
    keywords = with_password("host=db user=w dbname=ticklake", "s3cret")
    assert psycopg.conninfo.conninfo_to_dict(keywords)["password"] == "s3cret" and "s3cret" not in mask_url(keywords)
    with pytest.raises(SettingsError, match="holds a password and TICKLAKE_PG_PASSWORD"):
        with_password("postgresql://w:x@db/ticklake", "y")
    assert scram_verifier("pw", salt=b"0" * 16).startswith("SCRAM-SHA-256$4096:MDAwMDAwMDAwMDAwMDAwMA==$")


@pytest.fixture
def home() -> Iterator[Path]:
    path = _scratch_dir("ticklake-cli-secure-")
    yield path
    _run(_clean_env(TICKLAKE_HOME=str(path)), "down", "--purge")
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_stack_secure_mode(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _clean_env(TICKLAKE_HOME=str(home))
    up = _run(env, "up", "--secure")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "TLS and authenticated" in up.stdout and "reader    healthy" in up.stdout

    secrets = home / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    files = sorted(p.relative_to(secrets).as_posix() for p in secrets.rglob("*") if p.is_file())
    assert files == ["nats-client.json", "nats.password", "pg-admin.pgpass", "pg-reader.pgpass", "pg-writer.pgpass",
                     "tls/ca.pem", "tls/server-key.pem", "tls/server.pem"]
    for name in files:
        if name != "nats-client.json":
            assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600, name
    passwords = [(secrets / "nats.password").read_text().strip()] + [
        (secrets / f"pg-{role}.pgpass").read_text().strip().rsplit(":", 1)[1] for role in ("admin", "writer", "reader")]
    assert len(set(passwords)) == 4 and all(len(p) >= 32 for p in passwords)

    import json

    data_dir = Path(json.loads((home / "stack.json").read_text())["postgres"]["data_dir"])
    rules = [line.split() for line in (data_dir / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)

    migrate_result = _run(env, "db", "migrate")
    assert migrate_result.returncode == 0 and "applied 0001_contract_tables" in migrate_result.stdout
    check = _run(env, "selfcheck")
    assert check.returncode == 0 and "selfcheck passed" in check.stdout, check.stdout + check.stderr
    config = _run(env, "config")
    assert config.returncode == 0 and "pg-writer.pgpass" in _flat(config.stdout) and "tls://127.0.0.1" in config.stdout
    for result in (up, migrate_result, check, config):
        _no_secrets(result.stdout + result.stderr, *passwords)

    # the query API reads as the embedded reader, through its password file
    monkeypatch.setenv("TICKLAKE_HOME", str(home))
    from ticklake import query

    with query.connect(strict=True) as q:
        assert q.trades("binance-usdm").height == 0
        database = q._database()
        assert database is not None and database.execute("SELECT current_user").fetchone() == (READER,)

    # without the stack's secrets (another home naming its servers) a client is refused
    state = json.loads((home / "stack.json").read_text())
    stranger = _clean_env(TICKLAKE_HOME=str(home / "elsewhere"),
                          TICKLAKE_NATS_URL=f"tls://127.0.0.1:{state['nats']['port']}",
                          TICKLAKE_PG_DSN=f"postgresql://ticklake_writer@127.0.0.1:{state['postgres']['port']}/ticklake")
    status = _run(stranger, "status")
    assert status.returncode == 1 and "no password supplied" in status.stdout
    assert "cannot verify the TLS certificate" in status.stdout and "Traceback" not in status.stdout + status.stderr

    again = _run(env, "up")  # still secure, and the running servers keep their passwords
    assert again.returncode == 0 and "TLS and authenticated" in again.stdout, again.stdout + again.stderr
    assert _run(env, "down").returncode == 0
    restarted = _run(env, "up")
    assert restarted.returncode == 0 and "TLS and authenticated" in restarted.stdout
    assert "schema at migration" in restarted.stdout
