"""The day seal compacts a partition exactly: every record once, in lake order, nothing lost, and a
crash at any moment leaves a lake without duplicates that the next run completes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal as _assert_frame_equal

from normalize.records import RECORD_CLASSES
from pipelines.seal import SealError, seal_day, seal_partition
from storage.lake_write import write_records
from storage.record_keys import key_names, keys_of
from storage.seal_manifest import read_manifest
from tests.pipelines_chunked_data import build_chunked_lake, part_records, truth

ORDER = ["instrument", "ts_event", "ts_recv"]


def assert_frame_equal(left: pl.DataFrame, right: pl.DataFrame) -> None:
    """Equal to the last bit: the seal copies values, it computes none."""
    _assert_frame_equal(left, right, check_exact=True)
BTC_DAY = dt.date(2024, 8, 8)
CF_DAY = dt.date(2021, 7, 22)
BINANCE = "binance-usdm"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chunked_lake(tmp_path_factory.mktemp("chunked-lake"))


@pytest.fixture
def lake(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    shutil.copytree(pristine, root)
    return root


def _folder(root: Path, record_type: str, venue: str, day: dt.date) -> Path:
    return root / record_type / f"venue={venue}" / f"date={day}"


def _read(root: Path, record_type: str, venue: str, day: dt.date) -> pl.DataFrame:
    """The partition as a glob reader sees it (files in name order)."""
    files = sorted(_folder(root, record_type, venue, day).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def _expected(record_type: str, venue: str, day: dt.date) -> pl.DataFrame:
    """Each normalized record once, in lake order: the partition's rows by (instrument, ts_event,
    ts_recv), keeping the emission order inside a tie (a book message's levels, LAST at the end)."""
    rows = truth(record_type).filter((pl.col("venue") == venue) & (pl.col("date") == day)).drop("date")
    return rows.sort(ORDER, maintain_order=True)


def _partitions(root: Path) -> list[tuple[str, str, dt.date]]:
    return sorted({(p.parts[-3], p.parts[-2].removeprefix("venue="), dt.date.fromisoformat(p.parts[-1][5:]))
                   for p in root.glob("*/venue=*/date=*") if p.parts[-3] in RECORD_CLASSES})


def test_every_partition_is_sealed_exactly(lake: Path) -> None:
    partitions = [p for p in _partitions(lake) if p[2] >= dt.date(2021, 7, 1)]
    assert len(partitions) > 20
    for record_type, venue, day in partitions:
        before = _read(lake, record_type, venue, day)
        result = seal_partition(str(lake), record_type, venue, day)
        assert result is not None and not result.skipped
        after = _read(lake, record_type, venue, day)
        expected = _expected(record_type, venue, day)
        # the key set is exactly the distinct keys found before, each once
        keys = key_names(record_type)
        assert keys_of(after, record_type).is_duplicated().sum() == 0
        assert_frame_equal(keys_of(after, record_type).sort(keys), keys_of(before, record_type).unique().sort(keys))
        # and every row is the normalized record, in lake order
        assert_frame_equal(after, expected)
        assert (result.rows_before, result.rows_after) == (before.height, expected.height)
        names = sorted(p.name for p in _folder(lake, record_type, venue, day).iterdir())
        assert names == ["sealed-g0001-00000.parquet"]
        manifest = read_manifest(*_local(lake), record_type, venue, day)
        assert manifest is not None and manifest.state == "sealed" and manifest.rows == expected.height
        assert [f.name for f in manifest.outputs] == names


def _local(root: Path) -> tuple[object, str]:
    from pyarrow import fs
    return fs.LocalFileSystem(), str(root)


def test_the_chunked_lake_really_holds_duplicates(pristine: Path) -> None:
    before = _read(pristine, "book_delta", BINANCE, BTC_DAY)
    assert len(list(_folder(pristine, "book_delta", BINANCE, BTC_DAY).glob("*.parquet"))) == 4
    assert before.height - keys_of(before, "book_delta").n_unique() > 50_000


def test_book_messages_keep_their_last_row(lake: Path) -> None:
    seal_partition(str(lake), "book_delta", BINANCE, BTC_DAY)
    rows = _read(lake, "book_delta", BINANCE, BTC_DAY)
    message = ["instrument", "ts_event", "ts_recv", "exch_seq"]
    ends = rows.with_columns(pl.struct(message).ne(pl.struct(message).shift(-1)).fill_null(True).alias("end"))
    assert ends.filter(pl.col("end")).height > 1000
    assert ((ends["flags"] & 2) == 2).to_list() == ends["end"].to_list()


def test_file_size_limits_and_instrument_batches(lake: Path) -> None:
    result = seal_partition(str(lake), "book_delta", BINANCE, BTC_DAY, max_file_rows=100_000,
                            row_group_rows=32_768, batch_rows=50_000)
    assert result is not None and result.rows_after == 287_109
    assert result.batches == 9  # one instrument of 422,312 input rows, cut into ts_event ranges of ~50,000
    files = sorted(_folder(lake, "book_delta", BINANCE, BTC_DAY).glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files] == [100_000, 100_000, 87_109]
    footer = pq.read_metadata(files[0])
    groups = [footer.row_group(i).num_rows for i in range(footer.num_row_groups)]
    assert groups == [32_768, 32_768, 32_768, 1_696]
    assert_frame_equal(_read(lake, "book_delta", BINANCE, BTC_DAY), _expected("book_delta", BINANCE, BTC_DAY))
    # four instruments on the 2021 day, batched one or two at a time
    result = seal_partition(str(lake), "book_delta", BINANCE, CF_DAY, batch_rows=3_000, max_file_rows=5_000)
    assert result is not None and result.batches > 4
    assert_frame_equal(_read(lake, "book_delta", BINANCE, CF_DAY), _expected("book_delta", BINANCE, CF_DAY))
    assert len(list(_folder(lake, "book_delta", BINANCE, CF_DAY).glob("*.parquet"))) == 3


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_second_seal_changes_nothing_and_late_files_make_a_new_generation(lake: Path) -> None:
    folder = _folder(lake, "trade", BINANCE, BTC_DAY)
    first = seal_day(str(lake), BTC_DAY)
    state = _digest(folder)
    manifest = (lake / "_manifests/seals/trade" / BINANCE / f"{BTC_DAY}.json").read_text()
    again = seal_day(str(lake), BTC_DAY)
    assert [r.skipped for r in again] == [True] * len(first)
    assert _digest(folder) == state
    assert (lake / "_manifests/seals/trade" / BINANCE / f"{BTC_DAY}.json").read_text() == manifest
    # a late re-delivery arrives after the seal: merged into generation 2, still every trade once
    trades = [r for r in part_records("binance-hftbacktest") if r.record_type == "trade"]
    write_records(str(lake), trades[:500], "late")
    result = seal_partition(str(lake), "trade", BINANCE, BTC_DAY)
    assert result is not None and (result.generation, result.rows_before, result.rows_after) == (2, 21_813, 21_313)
    assert sorted(p.name for p in folder.iterdir()) == ["sealed-g0002-00000.parquet"]
    assert_frame_equal(_read(lake, "trade", BINANCE, BTC_DAY), _expected("trade", BINANCE, BTC_DAY))


def test_open_day_is_refused(lake: Path) -> None:
    with pytest.raises(SealError, match="not a closed UTC day"):
        seal_day(str(lake), BTC_DAY, today=BTC_DAY)


def test_uncommitted_sink_files_are_left_to_the_sink(lake: Path) -> None:
    trades = [r for r in part_records("binance-hftbacktest") if r.record_type == "trade"]
    extra = trades[:10]
    write_records(str(lake), extra, "parquet-000000000010-000000000020")
    manifests = lake / "_manifests"
    manifests.mkdir()
    (manifests / "parquet.json").write_text(json.dumps({"consumer": "parquet", "last_seq": 9}))
    seal_partition(str(lake), "trade", BINANCE, BTC_DAY)
    folder = _folder(lake, "trade", BINANCE, BTC_DAY)
    assert sorted(p.name for p in folder.iterdir()) == ["parquet-000000000010-000000000020.parquet",
                                                        "sealed-g0001-00000.parquet"]
    # once the sink's manifest covers the file, the next seal takes it (its rows are duplicates here)
    (manifests / "parquet.json").write_text(json.dumps({"consumer": "parquet", "last_seq": 20}))
    result = seal_partition(str(lake), "trade", BINANCE, BTC_DAY)
    assert result is not None and (result.files_before, result.rows_after) == (2, 21_313)
    assert sorted(p.name for p in folder.iterdir()) == ["sealed-g0002-00000.parquet"]


def test_roll_forward_after_a_crash_inside_the_commit(lake: Path, tmp_path: Path) -> None:
    """Rebuild the state a crash leaves in the middle of step 3: manifest `committing`, one input
    hidden, the outputs still `.tmp`. Readers see no duplicates; the next run finishes the seal."""
    folder = _folder(lake, "bbo", BINANCE, BTC_DAY)
    reference = tmp_path / "reference"
    shutil.copytree(lake, reference)
    seal_partition(str(reference), "bbo", BINANCE, BTC_DAY)
    inputs = sorted(p.name for p in folder.iterdir())
    sealed_manifest = reference / "_manifests/seals/bbo" / BINANCE / f"{BTC_DAY}.json"
    committing = json.loads(sealed_manifest.read_text()) | {"state": "committing"}
    target = lake / "_manifests/seals/bbo" / BINANCE / f"{BTC_DAY}.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(committing))
    shutil.copy(_folder(reference, "bbo", BINANCE, BTC_DAY) / "sealed-g0001-00000.parquet",
                folder / "sealed-g0001-00000.parquet.tmp")
    (folder / inputs[0]).rename(folder / f"{inputs[0]}.replaced")
    assert sorted(p.name for p in folder.glob("*.parquet")) == inputs[1:]  # never old and new together
    result = seal_partition(str(lake), "bbo", BINANCE, BTC_DAY)
    assert result is not None and result.skipped
    assert sorted(p.name for p in folder.iterdir()) == ["sealed-g0001-00000.parquet"]
    assert_frame_equal(_read(lake, "bbo", BINANCE, BTC_DAY), _expected("bbo", BINANCE, BTC_DAY))
    assert json.loads(target.read_text())["state"] == "sealed"


def test_outputs_of_a_seal_that_died_before_its_manifest_are_discarded(lake: Path) -> None:
    folder = _folder(lake, "trade", BINANCE, BTC_DAY)
    (folder / "sealed-g0001-00000.parquet.tmp").write_bytes(b"half a file")
    result = seal_partition(str(lake), "trade", BINANCE, BTC_DAY)
    assert result is not None and result.generation == 1
    assert sorted(p.name for p in folder.iterdir()) == ["sealed-g0001-00000.parquet"]
    assert_frame_equal(_read(lake, "trade", BINANCE, BTC_DAY), _expected("trade", BINANCE, BTC_DAY))


_SEAL_SCRIPT = """
import datetime as dt, sys
from pipelines.seal import seal_partition
print("ready", flush=True)
seal_partition(sys.argv[1], "book_delta", "binance-usdm", dt.date(2024, 8, 8), max_file_rows=50_000,
               row_group_rows=16_384)
print("done", flush=True)
"""


@pytest.mark.parametrize("delay_s", [0.05, 0.4, 0.8, 1.2, 1.6])
def test_kill_9_during_a_seal_leaves_no_duplicates_and_the_next_run_completes(lake: Path, delay_s: float) -> None:
    process = subprocess.Popen([sys.executable, "-c", _SEAL_SCRIPT, str(lake)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    folder = _folder(lake, "book_delta", BINANCE, BTC_DAY)
    visible = sorted(p.name for p in folder.glob("*.parquet"))
    sealed = [name for name in visible if name.startswith("sealed-")]
    assert not sealed or sealed == visible, visible  # the inputs or the outputs, never both
    if sealed:
        assert keys_of(_read(lake, "book_delta", BINANCE, BTC_DAY), "book_delta").is_duplicated().sum() == 0
    result = seal_partition(str(lake), "book_delta", BINANCE, BTC_DAY, max_file_rows=50_000,
                            row_group_rows=16_384)
    assert result is not None
    assert_frame_equal(_read(lake, "book_delta", BINANCE, BTC_DAY), _expected("book_delta", BINANCE, BTC_DAY))
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"sealed-g0001-{i:05d}.parquet" for i in range(6)]


def test_two_seals_of_one_partition_at_once_take_turns(lake: Path) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", _SEAL_SCRIPT, str(lake)], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parents[1]) for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0] and all("done" in out for out in outputs)
    assert_frame_equal(_read(lake, "book_delta", BINANCE, BTC_DAY), _expected("book_delta", BINANCE, BTC_DAY))
    names = sorted(p.name for p in _folder(lake, "book_delta", BINANCE, BTC_DAY).iterdir())
    assert names == [f"sealed-g0001-{i:05d}.parquet" for i in range(6)]
