"""Each venue's routes as its current documentation gives them (docs/venues.md), in the handler and
in the replay server; a handler on a retired or wrong route fails against the replay server the way
it would fail against the venue: connected, silent, journaled, and named by `ticklake probe`."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ingest.capture_formats import read_frames
from ingest.feed_handler import CollectingSink, FeedHandler, HandlerConfig
from ingest.frames import Frame
from ingest.replay_server import ReplayServer
from ingest.venues.binance_spot import connection as binance_spot
from ingest.venues.binance_spot import replay as binance_spot_replay
from ingest.venues.binance_usdm import connection as binance_usdm
from ingest.venues.binance_usdm.connection import BinanceUsdmConnection
from ingest.venues.binance_usdm.replay import VENUE_ROUTES, BinanceUsdmReplay
from ingest.venues.bitmex import connection as bitmex
from ingest.venues.bybit import connection as bybit
from ingest.venues.coinbase import connection as coinbase
from ingest.venues.coinbase import replay as coinbase_replay
from ingest.venues.deribit import connection as deribit
from ingest.venues.hyperliquid import connection as hyperliquid
from ingest.venues.interface import UnknownChannel, VenueLimitExceeded
from ingest.venues.kraken import connection as kraken
from ingest.venues.kraken_futures import connection as kraken_futures
from ingest.venues.okx import connection as okx
from ingest.venues.okx.replay import OkxReplay
from ingest.venues.registry import CONNECTIONS, PROTOCOLS
from normalize.records import FEED_EVENTS, FeedStatus, Instrument, Trade
from normalize.venues.binance_usdm.instruments import exchange_info_instruments
from tests.binance_data import CRYPTOFEED_RUN, CRYPTOFEED_SYMBOLS
from tests.cli_replay import TICKLAKE, replay_server_process

DOCS = Path(__file__).parents[1] / "docs" / "venues.md"
MODULES = {"binance-usdm": binance_usdm, "bybit": bybit, "okx": okx, "hyperliquid": hyperliquid, "kraken": kraken,
           "kraken-futures": kraken_futures, "binance-spot": binance_spot, "coinbase": coinbase, "deribit": deribit,
           "bitmex": bitmex}


def _documented_routes() -> dict[str, dict[str, tuple[str, str]]]:
    """venue id -> channel -> (route, path), from each venue's Routes table in docs/venues.md."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    venue = None
    in_routes = False
    for line in DOCS.read_text().splitlines():
        heading = re.match(r"^## .*\(`([a-z-]+)`\)$", line)
        if heading:
            venue, in_routes = heading.group(1), False
        elif line.startswith("### "):
            in_routes = line == "### Routes"
        elif in_routes and venue and line.startswith("| ") and not line.startswith(("| channel", "|---")):
            channel, route, path = (cell.strip() for cell in line.strip("|").split("|"))
            out.setdefault(venue, {})[channel] = (route, path)
    return out


def test_every_connection_routes_as_documented() -> None:
    documented = _documented_routes()
    assert set(documented) == set(CONNECTIONS)
    for venue, module in MODULES.items():
        table = documented[venue]
        assert {channel: route for channel, (route, _) in table.items()} == module.ROUTES, venue
        assert {route: path for route, path in table.values()} == module.ROUTE_PATHS, venue


def test_the_replay_server_serves_each_stream_only_on_its_documented_route() -> None:
    documented = _documented_routes()
    binance = {channel: route for channel, (route, _) in documented["binance-usdm"].items()}
    assert {name: route for route, names in VENUE_ROUTES.items() for name in names} == binance
    replay = BinanceUsdmReplay([])
    for channel, route in binance.items():
        stream = f"btcusdt@{channel}"
        assert replay.serves(route, stream)
        assert not replay.serves({"public": "market", "market": "public"}[route], stream)
        # the retired root is served as /public
        assert replay.serves(replay.route_of("/stream"), stream) == (route == "public")
    okx_replay = OkxReplay([])
    for channel, (route, path) in documented["okx"].items():
        wire = "candle1m" if channel.endswith("candle") else channel
        assert okx_replay.route_of(path) == route
        assert okx_replay.serves(route, f"{wire}:BTC-USDT")
        other = "business" if route == "public" else "public"
        assert not okx_replay.serves(other, f"{wire}:BTC-USDT")
        # and a subscription there is refused, as OKX refuses it
        streams: set[str] = set()
        [reply] = okx_replay.on_client_message(json.dumps({"op": "subscribe", "args": [
            {"channel": wire, "instId": "BTC-USDT"}]}), streams, other)
        assert json.loads(reply)["code"] == "60018" and not streams


@pytest.mark.parametrize(("venue", "replay"), [("binance-spot", binance_spot_replay), ("coinbase", coinbase_replay)])
def test_single_route_venues_serve_every_documented_channel_on_it(venue: str, replay: object) -> None:
    """Binance spot and Coinbase have one URL: the replay server's table is the documented one, and
    it serves every channel there."""
    documented = {channel: route for channel, (route, _) in _documented_routes()[venue].items()}
    assert {name: route for route, names in replay.VENUE_ROUTES.items() for name in names} == documented  # type: ignore[attr-defined]
    protocol = PROTOCOLS[venue]([])  # type: ignore[call-arg]
    for channel, (route, path) in _documented_routes()[venue].items():
        assert protocol.route_of(path) == route and protocol.serves(route, f"{channel}:BTC-USD")


def test_binance_channels_span_two_routes_and_long_lists_split() -> None:
    connection = BinanceUsdmConnection(["BTCUSDT", "ETHUSDT"])
    routes = connection.routes()
    assert [(r.name, r.channels, r.book_channel, r.quiet_channels) for r in routes] == [
        ("market", ("aggTrade", "markPrice@1s", "forceOrder"), "", ("forceOrder",)),
        ("public", ("depth@100ms", "bookTicker"), "depth@100ms", ())]
    assert routes[0].url == ("wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/"
                             "btcusdt@forceOrder/ethusdt@aggTrade/ethusdt@markPrice@1s/ethusdt@forceOrder")
    assert routes[1].url.startswith("wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms/")
    assert BinanceUsdmConnection(["BTCUSDT"], channels=("forceOrder",)).routes()[0].first_data_within_s is None
    many = BinanceUsdmConnection([f"S{i}USDT" for i in range(250)]).routes()
    assert [r.name for r in many] == ["market", "market-2", "market-3", "market-4", "public", "public-2", "public-3"]
    assert all(len(r.url.partition("streams=")[2].split("/")) <= 200 for r in many)
    with pytest.raises(UnknownChannel, match="known stream families"):
        BinanceUsdmConnection(["BTCUSDT"], channels=("depthh",))
    with pytest.raises(VenueLimitExceeded, match="1000 subscriptions"):
        hyperliquid.HyperliquidConnection([f"C{i}" for i in range(300)])


def test_binance_tradfi_perpetuals_and_monthly_futures_are_instruments() -> None:
    body = json.dumps({"serverTime": 1765000000000, "symbols": [
        {"symbol": "XAUUSDT", "contractType": "TRADIFI_PERPETUAL", "baseAsset": "XAU", "quoteAsset": "USDT",
         "marginAsset": "USDT", "status": "TRADING", "underlyingType": "COMMODITY",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                     {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"}]},
        {"symbol": "BTCUSDT_251226", "contractType": "CURRENT_MONTH", "baseAsset": "BTC", "quoteAsset": "USDT",
         "deliveryDate": 1766736000000, "status": "TRADING", "filters": []}]}).encode()
    (xau, month), unreadable = exchange_info_instruments(body, 0, {})
    assert not unreadable
    assert (xau.instrument, xau.kind, xau.tick_size, xau.funding_interval_s) == ("XAU-USDT-PERP", "perpetual", 0.01,
                                                                                  28800)
    assert (month.instrument, month.kind) == ("BTC-USDT-20251226", "future")


async def _binance(route_paths: dict[str, str] | None = None, silent_after_s: float = 10.0,
                   seconds: float | None = None) -> tuple[CollectingSink, FeedHandler, ReplayServer]:
    server = ReplayServer("binance-usdm", list(read_frames(CRYPTOFEED_RUN)), speed=20)
    await server.start()
    sink = CollectingSink()
    paths = {**binance_usdm.ROUTE_PATHS, **(route_paths or {})}
    connection = BinanceUsdmConnection(CRYPTOFEED_SYMBOLS, ws_base=server.url, rest_base=server.rest_url,
                                       channels=("aggTrade", "depth@100ms", "bookTicker", "kline_1m"),
                                       route_paths=paths, reconnect_interval_s=0.05)
    from normalize.venues.binance_usdm import BinanceUsdm

    handler = FeedHandler(connection, BinanceUsdm(), sink, None,
                          HandlerConfig(backoff_initial_s=0.2, backoff_max_s=1.0, silent_after_s=silent_after_s,
                                        poll_interval_s=3600))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    if seconds is None:
        await server.drained(timeout_s=60)
        await asyncio.sleep(0.3)
        while not handler.idle():
            await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    return sink, handler, server


async def test_the_retired_root_carries_the_public_streams_only_and_silence_is_journaled(
        caplog: pytest.LogCaptureFixture) -> None:
    """Both routes pointed at the unrouted root, as the handler did before 2026-03: depth and
    bookTicker still arrive (the root is served as /public), aggTrade and klines never do. The
    silent connection is journaled `silent_after_connect` with its route and URL, and replaced
    with a growing backoff: journaled every attempt, logged once per attempt."""
    caplog.set_level(logging.INFO, logger="ingest.feed_handler")
    sink, handler, _ = await _binance({"public": "", "market": ""}, silent_after_s=0.4, seconds=4.0)
    records = sink.emitted.records
    assert not [r for r in records if isinstance(r, Trade)]
    assert {r.record_type for r in records} >= {"book_delta", "bbo"}
    journal = [r for r in records if isinstance(r, FeedStatus)]
    silent = [r for r in journal if r.event == "silent_after_connect"]
    assert silent and all("route market" in r.detail and "/stream?streams=sushiusdt@aggTrade" in r.detail
                          for r in silent)
    assert not [r for r in silent if "route public" in r.detail]
    # backoff: attempts 0.4 s of silence + 0.1-0.2, 0.2-0.4, 0.4-0.8, 0.5-1 s apart: at most 5 in 4 s
    assert 2 <= len(silent) <= 5 and handler.stats.silent_after_connect == len(silent)
    times = [r.ts_recv for r in silent]
    assert all(later - earlier >= 0.4e9 for earlier, later in itertools.pairwise(times))
    assert {r.event for r in journal} <= set(FEED_EVENTS)
    # logged: the first attempt's connect and disconnect, one warning per silent attempt, the stop
    market = {r.connection_id for r in journal if r.event == "connect" and r.detail.startswith("market ")}
    lines = [rec for rec in caplog.records if any(cid in rec.getMessage() for cid in market)]
    assert len(lines) <= len(silent) + 3
    assert sum(rec.levelno == logging.WARNING for rec in lines) == len(silent)


async def test_every_default_channel_arrives_on_its_route() -> None:
    sink, handler, server = await _binance()
    routes = {link.route.name: link.route for link in handler.links.values()}
    assert set(routes) == {"public", "market"}
    assert {client.route for client in server.clients} == set()  # all closed at the stop
    trades = [r for r in sink.emitted.records if isinstance(r, Trade)]
    assert len(trades) == 91
    assert not [r for r in sink.emitted.records if isinstance(r, FeedStatus) and r.event == "silent_after_connect"]
    assert Counter(r.event for r in sink.emitted.records if isinstance(r, FeedStatus)) == {"connect": 2,
                                                                                         "disconnect": 2}


async def test_btcusdt_six_minutes_arrive_exact_on_their_routes() -> None:
    """The real 6-minute BTCUSDT session plus mark price and liquidation fixtures, with the
    default channel families (raw trades instead of aggTrade, as recorded): each channel arrives on
    its documented route, and trades and the book equal an offline normalization to the bit."""
    from ingest.offline import normalize_frames
    from normalize.venues.binance_usdm import BinanceUsdm
    from tests.binance_data import BTCUSDT_SESSION, CRYPTOFEED_EXCHANGE_INFO, MARKET_FIXTURES

    frames = list(read_frames([CRYPTOFEED_EXCHANGE_INFO, *MARKET_FIXTURES, BTCUSDT_SESSION]))
    server = ReplayServer("binance-usdm", frames, speed=0)
    await server.start()
    sink = CollectingSink()
    connection = BinanceUsdmConnection(["BTCUSDT"], ws_base=server.url, rest_base=server.rest_url,
                                       channels=("trade", "depth@0ms", "bookTicker", "markPrice@1s", "forceOrder"))
    normalizer = BinanceUsdm()
    handler = FeedHandler(connection, normalizer, sink, None, HandlerConfig(poll_interval_s=3600))
    arrived: Counter[tuple[str, str]] = Counter()

    def count(frame: Frame) -> None:
        route = next(name for name, link in handler.links.items() if link.connection_id == frame.connection_id)
        channel = connection.channel_of(frame.payload) if frame.kind == "ws" else None
        if channel:
            arrived[route, channel] += 1

    handler.on_frame = count
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=120)
    await asyncio.sleep(0.3)
    while not handler.idle():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    assert set(arrived) == {("public", "trade"), ("public", "depth@0ms"), ("public", "bookTicker"),
                            ("market", "markPrice@1s"), ("market", "forceOrder")}
    offline, offline_normalizer = normalize_frames("binance-usdm", frames)
    def trades(records: list) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
        return sorted((t.trade_id, t.ts_event, t.price, t.size, t.side, t.flags) for t in records
                      if isinstance(t, Trade) and t.symbol == "BTCUSDT" and t.ts_event > 1_700_000_000 * 10**9)
    live = trades(sink.emitted.records)
    assert live == trades(offline.records) and len(live) > 10_000
    book, truth = normalizer.books["BTCUSDT"], offline_normalizer.books["BTCUSDT"]  # type: ignore[attr-defined]
    assert book.last_u == truth.last_u and book.breaks == 0
    assert book.book.top(1000) == truth.book.top(1000)
    assert not sink.emitted.dead_letters


async def test_okx_service_upgrade_notice_replaces_the_connection_at_once() -> None:
    """OKX announces an upgrade with `event: notice, code 64008` 30 s ahead: the handler journals it
    and reconnects now, planned, rather than dead-lettering the notice and being cut later."""
    from ingest.venues.okx.connection import OkxConnection
    from normalize.venues.okx import Okx
    from tests.okx_data import CRYPTOFEED_RUN as OKX_RUN
    from tests.okx_data import CRYPTOFEED_SYMBOLS as OKX_SYMBOLS

    frames = list(read_frames(OKX_RUN))
    ws = [i for i, f in enumerate(frames) if f.kind == "ws"]
    notice = json.dumps({"event": "notice", "code": "64008", "connId": "a4d3ae55",
                         "msg": "The connection will soon be closed for a service upgrade. Please reconnect."})
    frames.insert(ws[len(ws) // 2], Frame(frames[ws[len(ws) // 2]].ts_recv, "ws", notice.encode()))
    server = ReplayServer("okx", frames, speed=20)
    await server.start()
    sink = CollectingSink()
    connection = OkxConnection(OKX_SYMBOLS, ws_base=server.url, rest_base=server.rest_url, reconnect_interval_s=0.05)
    handler = FeedHandler(connection, Okx(), sink, None, HandlerConfig(backoff_initial_s=0.05))
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=60)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    journal = [r for r in sink.emitted.records if isinstance(r, FeedStatus)]
    assert [r.event for r in journal if r.event != "gap"][:4] == ["connect", "venue_notice", "disconnect", "connect"]
    first = journal[0].connection_id
    [planned] = [r for r in journal if r.event == "disconnect" and r.connection_id == first]
    assert planned.detail == "planned reconnect: venue notice 64008 (service upgrade)"
    assert not sink.emitted.dead_letters
    # the new connection resubscribed and every book is in sync again
    assert all(synced for _, _, synced in handler.normalizer.book_report().values())


async def test_bybit_instruments_are_read_page_by_page() -> None:
    """instruments-info pages at most 1,000 instruments (the replay server here: 3): the handler
    follows nextPageCursor until every instrument is in."""
    from ingest.venues.bybit.connection import BybitConnection
    from normalize.venues.bybit import Bybit
    from tests.bybit_data import OB500, instruments_frame

    server = ReplayServer("bybit", [instruments_frame(8), *read_frames([OB500])], speed=0)
    server.protocol.page_size = 3  # type: ignore[attr-defined]
    await server.start()
    sink = CollectingSink()
    connection = BybitConnection(["XRPUSDT"], ws_base=server.url, rest_base=server.rest_url)
    handler = FeedHandler(connection, Bybit(), sink, None, HandlerConfig())
    stop = asyncio.Event()
    task = asyncio.create_task(handler.run(stop))
    await server.drained(timeout_s=30)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 30)
    await server.stop()
    instruments = sorted(r.symbol for r in sink.emitted.records if isinstance(r, Instrument))
    assert instruments == sorted(f"S{i}USDT" for i in range(8))
    assert server.rest_requests.count("/v5/market/instruments-info") == 3
    assert not sink.emitted.dead_letters


def test_handler_metrics_are_scraped_with_every_counter() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from ticklake.metrics import HandlerCollector

    handler = FeedHandler(BinanceUsdmConnection(["BTCUSDT"]), __import__("normalize.venues.binance_usdm",
                          fromlist=["BinanceUsdm"]).BinanceUsdm(), CollectingSink())
    handler.stats.silent_after_connect = 3
    registry = CollectorRegistry()
    registry.register(HandlerCollector(lambda: [handler]))
    text = generate_latest(registry).decode()
    assert 'ticklake_handler_silent_after_connect_total{shard="",venue="binance-usdm"} 3.0' in text
    assert "ticklake_handler_backfills_total" in text


def test_probe_names_the_channel_a_wrong_route_leaves_silent(tmp_path: Path) -> None:
    """`ticklake probe` against the replay server: on the documented routes every channel of the
    capture arrives (exit 0); with /market pointed at the retired root, aggTrade and the klines stay
    silent and the probe exits 1 naming them."""
    channels = "aggTrade,depth@100ms,bookTicker,kline_1m"
    for route_args, code in (([], 0), (["--route", "market="], 1)):
        with replay_server_process("binance-usdm", CRYPTOFEED_RUN, speed="10") as port:
            result = subprocess.run(
                [TICKLAKE, "probe", "binance-usdm", "--symbols", ",".join(CRYPTOFEED_SYMBOLS), "--channels", channels,
                 "--seconds", "4", "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
                 "--textfile", str(tmp_path / "probe.prom"), *route_args],
                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == code, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        metrics = (tmp_path / "probe.prom").read_text()
        assert f'ticklake_probe_ok{{venue="binance-usdm"}} {1.0 - code}' in metrics
        rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in result.stdout.splitlines()
                if line.startswith("│")]
        if code == 0:
            assert "probe failed" not in result.stdout
            assert {(row[0], row[1], row[-1]) for row in rows if row[0]} == {
                ("market", "aggTrade", "ok"), ("market", "kline_1m", "ok"), ("public", "bookTicker", "ok"),
                ("public", "depth@100ms", "ok")}
            assert re.search(r"\d+ diffs in sequence, 0 breaks; 4/4 books", result.stdout)
        else:
            assert re.search(r"probe failed: no frame in 4 s from aggTrade on route market \(ws://127\.0\.0\.1:\d+"
                             r"/stream\?streams=", result.stdout.replace("\n", ""))
            assert "kline_1m on route market" in result.stdout.replace("\n", "")
            assert ('ticklake_probe_channel_frames{channel="aggTrade",quiet="false",route="market",'
                    'venue="binance-usdm"} 0.0') in metrics
