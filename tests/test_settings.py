"""Settings: environment, TOML file, unknown keys rejected by name, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ticklake.settings import SettingsError, load_settings, mask_url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TICKLAKE_PG_DSN", "TICKLAKE_NATS_URL", "TICKLAKE_LAKE", "TICKLAKE_HOME", "TICKLAKE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.home == Path(".ticklake")
    assert settings.pg_dsn is None and settings.nats_url is None
    assert settings.lake_root == ".ticklake/lake"


def test_toml_file_then_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ticklake.toml").write_text('lake = "s3://bucket/lake"\nnats_url = "nats://a:4222"\n')
    assert load_settings().lake_root == "s3://bucket/lake"
    monkeypatch.setenv("TICKLAKE_NATS_URL", "nats://b:4222")
    assert load_settings().nats_url == "nats://b:4222"


def test_config_path_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('home = "/srv/ticklake"\n')
    monkeypatch.setenv("TICKLAKE_CONFIG", str(other))
    assert load_settings().home == Path("/srv/ticklake")


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "ticklake.toml").write_text('pg_dns = "postgresql://x"\n')
    with pytest.raises(SettingsError, match="unknown setting 'pg_dns'"):
        load_settings()


def test_unknown_environment_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKLAKE_NATS_ULR", "nats://x")
    with pytest.raises(SettingsError, match="TICKLAKE_NATS_ULR"):
        load_settings()


@pytest.mark.parametrize("name", ["TICKLAKE_LOG_JSON", "TICKLAKE_TIMESCALE_SUITE"])
def test_variables_that_are_not_settings_are_not_rejected(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """TICKLAKE_LOG_JSON=1 is how the logs are asked for as JSON (ticklake/logs.py); it was refused as an
    unknown setting by every command."""
    monkeypatch.setenv(name, "1")
    assert load_settings().home == Path(".ticklake")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://writer:s3cret@db:5432/ticklake", "postgresql://writer:***@db:5432/ticklake"),
        ("nats://user:pw@127.0.0.1:4222", "nats://user:***@127.0.0.1:4222"),
        ("postgresql://writer@db/ticklake", "postgresql://writer@db/ticklake"),
        ("host=db user=writer password=s3cret dbname=ticklake", "host=db user=writer password=*** dbname=ticklake"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert sorted(mask_url(url).split()) == sorted(masked.split())
    assert "s3cret" not in mask_url(url)


@pytest.mark.parametrize("limit", ["512MiB", "2GiB", "805306368"])
def test_nats_memory_limit_takes_what_go_reads(monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    monkeypatch.setenv("TICKLAKE_NATS_MEMORY_LIMIT", limit)
    assert load_settings().nats_memory_limit == limit


@pytest.mark.parametrize("limit", ["512MB", "1.5GiB", "512 MiB", "lots"])
def test_nats_memory_limit_go_would_ignore_is_refused(monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    """Each of these stops nats-server at start ("fatal error: malformed GOMEMLIMIT", seen with the wheel's
    2.15.1), which `ticklake up` would only report as a server that never listened."""
    monkeypatch.setenv("TICKLAKE_NATS_MEMORY_LIMIT", limit)
    with pytest.raises(SettingsError, match=f"nats_memory_limit': not a Go memory limit like 768MiB .*'{limit}'"):
        load_settings()
