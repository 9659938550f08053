"""The metrics the alert rules (infra/prometheus/alerts.yml) need beyond the counters each component
had: disk free per path, the day seal's state read from the lake's manifests, the journal's events
by venue and event, and the spool's size. Each is read from a real registry as Prometheus would."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.publisher import Batcher, Envelope, Spool
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import FeedStatus, Trade
from storage.parquet_files import filesystem_for
from storage.seal_manifest import COMMITTING, SEALED, SealManifest, write_manifest
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.cli_replay import TICKLAKE, replay_server_process
from ticklake.metrics import DiskCollector, SealCollector
from ticklake.stack.nats import EmbeddedNats
from ticklake.stack.ports import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample as Prometheus would read it from the exposition text."""
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_disk_free_per_role_measures_the_filesystem_of_each_path(tmp_path: Path) -> None:
    """A path not created yet is measured where it will be created; each role is its own series."""
    registry = CollectorRegistry()
    captures = tmp_path / "captures"
    captures.mkdir()
    registry.register(DiskCollector({"captures": captures, "lake": tmp_path / "not-yet" / "lake"}))
    samples = scrape(registry)
    usage = shutil.disk_usage(tmp_path)
    for role, path in (("captures", captures), ("lake", tmp_path / "not-yet" / "lake")):
        labels = (("path", str(path)), ("role", role))
        assert samples[("ticklake_disk_size_bytes", labels)] == usage.total
        free = samples[("ticklake_disk_free_bytes", labels)]
        assert 0 < free <= usage.total
        assert abs(free - usage.free) < 64 * 2**20  # the disk is shared with other work while the test runs


def _manifest(record_type: str, venue: str, day: str, state: str) -> SealManifest:
    return SealManifest(record_type, venue, day, state, 1, ["instrument", "ts_event"], [], [], 0, 0)


def day_of(samples: Samples, venue: str) -> float:
    return samples[("ticklake_lake_last_sealed_day_timestamp_seconds", (("record_type", "trade"), ("venue", venue)))]


def test_seal_state_is_the_newest_sealed_day_and_a_stuck_commit(tmp_path: Path) -> None:
    """okx trades: sealed on the 7th, the 8th stuck committing -> last sealed the 7th, committing 1;
    binance trades sealed through the 8th -> committing 0. A lake without seals yields no series."""
    filesystem, base = filesystem_for(str(tmp_path))
    for venue, day, state in [("okx", "2024-08-06", SEALED), ("okx", "2024-08-07", SEALED),
                              ("okx", "2024-08-08", COMMITTING), ("binance-usdm", "2024-08-08", SEALED),
                              ("binance-usdm", "2024-08-07", SEALED)]:
        write_manifest(filesystem, base, _manifest("trade", venue, day, state))
    registry = CollectorRegistry()
    registry.register(SealCollector(str(tmp_path)))
    samples = scrape(registry)

    def day(venue: str) -> float:
        return day_of(samples, venue)

    assert day("okx") == dt.datetime(2024, 8, 7, tzinfo=dt.UTC).timestamp()
    assert day("binance-usdm") == dt.datetime(2024, 8, 8, tzinfo=dt.UTC).timestamp()
    assert samples[("ticklake_lake_seal_committing", (("record_type", "trade"), ("venue", "okx")))] == 1
    assert samples[("ticklake_lake_seal_committing", (("record_type", "trade"), ("venue", "binance-usdm")))] == 0

    write_manifest(filesystem, base, _manifest("trade", "okx", "2024-08-08", SEALED))  # the stuck seal completes
    assert scrape(registry) == samples, "read again only after refresh_s"
    fresh = CollectorRegistry()
    fresh.register(SealCollector(str(tmp_path), refresh_s=0))
    assert scrape(fresh)[("ticklake_lake_seal_committing", (("record_type", "trade"), ("venue", "okx")))] == 0
    assert day_of(scrape(fresh), "okx") == dt.datetime(2024, 8, 8, tzinfo=dt.UTC).timestamp()

    empty = CollectorRegistry()
    empty.register(SealCollector(str(tmp_path / "no-lake")))
    assert not scrape(empty)


def _events(venue: str, event: str) -> float:
    return REGISTRY.get_sample_value("ticklake_feed_events_total", {"venue": venue, "event": event}) or 0.0


def test_journal_events_are_counted_by_venue_and_event() -> None:
    """Only feed_status envelopes are counted, each row once, when its envelope closes."""
    venue = f"metrics-test-{os.getpid()}"
    before_gap, before_resync = _events(venue, "gap"), _events(venue, "resync_start")
    gap = FeedStatus(venue, "BTCUSDT", "BTC-USDT-PERP", 1, 1, None, None, TS_EVENT_IMPUTED, "gap", "c1")
    resync = FeedStatus(venue, "BTCUSDT", "BTC-USDT-PERP", 2, 2, None, None, TS_EVENT_IMPUTED, "resync_start", "c1")
    trade = Trade(venue, "BTCUSDT", "BTC-USDT-PERP", 3, 3, None, None, 0, 1.0, 1.0, 1, "1")
    batcher = Batcher("ticks", max_records=500)
    assert batcher.add([gap, gap, resync, trade], now=0.0) == []
    assert _events(venue, "gap") == before_gap, "counted when the envelope closes, not before"
    assert len(batcher.drain()) == 2
    assert _events(venue, "gap") == before_gap + 2
    assert _events(venue, "resync_start") == before_resync + 1
    assert _events(venue, "trade") == 0


def test_spool_bytes_follow_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "ingest.spool")
    assert REGISTRY.get_sample_value("ticklake_publisher_spool_bytes") == 0
    spool.append(Envelope("ticks.trade.x.y", "id-1", b"x" * 1000, 1))
    spool.append(Envelope("ticks.trade.x.y", "id-2", b"y" * 1000, 1))
    assert REGISTRY.get_sample_value("ticklake_publisher_spool_bytes") == spool.path.stat().st_size > 2000
    reopened = Spool(spool.path)  # a restarted handler finds the spool it left
    assert reopened.depth == 2
    assert REGISTRY.get_sample_value("ticklake_publisher_spool_bytes") == spool.path.stat().st_size
    reopened.clear()
    assert REGISTRY.get_sample_value("ticklake_publisher_spool_bytes") == 0


def test_a_handler_process_serves_what_the_rules_read(tmp_path: Path, bus: EmbeddedNats) -> None:
    """`ticklake ingest --metrics-port` against the replay server, publishing to a real bus: while it
    runs, the scrape holds frames per venue, the journal's connect events, the spool (empty) and the
    disks of its captures and spool, each under the name and labels the alert rules use."""
    port = free_port()
    with replay_server_process("binance-usdm", CRYPTOFEED_RUN) as venue_port:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
        env |= {"TICKLAKE_HOME": str(tmp_path / "home"), "TICKLAKE_NATS_URL": bus.url}
        process = subprocess.Popen(
            [TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", ",".join(CRYPTOFEED_SYMBOLS),
             "--ws-url", f"ws://127.0.0.1:{venue_port}", "--rest-url", f"http://127.0.0.1:{venue_port}",
             "--duration", "20", "--metrics-port", str(port)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            deadline, samples = time.monotonic() + 30, {}
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                               for family in text_string_to_metric_families(text) for s in family.samples}
                    frames = sum(v for (name, _), v in samples.items() if name == "ticklake_handler_frames_total")
                    if frames and _sample(samples, "ticklake_feed_events_total", event="connect"):
                        break
                time.sleep(0.5)
        finally:
            process.terminate()
            process.wait(30)
    home = tmp_path / "home"
    assert sum(v for (name, labels), v in samples.items()
               if name == "ticklake_handler_frames_total" and ("venue", "binance-usdm") in labels) > 0
    assert _sample(samples, "ticklake_feed_events_total", event="connect", venue="binance-usdm") >= 1
    assert _sample(samples, "ticklake_publisher_spool_bytes") == 0
    assert _sample(samples, "ticklake_disk_free_bytes", role="captures", path=str(home / "capture")) > 0
    assert _sample(samples, "ticklake_disk_free_bytes", role="spool", path=str(home / "spool")) > 0


def _sample(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))
