"""The feed configuration file: each mistake one line naming the file, line, key, value and choices,
exit code 2 and no traceback; `instruments = "all"` read from a venue's instrument master."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_replay import TICKLAKE
from ticklake.feed_config import FeedConfigError, feed_symbols, load_feed_config
from ticklake.stack.ports import free_port, wait_listening

GOOD = """\
[supervisor]
health_port = 0

[capture]
keep_days = 3

[[feed]]
venue = "binance-usdm"
instruments = ["BTC-USDT-PERP", "ETHUSDT"]
channels = ["trades", "book"]
shards = 2
top_depth = 5

[[feed]]
name = "okx-all"
venue = "okx"
instruments = "all"
capture = false
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(text)
    return path


def test_a_good_file_reads_as_written(tmp_path: Path) -> None:
    config = load_feed_config(_write(tmp_path, GOOD))
    binance, okx = config.feed
    assert feed_symbols(binance) == ["BTCUSDT", "ETHUSDT"]
    assert binance.shards == 2 and binance.channels == ["trades", "book"] and binance.top_depth == 5
    assert not okx.capture and okx.label == "okx-all" and binance.label == "binance-usdm"
    assert config.capture.keep_days == 3 and config.named("okx-all") is okx


@pytest.mark.parametrize(("text", "error"), [
    (GOOD.replace('venue = "okx"', 'venue = "okz"'),
     "line 16: feed[2].venue: 'okz' is not a venue (known: binance-usdm,"),
    (GOOD.replace('"trades", "book"', '"trades", "bok"'),
     "line 10: feed[1].channels: binance-usdm has no route for channel 'bok'"),
    (GOOD.replace('"BTC-USDT-PERP"', '"BTC-USDT-20250328-60000-C"'),
     "line 9: feed[1].instruments: "),
    (GOOD.replace("shards = 2", "shards = 0"), "line 11: feed[1].shards = 0: Input should be greater than"),
    (GOOD.replace("top_depth = 5", "top_dept = 5"), "line 12: unknown key 'feed[1].top_dept'"),
    (GOOD.replace('instruments = "all"', 'instruments = "everything"'),
     "line 17: feed[2].instruments: 'everything': give a list of instruments or \"all\""),
    (GOOD.replace("keep_days = 3", "keep_days = -1"), "line 5: capture.keep_days = -1"),
    (GOOD.replace('name = "okx-all"\nvenue = "okx"', 'venue = "binance-usdm"'), "two feeds named 'binance-usdm'"),
    ("[[feed]\nvenue = 1", "not TOML"),
])
def test_each_mistake_is_one_line_with_its_place(tmp_path: Path, text: str, error: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(FeedConfigError) as caught:
        load_feed_config(path)
    assert error in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_cli_refuses_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('venue = "okx"', 'venue = "okz"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")} | {"TICKLAKE_HOME": str(tmp_path)}
    for command in (["ingest", "--config", str(path)], ["run", "--config", str(path)],
                    ["sink", "parquet", "--config", str(path)], ["schedule", "--config", str(path)],
                    ["capture", "prune", "--config", str(path)]):
        result = subprocess.run([TICKLAKE, *command], capture_output=True, text=True, env=env, timeout=60,
                                check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "line 16: feed[2].venue: 'okz' is not a venue" in result.stderr


def test_all_is_every_perpetual_the_venue_lists(tmp_path: Path) -> None:
    """A synthetic venue lists BTC, ETH and six more: "all" subscribes exactly those."""
    port = free_port()
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "8",
                               "--duration", "0", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert wait_listening(port, 20)
        path = _write(tmp_path, f'[[feed]]\nvenue = "binance-usdm"\ninstruments = "all"\n'
                                f'rest_url = "http://127.0.0.1:{port}"\n')
        symbols = feed_symbols(load_feed_config(path).feed[0])
    finally:
        server.terminate()
        server.wait(10)
    assert len(symbols) == 8 and {"BTCUSDT", "ETHUSDT", "S0001USDT"} <= set(symbols)
