"""Record keys over every real capture and fixture: two distinct venue events never share a key, two
handlers receiving the same events always produce the same keys, and the stores keep what the keys
tell apart (two liquidations of one message in one millisecond), or refuse loudly."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from pathlib import Path

import msgspec
import polars as pl
import pytest

from ingest.capture_formats import read_frames
from ingest.frames import Frame
from ingest.offline import normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.emitted import Emitted
from normalize.flags import TS_EVENT_IMPUTED
from normalize.records import RECORD_CLASSES, Liquidation, Record
from normalize.venues.bybit import Bybit
from pipelines.seal import SealError, seal_partition
from storage.lake_write import write_records
from storage.record_keys import OBSERVATIONS, key_collisions, key_names, keys_of
from tests import binance_spot_data, coinbase_data
from tests.captures import all_captures
from tests.pipelines_data import PARTS


def _frames(records: list[Record], record_type: str) -> pl.DataFrame:
    frame = pl.from_arrow(to_arrow([r for r in records if r.record_type == record_type]))
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.mark.parametrize(("venue", "paths"), all_captures(), ids=lambda v: v if isinstance(v, str) else v[0].name)
def test_no_two_distinct_events_share_a_key(venue: str, paths: list[Path]) -> None:
    out, _ = normalize_frames(venue, read_frames(paths))
    for record_type in {r.record_type for r in out.records} - set(OBSERVATIONS):
        collisions = key_collisions(_frames(out.records, record_type), record_type)
        assert collisions.is_empty(), f"{record_type}: {collisions.head(4).to_dicts()}"


def test_keys_hold_nothing_local_to_a_receiver() -> None:
    for record_type, cls in RECORD_CLASSES.items():
        if record_type not in OBSERVATIONS:
            assert not {"ts_recv", "connection_id"} & set(cls.key_columns), record_type
        assert "ts_event" in cls.key_columns, record_type  # TimescaleDB's partitioning column


RUNS = {**PARTS, "binance-spot-cryptofeed": ("binance-spot", binance_spot_data.CRYPTOFEED_RUN),
        "binance-spot-hftbacktest": ("binance-spot", [binance_spot_data.BTCUSDT_SESSION]),
        "coinbase": ("coinbase", coinbase_data.RUN)}
"""The pipelines' capture groups, and the venues' runs that are not in the pipelines' lake."""


@pytest.mark.parametrize(("venue", "paths"), list(RUNS.values()), ids=list(RUNS))
def test_two_handlers_give_the_same_events_the_same_keys(venue: str, paths: list[Path]) -> None:
    """A second handler receives every frame at another moment, on another connection: its keys are
    the first's, for every record whose time the venue gives (an imputed ts_event is the receiver's
    clock, so those records are each handler's own observation)."""
    frames = list(read_frames(paths))
    shifted = [Frame(f.ts_recv + random.Random(i).randrange(1, 10**9) if f.ts_recv else 0, f.kind, f.payload, f.url,
                     "other-host") for i, f in enumerate(frames)]
    first, _ = normalize_frames(venue, frames)
    second, _ = normalize_frames(venue, shifted)
    by_type: dict[str, list[pl.DataFrame]] = defaultdict(list)
    for out in (first, second):
        kept = [r for r in out.records if not r.flags & TS_EVENT_IMPUTED]
        for record_type in {r.record_type for r in kept} - set(OBSERVATIONS):
            by_type[record_type].append(keys_of(_frames(kept, record_type), record_type).unique())
    for record_type, (a, b) in by_type.items():
        names = key_names(record_type)
        assert a.sort(names, nulls_last=True).equals(b.sort(names, nulls_last=True)), record_type


ALL_LIQUIDATION = (b'{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":['
                   b'{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"},'
                   b'{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"},'
                   b'{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"300","p":"0.04499"}]}')
"""Bybit's allLiquidation in its documented shape: two liquidations identical in every field in one
message (the docs example's first entry, twice), and a third."""


def test_two_identical_liquidations_of_one_message_are_two_records(tmp_path: Path) -> None:
    out = Emitted()
    Bybit().on_ws(ALL_LIQUIDATION, 1, out)
    liquidations = [r for r in out.records if isinstance(r, Liquidation)]
    assert [(r.size, r.exch_seq) for r in liquidations] == [(20000.0, 0), (20000.0, 1), (300.0, 0)]
    # the seal keeps both, and so would a second handler's copy of the message (the same keys)
    again = Emitted()
    Bybit().on_ws(ALL_LIQUIDATION, 2, again)
    write_records(str(tmp_path), liquidations, "handler-a")
    write_records(str(tmp_path), again.records, "handler-b")
    day = dt.date(2025, 2, 14)
    result = seal_partition(str(tmp_path), "liquidation", "bybit", day)
    assert result is not None and (result.rows_before, result.rows_after) == (6, 3)


def test_the_seal_refuses_two_events_under_one_key(tmp_path: Path) -> None:
    """Rows with one key that disagree on a venue value are two events the key cannot tell apart:
    merging them would lose one, so the seal fails and leaves the partition as it was."""
    out = Emitted()
    Bybit().on_ws(ALL_LIQUIDATION, 1, out)
    first = next(r for r in out.records if isinstance(r, Liquidation))
    write_records(str(tmp_path), [first], "a")
    write_records(str(tmp_path), [msgspec.structs.replace(first, order_side=-first.order_side)], "b")
    with pytest.raises(SealError, match="1 keys are shared by rows that differ in venue values"):
        seal_partition(str(tmp_path), "liquidation", "bybit", dt.date(2025, 2, 14))
    folder = next(tmp_path.glob("liquidation/venue=bybit/date=*"))
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["a.parquet", "b.parquet"]
