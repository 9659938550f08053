"""Synthetic venues: each drives its real handler with no sequence break, checksum failure or dead
letter, and what the handler emits is exactly what the market generated (every trade, the final
books); each scenario leaves the journal rows it should; the CLI serves one across UTC midnight
and writes the ground truth."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.replay_server import ReplayServer
from ingest.synthetic.feed import SyntheticFeed, synthetic_feed
from ingest.synthetic.market import BookUpdate, Grid, Market, Rates, instruments, parse_rates, parse_scenario
from ingest.venues.registry import VENUES
from normalize.book import books_report
from normalize.flags import Flag
from normalize.records import FeedStatus, Liquidation, Trade
from tests.cli_replay import TICKLAKE
from ticklake.stack.ports import free_port, wait_listening

SYNTHETIC = [venue for venue, spec in VENUES.items() if spec.synthetic is not None]
WHOLE_BOOKS = {"hyperliquid"}
"""Venues whose every book message is the whole book, with no sequence number or checksum."""
START_NS = 1_796_601_590_000_000_000
"""2026-12-06T23:59:50Z."""


@dataclass
class Run:
    feed: SyntheticFeed
    sink: CollectingSink
    books: dict[str, tuple[int, int, bool]]
    normalizer: object

    def journal(self) -> Counter[str]:
        return Counter(r.event for r in self.sink.emitted.records if isinstance(r, FeedStatus))

    def trades(self) -> list[Trade]:
        return [r for r in self.sink.emitted.records if isinstance(r, Trade)]


RATES = Rates(trades=150, book=600, liquidations=1)


async def _run(venue: str, seconds: float, scenarios: tuple[str, ...] = (), speed: float = 1.0,
               instruments: int = 3) -> Run:
    feed = synthetic_feed(venue, instruments, RATES, START_NS, seconds, seed=7,
                          scenarios=[parse_scenario(s) for s in scenarios], keep_truth=True)
    spec = VENUES[venue]
    connection = spec.connection(feed.encoder.symbols, reconnect_interval_s=0.05)  # type: ignore[call-arg]
    server = ReplayServer(venue, feed.rest_frames(), speed=speed, playback=feed, withheld=feed.withheld,
                          min_clients=len(connection.routes()))
    await server.start()
    connection = spec.connection(feed.encoder.symbols, ws_base=server.url, rest_base=server.rest_url,  # type: ignore[call-arg]
                                 reconnect_interval_s=0.05)
    sink, normalizer = CollectingSink(), spec.normalizer()
    handler = FeedHandler(connection, normalizer, sink, None, HandlerConfig(backoff_initial_s=0.05,
                                                                           poll_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=120)
    await asyncio.sleep(0.5)
    while not handler.idle():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    return Run(feed, sink, books_report(normalizer.books), normalizer)  # type: ignore[attr-defined]


def _truth_trades(feed: SyntheticFeed) -> dict[tuple[str, str], tuple[float, float, int, int]]:
    assert feed.truth is not None
    return {(symbol, trade_id): (float(price), float(size), side, ts)
            for symbol, trade_id, price, size, side, ts in feed.truth.trades}


@pytest.mark.parametrize("venue", SYNTHETIC)
async def test_the_handler_gets_exactly_the_generated_market(venue: str) -> None:
    run = await _run(venue, 3.0)
    assert not run.sink.emitted.dead_letters
    assert set(run.journal()) <= {"connect", "disconnect"}
    assert run.books and all(breaks == 0 and synced for _, breaks, synced in run.books.values())
    trades = run.trades()
    truth = _truth_trades(run.feed)
    assert len(truth) > 200
    assert {(t.symbol, t.trade_id): (t.price, t.size, t.side, t.ts_event) for t in trades} == truth
    assert len(trades) == len(truth) and not any(t.flags & (Flag.GAP_BEFORE | Flag.FROM_REST) for t in trades)
    _assert_books_are_the_markets(run)


def _assert_books_are_the_markets(run: Run) -> None:
    """The handler's books are the venue's, level for level (the best 10 a side)."""
    for n, symbol in enumerate(run.feed.encoder.symbols):
        book = run.feed.market.books[n]
        spec = run.feed.market.specs[n]
        bids, asks = run.normalizer.books[symbol].book.top(10)  # type: ignore[attr-defined]
        expected_bids = [(float(spec.price_grid.text(p)), float(spec.size_grid.text(book.bids[p])))
                         for p in sorted(book.bids, reverse=True)[:10]]
        expected_asks = [(float(spec.price_grid.text(p)), float(spec.size_grid.text(book.asks[p])))
                         for p in sorted(book.asks)[:10]]
        assert [tuple(level) for level in bids] == expected_bids and [tuple(level) for level in asks] == expected_asks


@pytest.mark.parametrize("venue", SYNTHETIC)
async def test_a_burst_breaks_nothing(venue: str) -> None:
    run = await _run(venue, 3.0, ("burst:at=1,for=1,x=10",), speed=0)
    assert set(run.journal()) <= {"connect", "disconnect"} and not run.sink.emitted.dead_letters
    assert all(breaks == 0 for _, breaks, _ in run.books.values())
    assert len(run.trades()) == len(_truth_trades(run.feed))


@pytest.mark.parametrize("venue", SYNTHETIC)
async def test_an_outage_is_a_gap_and_a_resync(venue: str) -> None:
    # one instrument: venues that resync by resubscribing space those out (OKX: 20 s apart)
    run = await _run(venue, 4.0, ("outage:at=1.5,for=1",), instruments=1)
    assert run.feed.withheld
    journal = run.journal()
    if venue in WHOLE_BOOKS:  # nothing to find a gap by while the connection stays open, and nothing to resync:
        # the first book after the outage is the whole book again
        assert set(journal) <= {"connect", "disconnect"}, journal
        _assert_books_are_the_markets(run)
    else:
        assert journal["gap"] >= 1 and journal["resync_done"] == journal["gap"], journal
    assert all(synced for _, _, synced in run.books.values())
    assert not run.sink.emitted.dead_letters
    truth = _truth_trades(run.feed)
    got = {(t.symbol, t.trade_id) for t in run.trades()}
    if journal["trade_gap"]:  # a venue that serves its trade history: the missed trades come back
        assert journal["backfill_done"] == journal["trade_gap"] and got == set(truth)
    else:  # the others: exactly the trades sent, and those withheld are the missing ones
        assert got < set(truth)


@pytest.mark.parametrize("venue", SYNTHETIC)
async def test_a_flash_crash_stays_inside_its_bounds(venue: str) -> None:
    run = await _run(venue, 3.0, ("flash-crash:at=0.5,for=2",), speed=0)
    assert not run.sink.emitted.dead_letters and set(run.journal()) <= {"connect", "disconnect"}
    market = run.feed.market
    liquidations = [r for r in run.sink.emitted.records if isinstance(r, Liquidation)]
    if VENUES[venue].connection.standard_channels["liquidations"]:
        assert len(liquidations) >= 10
    else:  # a venue without a liquidation stream (Hyperliquid) sends none
        assert not liquidations
    for n, symbol in enumerate(run.feed.encoder.symbols):
        reached = market.bounds[0, n]
        grid = market.specs[n].price_grid
        low, high = float(grid.text(reached.low)), float(grid.text(reached.high))
        start = market.start_mid2[n] / 2
        assert reached.low <= start * 0.91 and reached.high >= start * 0.99  # down a tenth, and back
        crash_trades = [t.price for t in run.trades() if t.symbol == symbol
                        and START_NS + 0.5e9 <= t.ts_event < START_NS + 2.5e9]
        assert crash_trades and all(low <= price <= high for price in crash_trades)


def test_the_market_is_exact_and_repeatable() -> None:
    assert Grid.of("0.10").text(618001) == "61800.10" and Grid.of("1").text(7) == "7"
    assert Grid.of("0.000001").text(150000) == "0.150000"
    first, second = (Market(instruments(7), Rates(), {}, START_NS, 2, seed=3) for _ in range(2))
    events = list(first.events())
    assert events == list(second.events()) and len(events) > 300
    updates = [event.changes for event in events if isinstance(event, BookUpdate)]
    # each level once per update, as a venue's diff lists it: a repeated level is two rows of one key
    assert updates and all(len({(side, price) for side, price, _ in changes}) == len(changes) for changes in updates)
    for book in first.books:
        assert book.best_bid < book.best_ask and max(book.bids) == book.best_bid and min(book.asks) == book.best_ask
        assert all(size > 0 for size in [*book.bids.values(), *book.asks.values()])
    assert [s.base for s in instruments(7)] == ["BTC", "ETH", "SOL", "XRP", "DOGE", "S0001", "S0002"]


@pytest.mark.parametrize("text, error", [
    ("earthquake:at=1", "unknown scenario 'earthquake'"),
    ("burst:at=1,speed=3", "scenario option 'speed' unknown"),
    ("outage:for=-1", "for and x > 0"),
])
def test_bad_scenarios_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_scenario(text)


def test_bad_rates_say_what_is_wrong() -> None:
    assert parse_rates("trades=5,book=7") == Rates(5, 7, Rates.liquidations)
    for text, error in (("bbo=3", "no rate for 'bbo'"), ("trades=x", "not a number"), ("book=-1", "negative")):
        with pytest.raises(ValueError, match=error):
            parse_rates(text)


def test_the_cli_serves_a_market_across_midnight_and_writes_the_truth(tmp_path: Path) -> None:
    port, truth = free_port(), tmp_path / "truth.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env["TICKLAKE_HOME"] = str(tmp_path / "home")
    server = subprocess.Popen([TICKLAKE, "replay-server", "binance-usdm", "--synthetic", "--instruments", "BTC,ETH",
                               "--rate", "trades=100,book=300", "--duration", "20", "--start", "2026-12-06T23:59:57Z",
                               "--port", str(port), "--clients", "2", "--truth", str(truth)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_listening(port, 20)
        ingest = subprocess.run([TICKLAKE, "ingest", "--venue", "binance-usdm", "--symbols", "BTC-USDT-PERP,ETHUSDT",
                                 "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
                                 "--out", str(tmp_path / "lake"), "--duration", "6", "--clock", "recorded"],
                                env=env, capture_output=True, text=True, timeout=120, check=False)
        assert ingest.returncode == 0, ingest.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert "a synthetic binance-usdm market of 2 instruments (BTCUSDT, ETHUSDT)" in output
    document = json.loads(truth.read_text())
    trades = pl.read_parquet(f"{tmp_path}/lake/trade/**/*.parquet", hive_partitioning=True)
    assert set(trades["date"].cast(pl.Utf8)) == {"2026-12-06", "2026-12-07"}
    stored = set(zip(trades["symbol"], trades["trade_id"], trades["price"], strict=True))
    generated = {(symbol, trade_id, float(price)) for symbol, trade_id, price, *_ in document["trades"]}
    # the server generates a little ahead of what it sends, and the handler left while it played
    assert stored <= generated and len(stored) >= len(generated) - 10 and len(stored) > 300
    assert set(document["books"]) == {"BTCUSDT", "ETHUSDT"} and document["skipped"] == []


@pytest.mark.parametrize("args, error", [
    ([], "give capture files to replay, or --synthetic"),
    (["--synthetic", "--scenario", "quake"], "unknown scenario 'quake'"),
    (["--synthetic", "--start", "yesterday"], "--start is not ISO 8601"),
    (["--synthetic", "--channel", "depth20@100ms"], "does not send depth20@100ms"),
])
def test_synthetic_cli_mistakes_are_one_line(args: list[str], error: str) -> None:
    result = subprocess.run([TICKLAKE, "replay-server", "binance-usdm", *args], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2 and error in result.stderr + result.stdout, result.stderr
    assert "Traceback" not in result.stderr
