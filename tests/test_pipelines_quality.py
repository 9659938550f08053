"""Quality checks on the real-capture lake, on records in the order the normalizer delivered them, on a
real sequence gap (a Binance depth frame left out of the recorded session), and on hand-built frames.
Expected counts are computed in plain Python. Seconds and scores derived by dividing by a constant are
compared to 1e-15 (relative, or absolute for scores): polars divides by a constant by multiplying with its
reciprocal, which can be an ulp off.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.flags import DERIVED, MAYBE_BAD_BOOK, SNAPSHOT
from normalize.records import RECORD_CLASSES, FeedStatus, Record, expand
from pipelines.bars import time_bars
from pipelines.quality import bar_consistency, completeness, crossed_books, duplicate_keys, out_of_order
from tests.binance_data import CRYPTOFEED_RUN
from tests.pipelines_data import PARTS, private_lake, read_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_lake(tmp_path_factory)


NS_PER_S = 10**9
DAY_NS = 86400 * NS_PER_S
TS = pl.Datetime("ns", "UTC")


def close(value: float) -> object:
    return pytest.approx(value, rel=1e-15, abs=1e-15)


def records_frame(records: list[Record], record_type: str) -> pl.DataFrame:
    """Records of one type in the order given, as a frame with the lake's columns."""
    table = to_arrow([r for r in expand(records) if r.record_type == record_type], record_type)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def test_duplicate_keys(lake: Path) -> None:
    trades = read_lake(lake, "trade")
    key = RECORD_CLASSES["trade"].key_columns
    clean = duplicate_keys(trades, key)
    assert clean.passed and clean.metadata == {"rows": 21546, "distinct_keys": 21546, "duplicate_keys": 0,
                                               "extra_rows": 0}
    redelivered = pl.concat([trades, trades.slice(100, 50), trades.slice(120, 10)])
    check = duplicate_keys(redelivered, key)
    counts = Counter(redelivered.select(key).rows())
    assert not check.passed
    assert check.metadata == {"rows": 21606, "distinct_keys": len(counts),
                              "duplicate_keys": sum(1 for n in counts.values() if n > 1),
                              "extra_rows": sum(n - 1 for n in counts.values())}
    assert sorted(check.failures["copies"].to_list()) == sorted(n for n in counts.values() if n > 1)
    assert check.metadata["duplicate_keys"] == 50 and check.metadata["extra_rows"] == 60


def test_duplicate_book_levels_with_null_sequence(lake: Path) -> None:
    """Hyperliquid book rows have no exch_seq: a null key part still identifies the row."""
    levels = read_lake(lake, "book_delta").filter(pl.col("venue") == "hyperliquid")
    assert levels["exch_seq"].null_count() == levels.height == 339
    key = RECORD_CLASSES["book_delta"].key_columns
    assert duplicate_keys(levels, key).passed
    check = duplicate_keys(pl.concat([levels, levels.head(7)]), key)
    assert (check.passed, check.metadata["duplicate_keys"], check.metadata["extra_rows"]) == (False, 7, 7)


def python_out_of_order(frame: pl.DataFrame) -> Counter[tuple[str, str]]:
    last: dict[tuple[str, str], int] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for venue, instrument, ts in frame.select("venue", "instrument", pl.col("ts_event").cast(pl.Int64)).rows():
        if (venue, instrument) in last and ts < last[(venue, instrument)]:
            counts[(venue, instrument)] += 1
        last[(venue, instrument)] = ts
    return counts


def test_out_of_order_in_delivery_order_and_in_the_lake(lake: Path) -> None:
    venue, paths = PARTS["binance-hftbacktest"]
    emitted, _ = normalize_frames(venue, read_frames(paths))
    delivered = records_frame(emitted.records, "bbo")  # bookTicker and book-derived BBOs interleaved
    expected = python_out_of_order(delivered)
    check = out_of_order(delivered)
    assert not check.passed and check.metadata == {"rows": delivered.height, "out_of_order": expected.total()}
    assert expected.total() == 254
    assert {(r["venue"], r["instrument"]): r["out_of_order"] for r in check.failures.rows(named=True)} == expected
    lake_bbo = read_lake(lake, "bbo")
    assert out_of_order(lake_bbo).metadata == {"rows": lake_bbo.height, "out_of_order": 0}
    assert out_of_order(read_lake(lake, "trade")).passed


def test_out_of_order_per_instrument() -> None:
    rows = [("okx", "A", 5), ("okx", "B", 1), ("okx", "A", 3), ("okx", "A", 4), ("bybit", "A", 1), ("okx", "A", 2)]
    frame = pl.DataFrame(rows, schema={"venue": pl.String, "instrument": pl.String, "ts_event": pl.Int64},
                         orient="row").with_columns(pl.col("ts_event").cast(TS))
    check = out_of_order(frame)
    assert (check.passed, check.metadata["out_of_order"]) == (False, 2)
    assert check.failures.rows() == [("okx", "A", 2, 2)]


BBO = {"venue": pl.String(), "instrument": pl.String(), "ts_event": pl.Int64(), "flags": pl.Int32(),
       "bid_price": pl.Float64(), "ask_price": pl.Float64()}


def test_crossed_books() -> None:
    rows = [("okx", "A", 1, DERIVED, 100.0, 101.0), ("okx", "A", 2, DERIVED, 101.0, 101.0),
            ("okx", "A", 3, DERIVED | MAYBE_BAD_BOOK, 100.0, 101.0), ("okx", "A", 4, 0, 102.0, 101.0),
            ("okx", "B", 5, DERIVED, 102.0, 101.0), ("okx", "B", 6, DERIVED, None, 101.0)]
    check = crossed_books(pl.DataFrame(rows, schema=BBO, orient="row").with_columns(pl.col("ts_event").cast(TS)))
    assert (check.passed, check.metadata) == (False, {"derived_rows": 5, "crossed": 3})
    assert check.failures.with_columns(pl.col("first_ts", "last_ts").cast(pl.Int64)).rows() == [
        ("okx", "A", 2, 2, 3), ("okx", "B", 1, 5, 5)]


def test_recorded_books_are_not_crossed(lake: Path) -> None:
    bbo = read_lake(lake, "bbo")
    derived = sum(1 for flags in bbo["flags"] if flags & DERIVED)
    # 7,689 derived BBOs normalized, less 3 of REST snapshots that repeat a diff's (one key each)
    assert crossed_books(bbo).metadata == {"derived_rows": derived, "crossed": 0} and derived == 7686


def test_bar_consistency(lake: Path) -> None:
    trades = read_lake(lake, "trade")
    bars = time_bars(trades, "1m")
    assert bar_consistency(bars, trades).metadata == {
        "bars": 22, "ohlc_violations": 0, "volume_mismatches": 0, "count_mismatches": 0, "unassigned_trades": 0}
    assert bar_consistency(bars, trades).passed
    btc = (pl.col("venue") == "binance-usdm") & (pl.col("instrument") == "BTC-USDT-PERP")
    minute = pl.col("ts") == pl.datetime(2024, 8, 8, 23, 57, time_zone="UTC")
    missing = bars.filter(~(btc & minute))  # its 4,717 trades land in the 23:56 bar
    tampered = bars.with_columns(pl.when(btc & (pl.col("ts").dt.minute() == 58)).then(pl.col("high") - 100)
                                 .otherwise(pl.col("high")).alias("high"),
                                 pl.when(btc & (pl.col("ts").dt.minute() == 59)).then(pl.col("volume") + 0.001)
                                 .otherwise(pl.col("volume")).alias("volume"))
    check = bar_consistency(missing, trades)
    assert (check.passed, check.metadata["volume_mismatches"], check.metadata["count_mismatches"]) == (False, 1, 1)
    assert check.failures.select("trades", "trade_count").rows() == [(1992, 1992 + 4717)]
    check = bar_consistency(tampered, trades)
    assert (check.metadata["ohlc_violations"], check.metadata["volume_mismatches"]) == (1, 1)
    late = bars.filter(~(btc & (pl.col("ts").dt.minute() == 54)))
    assert bar_consistency(late, trades).metadata["unassigned_trades"] == 1751


def test_completeness_of_a_session_with_a_sequence_gap() -> None:
    """The recorded Binance session without one SUSHIUSDT depth frame: a gap, a resync that never
    completes (no later snapshot in the recording), so SUSHI's book is out until the end of the day.
    Without one of its aggTrade frames too: a trade gap, counted, with no duration."""
    frames = list(read_frames(CRYPTOFEED_RUN))
    skipped = {[i for i, f in enumerate(frames) if b"sushiusdt@depth" in f.payload][100],
               [i for i, f in enumerate(frames) if b"sushiusdt@aggTrade" in f.payload][30]}
    emitted, _ = normalize_frames("binance-usdm", [f for i, f in enumerate(frames) if i not in skipped])
    journal = [r for r in emitted.records if isinstance(r, FeedStatus)]
    assert sorted(r.event for r in journal) == ["gap", "resync_start", "trade_gap"]
    gap_ns = next(r.ts_event for r in journal if r.event == "gap")
    table = completeness(records_frame(emitted.records, "feed_status"), records_frame(emitted.records, "book_delta"))
    row = table.row(0, named=True)
    affected_s = (DAY_NS - gap_ns % DAY_NS) / NS_PER_S
    assert table.height == 1
    assert row == {"venue": "binance-usdm", "date": dt.date(2021, 7, 22), "gaps": 1, "checksum_failures": 0,
                   "resyncs": 1, "resyncs_done": 0, "stale": 0, "disconnects": 0, "queue_overflows": 0,
                   "trade_gaps": 1, "trades_lost": 0, "affected_s": close(affected_s),
                   "completeness": close(1 - affected_s / 86400)}
    assert 0.93 < row["completeness"] < 0.94


def status(venue: str, instrument: str, ts_s: float, event: str, detail: str = "") -> dict[str, Any]:
    return {"venue": venue, "instrument": instrument, "ts_event": int(ts_s * NS_PER_S), "event": event,
            "detail": detail}


def journal(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {"venue": pl.String, "instrument": pl.String, "ts_event": pl.Int64, "event": pl.String,
              "detail": pl.String}
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("ts_event").cast(TS))


def test_completeness_outages_and_their_union() -> None:
    day = 86400
    events = [
        status("okx", "BTC-USDT-PERP", 1000, "checksum_failure"), status("okx", "BTC-USDT-PERP", 1000, "resync_start"),
        status("okx", "BTC-USDT-PERP", 1100, "resync_done"),  # 100 s
        status("okx", "ETH-USDT-PERP", 1050, "gap"),  # to ETH's snapshot at 1200: overlaps BTC's, union 1000..1200
        status("okx", "", 5000, "stale", "no frame for 30 s"), status("okx", "", 5000, "disconnect", "stale"),
        status("okx", "", 5010, "connect"),  # 4970..5010: 40 s
        status("okx", "", 6000, "queue_overflow", "frame dropped"),
        status("okx", "", day - 60, "disconnect", "closed"), status("okx", "", day + 120, "connect"),  # midnight
        status("bybit", "XRP-USDT-PERP", 2 * day + 3600, "gap"),  # never resolved: to the end of the day
    ]
    snapshots = pl.DataFrame({"venue": ["okx", "okx"], "instrument": ["ETH-USDT-PERP", "ETH-USDT-PERP"],
                              "ts_event": [900 * NS_PER_S, 1200 * NS_PER_S], "flags": [SNAPSHOT, SNAPSHOT]},
                             schema_overrides={"flags": pl.Int32}).with_columns(pl.col("ts_event").cast(TS))
    table = completeness(journal(events), snapshots)
    assert table.select("venue", "date", "gaps", "checksum_failures", "resyncs", "resyncs_done", "stale",
                        "disconnects", "queue_overflows").rows() == [
        ("bybit", dt.date(1970, 1, 3), 1, 0, 0, 0, 0, 0, 0),
        ("okx", dt.date(1970, 1, 1), 1, 1, 1, 1, 1, 2, 1),
        ("okx", dt.date(1970, 1, 2), 0, 0, 0, 0, 0, 0, 0)]
    assert table["affected_s"].to_list() == [close(day - 3600.0), close(200.0 + 40.0 + 60.0), close(120.0)]
    assert table["completeness"].to_list() == [close(3600 / day), close(1 - 300 / day), close(1 - 120 / day)]
    without_books = completeness(journal(events)).filter(pl.col("venue") == "okx")
    assert without_books["affected_s"].to_list() == [close(day - 1000.0), close(120.0)]  # ETH's gap never resolves


def test_completeness_of_the_sample_lake_without_a_journal(lake: Path) -> None:
    books = read_lake(lake, "book_delta")
    empty = journal([])
    table = completeness(empty, books)
    days = sorted(set(books.select("venue", pl.col("ts_event").dt.date()).rows()))
    assert table.select("venue", "date").rows() == days and len(days) == 6
    assert table["completeness"].to_list() == [1.0] * 6
