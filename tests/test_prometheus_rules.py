"""infra/prometheus: the alert rules pass their unit tests (`promtool test rules`, Debian's prometheus
package installed by infra/install.sh), every alert has a test that fires it and one that does not,
every ticklake metric a rule reads is one the code exports, and the scrape targets are the compose
file's processes on the ports they serve metrics on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import ingest.publisher
import storage.sink_consumer
from ticklake.metrics import DiskCollector, HandlerCollector, SealCollector

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "infra/prometheus"
RULES: list[dict[str, Any]] = [rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
                               for rule in group["rules"]]
NATS_EXPORTER = {"jetstream_consumer_num_pending", "jetstream_server_total_message_bytes",
                 "jetstream_server_max_storage"}
"""prometheus-nats-exporter's names (-jsz=all) that rules read: the store's use and a stopped sink's lag."""


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: infra/install.sh installs Debian's prometheus package"
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False, cwd=PROMETHEUS)


def test_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_config_and_rules_are_valid() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULES)} rules found" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    names = [rule["alert"] for rule in RULES]
    assert len(set(names)) == len(names)
    for name in names:
        assert any(case["alertname"] == name and case["exp_alerts"] for case in cases), f"{name}: never fires"
        assert any(case["alertname"] == name and not case["exp_alerts"] for case in cases), f"{name}: never quiet"
    assert {case["alertname"] for case in cases} <= set(names), "a test of an alert that does not exist"


def _exported() -> set[str]:
    """Every sample name the ticklake processes can expose, as Prometheus sees it (counters with _total,
    histograms as their buckets, count and sum)."""
    assert ingest.publisher.ENVELOPES and storage.sink_consumer.ROWS_WRITTEN  # their metrics are registered
    families = [*REGISTRY.collect(), *HandlerCollector(list).collect(), *DiskCollector({}).collect(),
                *SealCollector(str(ROOT / "no-lake-here")).collect()]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    return {family.name + suffix for family in families for suffix in suffixes.get(family.type, [""])}


def test_rules_read_metrics_that_exist() -> None:
    exported = _exported()
    assert "ticklake_handler_frames_total" in exported and "ticklake_sink_pending_messages" in exported
    used: set[str] = set()
    for rule in RULES:
        names = set(re.findall(r"\b((?:ticklake|jetstream)_[a-z0-9_]+)\b", rule["expr"]))
        assert names or "up{" in rule["expr"], rule["alert"]
        used |= names
        unknown = {name for name in names if name not in exported and name not in NATS_EXPORTER}
        assert not unknown, f"{rule['alert']}: {unknown} not exported"
    assert NATS_EXPORTER <= used


def test_every_rule_names_its_runbook_section() -> None:
    """Each alert points at the SLO or section of docs/alerting.md it guards, and that section exists."""
    text = (ROOT / "docs/alerting.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    for rule in RULES:
        path, anchor = rule["annotations"]["runbook"].split("#")
        assert path == "docs/alerting.md" and anchor in anchors, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["alert"] in text, f"{rule['alert']} is not described in docs/alerting.md"


def test_scrape_targets_are_the_compose_processes() -> None:
    """Every ticklake service of the compose file that serves metrics is scraped on its port, and
    nothing else is scraped under a ticklake job."""
    services = yaml.safe_load((ROOT / "infra/docker/compose.yaml").read_text())["services"]
    serving = {f"{name}:{service['command'][service['command'].index('--metrics-port') + 1]}"
               for name, service in services.items() if "--metrics-port" in service.get("command", [])}
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: {target for static in job["static_configs"] for target in static["targets"]}
            for job in config["scrape_configs"]}
    scraped = set().union(*(targets for job, targets in jobs.items() if job.startswith("ticklake-")))
    assert scraped == serving
    assert jobs["nats"] == {"nats-exporter:7777"} and "7777" in services["nats-exporter"]["command"]
    assert config["rule_files"] == ["alerts.yml"]
    mounts = services["prometheus"]["volumes"]
    assert "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
