"""The query API over a lake and a TimescaleDB that both hold the real captures of every venue.

The Binance BTCUSDT capture (the last six minutes of 2024-08-08) is shifted 3 minutes later, in event and
receive time alike, so that its trades run past midnight: a day boundary with data on both sides.

To prove where rows come from, the two stores are made to differ the way retention and a young day
make them differ: Timescale loses the sealed Binance day (as `ticklake db retention` would drop it)
and the lake loses the next, unsealed day's files (as if its sink had not flushed). A query across the
watermark must still return exactly the normalized rows, each once.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import psycopg
import pytest

from ingest.capture_formats import read_frames
from ingest.offline import TopSchedule, normalize_frames
from normalize.arrow_schema import to_arrow
from normalize.records import BookDelta, BookTop, FeedStatus, expand
from pipelines.bars import time_bars
from pipelines.seal import seal_day
from storage.lake_layout import partition_path, split_partitions
from storage.parquet_files import TMP_SUFFIX, filesystem_for, write_atomic
from storage.pg import DatabaseUnavailable
from storage.query import live_filter
from storage.seal_manifest import COMMITTING, SealedFile, SealManifest, write_manifest
from storage.timescale_rows import copy_table, read_table
from tests import binance_data
from tests.pg_databases import private_database
from tests.pipelines_data import private_lake, read_lake
from ticklake import query as query_api
from ticklake.query import LakeOnlyWarning, Query, QueryError, to_ns
from ticklake.settings import load_settings
from ticklake.stack import local
from ticklake.stack.ports import free_port
from ticklake.stack.postgres import EmbeddedPostgres

SEALED = dt.date(2024, 8, 8)
LIVE = dt.date(2024, 8, 9)
BTC = "BTC-USDT-PERP"
BINANCE = "binance-usdm"
TYPES = ("trade", "book_delta", "bbo")
HFT_CAPTURE = binance_data.DATA / "ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz"


SHIFT = pl.duration(minutes=3, time_unit="ns")


def _shifted(frame: pl.DataFrame) -> pl.DataFrame:
    late = (pl.col("venue") == BINANCE) & (pl.col("ts_event") >= dt.datetime(2024, 8, 8, tzinfo=dt.UTC))
    return frame.with_columns(pl.when(late).then(pl.col(c) + SHIFT).otherwise(pl.col(c)).alias(c)
                              for c in ("ts_event", "ts_recv"))


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """Every record type of the real-capture lake (Binance's 2024 capture shifted), as normalized."""
    lake = private_lake(tmp_path_factory)
    return {t: _shifted(read_lake(lake, t).drop("date")) for t in (*TYPES, "funding", "instrument")}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, postgres: EmbeddedPostgres,
           truth: dict[str, pl.DataFrame]) -> Iterator[tuple[Path, str]]:
    lake = tmp_path_factory.mktemp("query-lake")
    filesystem, base = filesystem_for(str(lake))
    for record_type, frame in truth.items():
        for (venue, day), part in split_partitions(frame.to_arrow()).items():
            write_atomic(filesystem, f"{partition_path(base, record_type, venue, day)}/sink-0.parquet", part,
                         record_type)
    with private_database(postgres, "ticklake_query_test") as dsn:
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
            for record_type, frame in truth.items():
                copy_table(cursor, record_type, frame.to_arrow())
        seal_day(str(lake), SEALED, TYPES)
        with psycopg.connect(dsn) as conn:  # what retention drops once the day is sealed
            for record_type in TYPES:
                conn.execute(f"DELETE FROM {record_type} WHERE ts_event < %s AND venue = %s",
                             (to_ns(LIVE), BINANCE))
        for record_type in TYPES:  # the young day the lake's sink has not written yet
            shutil.rmtree(lake / record_type / f"venue={BINANCE}" / f"date={LIVE}")
        yield lake, dsn


@pytest.fixture
def query(stores: tuple[Path, str]) -> Iterator[Query]:
    lake, dsn = stores
    with Query(str(lake), dsn) as q:
        yield q


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _between(frame: pl.DataFrame, start: int, end: int) -> pl.DataFrame:
    return frame.filter(pl.col("ts_event").dt.epoch("ns").is_between(start, end, closed="left"))


@pytest.mark.parametrize("record_type", TYPES)
def test_a_range_across_the_watermark_returns_every_row_once(query: Query, truth: dict[str, pl.DataFrame],
                                                             record_type: str) -> None:
    start, end = to_ns("2024-08-08T23:58:00Z"), to_ns("2024-08-09T00:01:00Z")
    assert query.watermark(record_type, BINANCE) == to_ns(LIVE)
    got = query.records(record_type, BINANCE, BTC, start, end)
    expected = _between(truth[record_type].filter(pl.col("venue") == BINANCE, pl.col("instrument") == BTC),
                        start, end)
    before, after = (expected["ts_event"].dt.epoch("ns") < to_ns(LIVE)).sum(), expected.height
    assert 0 < before < after, "the range must hold rows on both sides of the watermark"
    assert got.schema == expected.schema
    assert _sorted(got).equals(_sorted(expected))
    assert got["ts_event"].is_sorted()


def test_trades_of_every_venue_match_the_normalized_rows(query: Query, truth: dict[str, pl.DataFrame]) -> None:
    got = query.trades()
    assert set(got["venue"].unique()) == {"binance-usdm", "okx", "bybit", "hyperliquid"}
    assert _sorted(got).equals(_sorted(truth["trade"]))


def test_filters_by_instrument_list_and_time_types(query: Query, truth: dict[str, pl.DataFrame]) -> None:
    instruments = ["SUSHI-USDT-PERP", "CTK-USDT-PERP"]
    got = query.trades(BINANCE, instruments, dt.date(2021, 7, 22), dt.datetime(2021, 7, 23))
    expected = truth["trade"].filter(pl.col("instrument").is_in(instruments))
    assert got.height == expected.height > 0
    assert set(got["instrument"]) == set(instruments)
    assert query.trades(BINANCE, instruments, "2021-07-23", "2021-07-24").is_empty()


def test_lake_alone_holds_everything_it_has(stores: tuple[Path, str], truth: dict[str, pl.DataFrame]) -> None:
    """Without a database every row comes from the lake (the live day's files were removed here)."""
    lake, _ = stores
    with Query(str(lake)) as q:
        got = q.trades(BINANCE, BTC)
    expected = truth["trade"].filter(pl.col("venue") == BINANCE, pl.col("instrument") == BTC,
                                     pl.col("ts_event").dt.epoch("ns") < to_ns(LIVE))
    assert _sorted(got).equals(_sorted(expected))


def test_parameters_are_bound_not_formatted(query: Query) -> None:
    """Names are checked against the stores before any SQL is built, and the SQL holds placeholders only."""
    hostile = "x' OR '1'='1"
    with pytest.raises(QueryError, match="unknown venue"):
        query.trades(hostile)
    with pytest.raises(QueryError, match="unknown instrument"):
        query.trades(BINANCE, [hostile])
    with pytest.raises(ValueError, match="unknown record type"):
        query.records("trade; DROP TABLE trade", BINANCE)
    where, params = live_filter({hostile: 0}, [hostile], 1)
    assert hostile not in where.as_string() and hostile in params


def test_bars_stitch_stored_days_and_live_trades(query: Query, stores: tuple[Path, str],
                                                 truth: dict[str, pl.DataFrame]) -> None:
    """Bars of the sealed day come from the pipelines' files, the live day's from trades in Timescale;
    together they equal bars computed from all trades at once."""
    lake, _ = stores
    stored = time_bars(truth["trade"].filter(pl.col("venue") == BINANCE, pl.col("instrument") == BTC,
                                             pl.col("ts_event").dt.epoch("ns") < to_ns(LIVE)), "1m")
    folder = lake / "derived" / "bars_1m" / f"venue={BINANCE}" / f"date={SEALED}"
    folder.mkdir(parents=True)
    stored.write_parquet(folder / "part-0.parquet")
    got = query.bars("1m", BINANCE, BTC, "2024-08-08T23:57:00Z", "2024-08-09T00:02:00Z")
    everything = time_bars(truth["trade"].filter(pl.col("venue") == BINANCE, pl.col("instrument") == BTC), "1m")
    expected = everything.filter(pl.col("ts").is_between(dt.datetime(2024, 8, 8, 23, 57, tzinfo=dt.UTC),
                                                         dt.datetime(2024, 8, 9, 0, 2, tzinfo=dt.UTC), closed="left"))
    assert got["ts"].dt.strftime("%H:%M").to_list() == ["23:57", "23:58", "23:59", "00:00", "00:01"]
    assert got.equals(expected)
    tampered = stored.with_columns(pl.col("trades") + 1000)  # the stored file is what is read before the watermark
    tampered.write_parquet(folder / "part-0.parquet")
    got = query.bars("1m", BINANCE, BTC, "2024-08-08T23:57:00Z", "2024-08-09T00:02:00Z")
    assert (got["trades"] - expected["trades"]).to_list() == [1000, 1000, 1000, 0, 0]
    with Query(str(lake)) as lake_only:  # no database: stored days from files, later days from the lake's trades
        assert lake_only.bars("1m", BINANCE, BTC, "2024-08-08T23:57:00Z", "2024-08-09")["trades"].to_list() == \
            tampered["trades"].tail(3).to_list()
    shutil.rmtree(folder)  # no stored bars: the pipelines have not built the day, so it is computed from trades
    assert query.bars("1m", BINANCE, BTC, "2024-08-08T23:57:00Z", "2024-08-09T00:02:00Z").equals(expected)


def test_book_at_equals_the_handlers_own_top_of_book(query: Query) -> None:
    """The handler's book (BookTop rows the offline run takes from its in-memory L2 book every 10 s)
    against the book rebuilt from the stored snapshot and deltas at that book's last update."""
    out, _ = normalize_frames(BINANCE, read_frames([HFT_CAPTURE]), TopSchedule(depth=10, every_ns=10 * 10**9))
    tops = _shifted(pl.DataFrame(to_arrow([r for r in out.records if type(r) is BookTop])))
    checked = 0
    for (recv,), levels in tops.partition_by("ts_recv", as_dict=True, maintain_order=True).items():
        last_update = int(levels["ts_event"].dt.epoch("ns")[0])
        if last_update >= to_ns(LIVE) or checked >= 12:
            continue
        book = query.book_at(BTC, last_update, venue=BINANCE, depth=10)
        for side, got in ((1, book.bids), (-1, book.asks)):
            expected = levels.filter(pl.col("side") == side).sort("level").select("price", "size")
            assert got.equals(expected), (recv, side)
        assert not book.maybe_bad and book.messages > 0
        checked += 1
    assert checked == 12


def test_book_at_across_the_watermark_and_before_any_snapshot(query: Query) -> None:
    late = query.book_at(BTC, "2024-08-09T00:00:30Z", venue=BINANCE)
    assert late.snapshot_ts < to_ns(LIVE) and late.bids["price"][0] < late.asks["price"][0]
    assert late.mid is not None and 50_000 < late.mid < 70_000
    with pytest.raises(LookupError, match="no book snapshot"):
        query.book_at(BTC, "2024-08-01", venue=BINANCE)


def test_book_at_flags_a_book_after_a_gap(tmp_path: Path) -> None:
    """A delta flagged GAP_BEFORE after the last snapshot makes the rebuilt book suspect; so does a gap
    in the journal with no flagged row after it (a handler that lost sequence applies nothing more
    until it resyncs: its book is frozen at the gap)."""
    records = expand(normalize_frames(BINANCE, read_frames([HFT_CAPTURE]))[0].records)
    rows = pl.DataFrame(to_arrow([r for r in records if type(r) is BookDelta]))
    deltas = rows.filter((pl.col("flags") & 1) == 0)["ts_event"].dt.epoch("ns")
    first, gap_at, journal_gap_at = int(rows["ts_event"].dt.epoch("ns")[0]), int(deltas[100]), int(deltas[5000])
    flagged = rows.with_columns(pl.when(pl.col("ts_event").dt.epoch("ns") == gap_at).then(pl.col("flags") | 4)
                                .otherwise(pl.col("flags")).alias("flags"))
    gap = FeedStatus(BINANCE, "BTCUSDT", BTC, journal_gap_at, journal_gap_at, None, 7, 0, "gap", "conn-1",
                     "pu 7 != last u 5", 6, 6)
    for lake, book_rows, journal in ((tmp_path / "flag", flagged, []), (tmp_path / "journal", rows, [gap])):
        filesystem, base = filesystem_for(str(lake))
        write_atomic(filesystem, f"{partition_path(base, 'book_delta', BINANCE, SEALED)}/a.parquet",
                     book_rows.to_arrow(), "book_delta")
        if journal:
            write_atomic(filesystem, f"{partition_path(base, 'feed_status', BINANCE, SEALED)}/a.parquet",
                         to_arrow(journal), "feed_status")
        suspect_from = gap_at if not journal else journal_gap_at
        with Query(str(lake)) as q:
            assert not q.book_at(BTC, first, venue=BINANCE).maybe_bad
            assert not q.book_at(BTC, suspect_from - 1, venue=BINANCE).maybe_bad
            assert q.book_at(BTC, suspect_from, venue=BINANCE).maybe_bad


def test_duckdb_views_over_the_lake(query: Query, truth: dict[str, pl.DataFrame]) -> None:
    conn = query.duckdb()
    count = conn.execute("SELECT count(*) FROM trade WHERE venue = ? AND date = ?", [BINANCE, "2024-08-08"]).fetchone()
    expected = truth["trade"].filter(pl.col("venue") == BINANCE,
                                     pl.col("ts_event").dt.date() == dt.date(2024, 8, 8)).height
    assert count == (expected,)
    tables = {row[0] for row in conn.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"trade", "book_delta", "bbo", "funding", "instrument"} <= tables


def test_instruments_latest_per_venue(query: Query, truth: dict[str, pl.DataFrame]) -> None:
    got = query.instruments(BINANCE)
    assert got.height == got.select("instrument").n_unique() == truth["instrument"].filter(
        pl.col("venue") == BINANCE)["instrument"].n_unique()


# -- answering honestly ---------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda q: q.trades("binance"), r"unknown venue 'binance' \(closest: binance-usdm"),
    (lambda q: q.trades("OKX"), r"unknown venue 'OKX' \(closest: okx\)"),
    (lambda q: q.trades("gemini"), r"unknown venue 'gemini' \(known: .*binance-usdm, .*hyperliquid, .*okx"),
    (lambda q: q.trades(BTC, BINANCE), r"unknown venue 'BTC-USDT-PERP' .*that is an instrument id: the venue comes "
                                       "first"),
    (lambda q: q.trades(BINANCE, "BTC-USDT-PERPP"), r"unknown instrument 'BTC-USDT-PERPP' \(closest: BTC-USDT-PERP"),
    (lambda q: q.trades(BINANCE, [BTC, "btc-usdt"]), r"unknown instrument 'btc-usdt' \(closest: BTC-USDT"),
    (lambda q: q.trades(BINANCE, "BTCUSDT"), r"'BTCUSDT' is a venue symbol, not an instrument id: pass "
                                             r"'BTC-USDT-PERP' on binance-usdm"),
    (lambda q: q.bars("1m", BINANCE, "BTCUSDT"), r"'BTCUSDT' is a venue symbol"),
    (lambda q: q.book_at("SUSHIUSDT", "2021-07-22T22:26:00Z"), r"'SUSHIUSDT' is a venue symbol, not an instrument "
                                                               r"id: pass 'SUSHI-USDT-PERP' on binance-usdm"),
    (lambda q: q.derived("bars_1m", venue="binanceusdm"), r"unknown venue 'binanceusdm' \(closest: binance-usdm"),
    (lambda q: q.trades(BINANCE, BTC, "2024-08-09", "2024-08-08"), r"start '2024-08-09' is after end '2024-08-08'"),
    (lambda q: q.bars("1m", BINANCE, BTC, "2024-08-09", "2024-08-08"), r"start '2024-08-09' is after end"),
    (lambda q: q.trades(BINANCE, BTC, 1_723_161_600), r"time 1723161600 looks like seconds since the epoch: "
                                                      r"integer times are nanoseconds \(1723161600000000000 ns\)"),
    (lambda q: q.trades(BINANCE, BTC, 0, 1_723_161_600_000), r"looks like milliseconds"),
    (lambda q: q.scan_trades(BINANCE, BTC, 1_723_161_600_000_000), r"looks like microseconds"),
    (lambda q: q.trades(BINANCE, BTC, "yesterday"), r"time 'yesterday' is not an ISO date or time"),
])
def test_a_question_the_stores_cannot_answer_raises(query: Query, call: Callable[[Query], object],
                                                    message: str) -> None:
    with pytest.raises(QueryError, match=message):
        call(query)
    assert issubclass(QueryError, ValueError)


def test_known_names_and_ns_ints_answer_even_when_empty(query: Query, tmp_path: Path,
                                                         stores: tuple[Path, str]) -> None:
    assert query.trades(BINANCE, BTC, "2021-01-01", "2021-01-02").is_empty()  # a known instrument, no rows then
    assert query.trades(BINANCE, BTC, "2024-08-09", "2024-08-09").is_empty()  # start == end: an empty range
    by_ns = query.trades(BINANCE, BTC, to_ns("2024-08-08T23:59:00Z"), 1_723_161_660_000_000_000)
    assert by_ns.equals(query.trades(BINANCE, BTC, "2024-08-08T23:59:00Z", "2024-08-09T00:01:00Z"))
    assert by_ns.height > 0
    _, dsn = stores  # an instrument only the database holds (an empty lake) is known through the database
    with Query(str(tmp_path / "empty-lake"), dsn) as database_only:
        assert database_only.trades("bybit", "LTC-USDT-PERP").height > 0


def test_bars_compute_every_day_not_sealed_whatever_the_latest_sealed_day(
        query: Query, stores: tuple[Path, str], truth: dict[str, pl.DataFrame]) -> None:
    """2024-08-08 is sealed and its 1m bars built; 2021-07-22, older, was never sealed. Its bars are computed
    from trades (even where the pipelines left a file of it, which a day not sealed may have partial),
    for a built interval and another alike."""
    lake, _ = stores
    old = dt.date(2021, 7, 22)
    trades = truth["trade"].filter(pl.col("venue") == BINANCE)
    sealed_folder = lake / "derived" / "bars_1m" / f"venue={BINANCE}" / f"date={SEALED}"
    unsealed_folder = lake / "derived" / "bars_1m" / f"venue={BINANCE}" / f"date={old}"
    try:
        for folder, day in ((sealed_folder, SEALED), (unsealed_folder, old)):
            folder.mkdir(parents=True)
            of_day = time_bars(trades.filter(pl.col("ts_event").dt.date() == day), "1m")
            of_day.with_columns(pl.col("trades") + 1000).write_parquet(folder / "part-0.parquet")  # marked
        got = {interval: query.bars(interval, BINANCE, None, old, LIVE + dt.timedelta(days=1))
               for interval in ("1m", "15m")}
        in_old = pl.col("ts").dt.date() == old
        assert got["1m"].filter(in_old).equals(time_bars(trades.filter(pl.col("ts_event").dt.date() == old), "1m"))
        assert got["1m"].filter(in_old)["trades"].sum() == got["15m"].filter(in_old)["trades"].sum() > 0
        assert got["1m"].filter(pl.col("ts").dt.date() == SEALED)["trades"].min() > 1000  # the stored file
        live = got["1m"].filter(pl.col("ts").dt.date() == LIVE)
        assert live.equals(time_bars(trades.filter(pl.col("ts_event").dt.date() == LIVE), "1m"))  # computed
    finally:
        shutil.rmtree(lake / "derived")


def test_venue_none_sends_each_venue_only_its_rows_past_its_watermark(
        postgres: EmbeddedPostgres, stores: tuple[Path, str], truth: dict[str, pl.DataFrame]) -> None:
    """With every row in TimescaleDB (before retention), the SQL of a venue=None query bounds each venue by
    its own watermark: Binance's sealed day is not sent, the other venues (nothing sealed) are sent whole."""
    lake, _ = stores
    with private_database(postgres, "ticklake_query_pushdown") as dsn:
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
            copy_table(cursor, "trade", truth["trade"].to_arrow())
        with Query(str(lake), dsn) as q, psycopg.connect(dsn) as conn:
            bounds = {venue: max(0, q.watermark("trade", venue)) for venue in ("binance-usdm", "okx")}
            assert bounds == {"binance-usdm": to_ns(LIVE), "okx": 0}
            where, params = live_filter(bounds, None, to_ns("2030-01-01"))
            assert where.as_string(conn) == ("time >= ticklake_ts(%s) AND time <= ticklake_ts(%s - 1) "
                                             "AND ts_event >= %s AND ts_event < %s "
                                             "AND ((venue = %s AND ts_event >= %s) OR (venue = %s AND ts_event >= %s))")
            sent = pl.DataFrame(read_table(conn, "trade", where, params))
            expected = truth["trade"].filter(
                (pl.col("venue") == "okx") | ((pl.col("venue") == BINANCE) & (pl.col("ts_event") >= LIVE)))
            assert _sorted(sent).equals(_sorted(expected))
            got = q.trades()
        assert _sorted(got).equals(_sorted(truth["trade"]))  # and the query answers every row once


def test_scan_variants_are_lazy_over_the_lake(query: Query) -> None:
    start, end = "2024-08-08T23:58:00Z", "2024-08-09T00:01:00Z"
    lazy = query.scan_trades(BINANCE, BTC, start, end)
    assert isinstance(lazy, pl.LazyFrame)
    assert "PARQUET" in lazy.explain().upper()  # the lake side is a scan, not rows read already
    assert lazy.collect().equals(query.trades(BINANCE, BTC, start, end))
    assert query.scan_records("bbo", BINANCE, BTC, start, end).select(pl.len()).collect().item() == \
        query.bbo(BINANCE, BTC, start, end).height
    assert query.scan_derived("bars_1m").collect().is_empty()
    for name in ("book_deltas", "bbo", "funding", "mark_index", "open_interest", "liquidations"):
        assert isinstance(getattr(query, f"scan_{name}")(BINANCE), pl.LazyFrame)
    assert isinstance(query.scan_feed_status(BINANCE), pl.LazyFrame)


def _closed_dsn() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/ticklake"


def test_an_unreachable_database_leaves_the_lake_with_one_warning(stores: tuple[Path, str]) -> None:
    lake, _ = stores
    with Query(str(lake)) as lake_only:
        expected = lake_only.trades(BINANCE, BTC)
    with warnings.catch_warnings(record=True) as caught, Query(str(lake), _closed_dsn()) as q:
        warnings.simplefilter("always")
        assert q.trades(BINANCE, BTC).equals(expected)
        assert q.trades(BINANCE, BTC).equals(expected)
    assert [w.category for w in caught] == [LakeOnlyWarning]
    assert "cannot connect to PostgreSQL" in str(caught[0].message)
    assert "reading the lake alone" in str(caught[0].message)
    with Query(str(lake), _closed_dsn(), strict=True) as strict, pytest.raises(DatabaseUnavailable):
        strict.trades(BINANCE, BTC)


def test_connect_after_ticklake_down_reads_the_lake(stores: tuple[Path, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`ticklake down` leaves stack.json naming the stopped cluster: connect() still answers, from the lake."""
    lake, _ = stores
    for name in [k for k in os.environ if k.startswith("TICKLAKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TICKLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TICKLAKE_LAKE", str(lake))
    local.save_state(load_settings(), local.StackState(postgres=EmbeddedPostgres(tmp_path / "pg", free_port())))
    with Query(str(lake)) as lake_only:
        expected = lake_only.trades(BINANCE, BTC)
    with pytest.warns(LakeOnlyWarning), query_api.connect() as q:
        assert q.dsn is not None and q.trades(BINANCE, BTC).equals(expected)
    with query_api.connect(strict=True) as q, pytest.raises(DatabaseUnavailable):
        q.trades(BINANCE, BTC)


def test_a_lost_connection_is_opened_again(query: Query, stores: tuple[Path, str]) -> None:
    start, end = "2024-08-08T23:58:00Z", "2024-08-09T00:01:00Z"
    before = query.trades(BINANCE, BTC, start, end)
    _, dsn = stores
    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert killed is not None and killed[0] >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reopened, not abandoned for the lake
        assert query.trades(BINANCE, BTC, start, end).equals(before)


def test_an_open_query_holds_no_transaction_between_calls(query: Query, stores: tuple[Path, str]) -> None:
    """A notebook keeps its Query open for hours: a transaction left open after a read would hold its
    locks on the chunks read (the retention's chunk drops would wait on it) and hold back vacuum."""
    assert not query.trades(BINANCE, BTC, "2024-08-08T23:58:00Z", "2024-08-09T00:01:00Z").is_empty()
    _, dsn = stores
    with psycopg.connect(dsn, autocommit=True) as admin:
        open_ = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND state LIKE 'idle in transaction%'").fetchone()
        assert open_ == (0,)
        admin.execute("SET lock_timeout = '5s'")
        with admin.transaction():
            admin.execute("LOCK TABLE trade IN ACCESS EXCLUSIVE MODE")  # what dropping one of its chunks takes


def test_a_partition_being_rewritten_is_read_whole_as_it_will_be(tmp_path: Path,
                                                                 truth: dict[str, pl.DataFrame]) -> None:
    """While a seal commits (its manifest says `committing`), readers take its outputs (renamed in
    already, or still .tmp) instead of its inputs: never both, never half."""
    day = dt.date(2021, 7, 22)
    rows = truth["trade"].filter(pl.col("venue") == BINANCE, pl.col("ts_event").dt.date() == day)
    filesystem, base = filesystem_for(str(tmp_path))
    folder = partition_path(base, "trade", BINANCE, day)
    write_atomic(filesystem, f"{folder}/sink-0.parquet", rows.to_arrow(), "trade")
    rewritten = rows.with_columns(pl.col("size") * 2)
    rewritten.write_parquet(f"{folder}/sealed-g1-0.parquet{TMP_SUFFIX}")
    write_manifest(filesystem, base, SealManifest("trade", BINANCE, day.isoformat(), COMMITTING, 1, ["trade_id"],
                                                  [SealedFile("sink-0.parquet", rows.height)],
                                                  [SealedFile("sealed-g1-0.parquet", rows.height)], rows.height,
                                                  rows.height))
    with Query(str(tmp_path)) as q:
        got = q.trades(BINANCE, start=day, end=day + dt.timedelta(days=1))
    assert _sorted(got).equals(_sorted(rewritten))


def test_names_that_arrive_later_are_known(tmp_path: Path, truth: dict[str, pl.DataFrame]) -> None:
    """A Query kept open sees a venue and an instrument whose rows arrived after it cached the names."""
    filesystem, base = filesystem_for(str(tmp_path))
    trades = truth["trade"].filter(pl.col("ts_event").dt.date() == dt.date(2021, 7, 22))
    first, later = trades.filter(pl.col("instrument") == "SUSHI-USDT-PERP"), trades.filter(
        pl.col("instrument") == "CTK-USDT-PERP")
    write_atomic(filesystem, f"{partition_path(base, 'trade', BINANCE, dt.date(2021, 7, 22))}/a.parquet",
                 first.to_arrow(), "trade")
    with Query(str(tmp_path)) as q:
        assert q.trades(BINANCE, "SUSHI-USDT-PERP").height == first.height
        write_atomic(filesystem, f"{partition_path(base, 'trade', BINANCE, dt.date(2021, 7, 22))}/b.parquet",
                     later.to_arrow(), "trade")
        write_atomic(filesystem, f"{partition_path(base, 'trade', 'newvenue', dt.date(2021, 7, 22))}/c.parquet",
                     later.with_columns(pl.lit("newvenue").alias("venue")).to_arrow(), "trade")
        assert q.trades(BINANCE, "CTK-USDT-PERP").height == later.height
        assert q.trades("newvenue").height == later.height
        with pytest.raises(QueryError, match="unknown instrument 'NOPE'"):
            q.trades(BINANCE, "NOPE")
