"""Sharding symbols across processes: disjoint, covering, the same on every host."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.sharding import ShardError, parse_shard, select, shard_of
from ticklake.ingest_run import Feed, plan_feeds

symbols = st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=12), unique=True)


@given(symbols, st.integers(min_value=1, max_value=16))
def test_shards_are_disjoint_and_cover_the_list(names: list[str], count: int) -> None:
    shards = [select(names, (index, count)) for index in range(count)]
    assert sorted(s for shard in shards for s in shard) == sorted(names)
    assert sum(map(len, shards)) == len(names)


def test_shard_is_a_stable_hash_not_pythons_salted_one() -> None:
    # CRC-32 of b"BTCUSDT" is 2895029187 in every process on every host
    assert shard_of("BTCUSDT", 1_000_000_007) == 2895029187 % 1_000_000_007
    assert shard_of("btcusdt", 7) == shard_of("BTCUSDT", 7)


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(text)


def test_feeds_pair_venues_with_symbols_and_label_repeats() -> None:
    feeds = plan_feeds(["binance-usdm", "binance-usdm"], [["BTCUSDT"], ["ETHUSDT", "SOLUSDT"]], None)
    assert feeds == [Feed("binance-usdm", ("BTCUSDT",), "feed0"), Feed("binance-usdm", ("ETHUSDT", "SOLUSDT"), "feed1")]
    sharded = plan_feeds(["binance-usdm"], [["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]], (1, 2))
    assert [f.label for f in sharded] == ["shard1of2"]
    assert sharded[0].symbols == tuple(select(["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"], (1, 2)))
