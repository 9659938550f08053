"""`ticklake demo`: every venue's bundled real captures through the real system, then the pipelines
and a report.

1. The stack: the embedded PostgreSQL+TimescaleDB and nats-server (`ticklake up`) unless
   TICKLAKE_PG_DSN / TICKLAKE_NATS_URL name servers; migrations; the selfcheck.
2. The stores are emptied of an earlier demo run's data (ticklake/demo_state.py), so a rerun lands
   and reports exactly what one run does.
3. Each recorded session of `SESSIONS` is served by its own `ticklake replay-server` on a free port
   and read by its own `ticklake ingest` child pointed at it: the live handler, unchanged (raw
   capture, normalizer, books and snapshots, publishing), with both sinks running
   (ticklake/run_all.py `ProcessTree`). One server per session rather than per venue: sessions
   recorded years apart cannot share one playback clock, and each has its own channels. A handler
   is stopped once its server reports every frame written to its socket (`GET /_replay`), so it
   reads them all, publishes and exits, and the next session starts (`PARALLEL` at once); then the
   sinks drain the stream and stop.
4. The Dagster daily job (seal, bars, funding, analytics, checks) for each UTC day with trades
   from the first sessions' (`FIRST_DAY`, Coinbase and Kraken) on: Binance spot's last trades, after
   midnight, make 2024-08-09 one too. Days with other rows only (a few Binance USD-M book diffs after
   midnight, Bybit's book day, 67 days of Hyperliquid funding history, scattered fixtures) and the
   fixtures' older trade days stay unsealed, as a live lake's current day does: a day's run costs
   about 4 s whatever it holds.
5. The report (ticklake/demo_report.py), also written to `$TICKLAKE_HOME/demo/report.json`.

Children's output goes to `$TICKLAKE_HOME/demo/logs/`; Dagster's to `demo/logs/pipelines.log`.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.runner import run_days
from storage.migrate import migrate
from storage.pg import connect
from storage.retention import apply_retention
from ticklake import demo_counts
from ticklake.demo_report import DemoReport, RunResult, SessionResult
from ticklake.demo_state import DemoError, Stores, prepare, stream_messages
from ticklake.logs import stderr_to
from ticklake.recordings import RECORDINGS
from ticklake.run_all import ProcessTree, child, stop
from ticklake.selfcheck import run_selfcheck
from ticklake.settings import Settings, mask_url
from ticklake.stack import local
from ticklake.stack.health import nats_health, postgres_health
from ticklake.stack.ports import free_port, wait_listening

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
"""The analyst notebooks, in a checkout of the repository (they are not package data)."""
_BINANCE = "binance_usdm"
_OKX = "okx"
_BYBIT = "bybit"
_HYPERLIQUID = "hyperliquid"
_BINANCE_SPOT = "binance_spot"
_DERIBIT = "deribit"
_BITMEX = "bitmex"
_COINBASE = "coinbase"
_KRAKEN = "kraken"
_KRAKEN_FUTURES = "kraken_futures"
_BINANCE_INFO = f"{_BINANCE}/rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt"
SINK_ARGS = {"timescale": [], "parquet": ["--flush-age", "2"]}
"""The lake sink flushes every 2 s: its buffered messages stay unacknowledged until a flush, and the
end of the run waits for both sinks to acknowledge everything."""
STALL_S = 60.0
"""A replay whose playback does not move for this long fails the demo."""
CONNECT_S = 180.0
"""A replay whose handler has not connected for this long fails the demo: eleven handlers and their servers
starting at once on a loaded 2-core machine took up to a minute to connect."""
PARALLEL = 5
"""Sessions replayed at once, the next starting as one ends. All eleven at once (twenty-two processes on a
loaded 2-core machine) slowed Binance's 6-minute BTCUSDT session so much that its /market route, whose
few fixture frames come first, sat silent past the handler's 30 s stale limit and reconnected."""
CATCH_UP_S = 180.0
FIRST_DAY = dt.date(2021, 4, 17)
"""The demo runs the pipelines for the trade days of its sessions, the first (Coinbase and Kraken) recorded
on this day. The fixtures' scattered trades of 2019 and 2020 stay unsealed, like the days with other rows
only: a day's run costs about 4 s, and `ticklake pipelines run --from D` does any of them."""


@dataclass(frozen=True)
class Session:
    """One recorded session: the captures one replay server serves and the handler that reads them."""

    venue: str
    label: str
    captures: tuple[str, ...]
    """Paths under RECORDINGS (package data, so an installed ticklake has them): WebSocket frames and the
    REST bodies (metadata, snapshots) served."""
    symbols: tuple[str, ...]
    channels: tuple[str, ...] = ()
    """The venue's channel names, as recorded; empty: the venue's default set."""
    speed: float = 0.0
    """Replay speed; 0 plays as fast as the handler reads."""


SESSIONS: tuple[Session, ...] = (
    Session("binance-usdm", "4 symbols, 2021-07-22, 30 s (cryptofeed)",
            (_BINANCE_INFO, f"{_BINANCE}/ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt",
             f"{_BINANCE}/rest_depth_snapshot.cryptofeed.BINANCE_FUTURES.http.0.0.txt"),
            ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"), ("aggTrade", "depth@100ms", "bookTicker"),
            # at 10x the four REST snapshots (2 a second) land inside the 30 s session, not after it
            speed=10),
    Session("binance-usdm", "BTCUSDT 2024-08-08, 6 min (hftbacktest) + fixtures",
            (_BINANCE_INFO, f"{_BINANCE}/ws_depth0ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz",
             f"{_BINANCE}/markPriceUpdate.tardis-fixture.jsonl", f"{_BINANCE}/forceOrder.tardis-fixture.jsonl",
             f"{_BINANCE}/trade.tardis-fixture.jsonl", f"{_BINANCE}/openInterest.tardis-generated.jsonl"),
            ("BTCUSDT", "ETHUSDT", "BTCBUSD_210129"),
            ("trade", "depth@0ms", "bookTicker", "markPrice", "markPrice@1s", "forceOrder")),
    Session("okx", "3 instruments, 2022-05-13, 11 s (cryptofeed) + fixtures",
            (f"{_OKX}/rest_instruments_spot+swap+futures.cryptofeed.OKX.0.txt",
             f"{_OKX}/ws_books+trades+tickers.cryptofeed.OKX.ws.1.0.txt", f"{_OKX}/funding-rate.tardis-fixture.jsonl",
             f"{_OKX}/mark-price.tardis-fixture.jsonl", f"{_OKX}/index-tickers.tardis-fixture.jsonl",
             f"{_OKX}/open-interest.tardis-fixture.jsonl"),
            ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT", "WNCG-USDT-SWAP", "SOS-USDT-SWAP", "FIL-USDT-220325")),
    Session("bybit", "XRPUSDT book, 2024-12-01, 5 s (Bybit history) + fixtures",
            (f"{_BYBIT}/orderbook.500.XRPUSDT_2024-12-01.jsonl", f"{_BYBIT}/publicTrade.tardis-fixture.jsonl",
             f"{_BYBIT}/tickers.tardis-fixture.jsonl", f"{_BYBIT}/allLiquidation.tardis-fixture.jsonl"),
            ("XRPUSDT", "LTCUSDT", "BTCUSDT", "PIPPINUSDT")),
    Session("hyperliquid", "BTC 2025-01-26, 25 s (hftbacktest) + REST + fixture",
            (f"{_HYPERLIQUID}/ws_l2Book+trades.btc_20250126.hftbacktest.gz",
             f"{_HYPERLIQUID}/rest_info_meta+fundingHistory_BTC.vcr-cassette.yaml",
             f"{_HYPERLIQUID}/activeAssetCtx.tardis-fixture.jsonl"),
            ("BTC", "MOODENG")),
    Session("binance-spot", "BTCUSDT 2024-08-08, 6 min (hftbacktest), beside the USD-M perpetual's",
            (f"{_BINANCE_SPOT}/ws_depth100ms+trade+bookTicker+rest_snapshot.btcusdt_20240808.hftbacktest.gz",),
            ("BTCUSDT",), ("trade", "depth@100ms", "bookTicker")),
    Session("deribit", "10 options, 2021-07-22, 31 s (cryptofeed) + fixtures",
            (f"{_DERIBIT}/rest_instruments+config.cryptofeed.DERIBIT.0.txt",
             f"{_DERIBIT}/ws_book_raw+ticker.cryptofeed.DERIBIT.ws.1.0.txt",
             # the recorded options did not trade in those 31 s: the perpetual's trades and tickers
             f"{_DERIBIT}/trades.tardis-fixture.jsonl", f"{_DERIBIT}/ticker.tardis-fixture.jsonl"),
            ("BTC-24SEP21-8000-P", "BTC-30JUL21-24000-P", "ETH-30JUL21-2800-C", "BTC-31DEC21-34000-P",
             "BTC-24SEP21-34000-P", "BTC-24JUN22-15000-C", "BTC-31DEC21-300000-C", "ETH-27AUG21-4000-P",
             "BTC-25MAR22-30000-C", "ETH-23JUL21-2300-C", "BTC-PERPETUAL")),
    Session("bitmex", "10 symbols, 2021-07-22, 31 s (cryptofeed) + fixtures",
            (f"{_BITMEX}/rest_instrument_active+config.cryptofeed.BITMEX.0.txt",
             f"{_BITMEX}/ws_orderBookL2+quote+trade.cryptofeed.BITMEX.ws.1.0.txt",
             f"{_BITMEX}/instrument.tardis-fixture.jsonl", f"{_BITMEX}/liquidation.tardis-fixture.jsonl"),
            ("XRPU21", "UNIUSDT", "XBTUSD", "ADAUSDT", "SOLUSDT", "TRXU21", "EOSUSDT", "TRXUSDT", "BCHUSD",
             "MATICUSDT")),
    Session("coinbase", "10 products, 2021-04-17, 31 s (cryptofeed, Exchange feed)",
            (f"{_COINBASE}/rest_products+config.cryptofeed.COINBASE.0.txt",
             f"{_COINBASE}/ws_level2+ticker+match.cryptofeed.COINBASE.ws.28.0.txt"),
            ("SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP", "CRV-EUR",
             "SKL-GBP")),
    Session("kraken", "10 pairs, 2021-04-17, 31 s (cryptofeed v1, restated as v2)",
            (f"{_KRAKEN}/rest_AssetPairs+config.cryptofeed.KRAKEN.0.txt",
             f"{_KRAKEN}/ws_book+trade+ticker.v2-GENERATED-from-the-v1-capture.txt"),
            ("WAVES/EUR", "XMR/USD", "KSM/BTC", "GRT/ETH", "SC/EUR", "ETH/CHF", "OCEAN/BTC", "OMG/USD", "BTC/CHF",
             "ADA/BTC")),
    Session("kraken-futures", "3 perpetuals and 7 futures, 2021-07-22, 31 s (cryptofeed)",
            (f"{_KRAKEN_FUTURES}/rest_instruments+config.cryptofeed.KRAKEN_FUTURES.0.txt",
             f"{_KRAKEN_FUTURES}/ws_book+ticker+trade.cryptofeed.KRAKEN_FUTURES.ws.1.0.txt"),
            ("FI_ETHUSD_211231", "PI_XRPUSD", "PI_LTCUSD", "FI_BCHUSD_210730", "PI_ETHUSD", "FI_XBTUSD_210924",
             "FI_ETHUSD_210730", "FI_BCHUSD_210924", "FI_XRPUSD_210924", "FI_XBTUSD_210730")),
)
"""The demo's data: every venue's bundled recordings that the replay server can serve."""


@dataclass
class _Replay:
    """A session's replay server (a `ticklake replay-server` child) and its handler."""

    session: Session
    name: str
    port: int
    server: subprocess.Popen[bytes]
    handler: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ingest_args(self) -> list[str]:
        args = ["--venue", self.session.venue, "--symbols", ",".join(self.session.symbols),
                "--ws-url", f"ws://{self.url}", "--rest-url", f"http://{self.url}",
                "--clock", "recorded"]  # the sessions keep the receive times they were recorded with
        return args + (["--channels", ",".join(self.session.channels)] if self.session.channels else [])

    def status(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://{self.url}/_replay", timeout=5) as response:
            return dict(json.loads(response.read()))


def session_files(session: Session) -> list[Path]:
    """The session's recordings, where the installed package keeps them."""
    paths = [RECORDINGS / path for path in session.captures]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise DemoError(f"the demo's recordings are missing ({', '.join(missing)}): reinstall ticklake")
    return paths


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _start(tree: ProcessTree, number: int, session: Session, logs: Path) -> _Replay:
    """A session's replay server, then (once it listens) its handler."""
    name, port = f"{number}-{session.venue}", free_port()
    server = child(["replay-server", session.venue, *map(str, session_files(session)), "--port", str(port),
                    "--speed", str(session.speed)], logs / f"replay-{name}.log")
    replay = _Replay(session, name, port, server)
    if not wait_listening(replay.port, 60):
        stop(server)
        raise DemoError(f"the replay server of {session.venue} did not start: see {logs / f'replay-{name}.log'}")
    replay.handler = tree.start_ingest(replay.ingest_args(), name=f"ingest-{name}")
    return replay


def _follow(tree: ProcessTree, replays: list[_Replay], logs: Path, progress: Progress) -> list[tuple[Session, int]]:
    """Start the sessions, at most PARALLEL at once (each started replay is appended to `replays`, so the
    caller stops every server there is, whatever fails); show each one's progress; stop its handler (it
    publishes everything it read) once the server has written every frame to the socket."""
    waiting = list(enumerate(SESSIONS, 1))
    tasks = {number: progress.add_task(f"{session.venue}: {session.label}", total=None) for number, session in waiting}
    played: dict[str, int] = {}
    moved: dict[str, float] = {}
    unanswered: dict[str, float] = {}
    active: list[_Replay] = []
    while active or waiting:
        while waiting and len(active) < PARALLEL:
            number, session = waiting.pop(0)
            replay = _start(tree, number, session, logs)
            replays.append(replay)
            active.append(replay)
            played[replay.name], moved[replay.name] = 0, time.monotonic()
        if tree.stopping:  # SIGINT/SIGTERM: the children got it too and stop on their own
            raise DemoError("interrupted")
        if not tree.sinks_running():
            raise DemoError(f"a sink stopped: see {logs}/sink-*.log")
        for replay in list(active):
            handler_log = logs / f"ingest-{replay.name}.log"
            assert replay.handler is not None
            if replay.handler.poll() is not None:
                raise DemoError(f"the {replay.session.venue} handler exited early: see {handler_log}")
            try:
                status = replay.status()
            except TimeoutError:  # a server busy playing on a loaded machine: asked again, for up to STALL_S
                unanswered.setdefault(replay.name, time.monotonic())
                if time.monotonic() - unanswered[replay.name] > STALL_S:
                    raise DemoError(f"the {replay.session.venue} replay server stopped answering: see "
                                    f"{logs / f'replay-{replay.name}.log'}") from None
                continue
            except OSError as exc:
                raise DemoError(f"the {replay.session.venue} replay server stopped answering ({exc}): see "
                                f"{logs / f'replay-{replay.name}.log'}") from None
            unanswered.pop(replay.name, None)
            frames, now_played = int(status["frames"]), int(status["played"])  # type: ignore[call-overload]
            progress.update(tasks[int(replay.name.partition("-")[0])], total=frames, completed=now_played)
            if now_played != played[replay.name]:
                played[replay.name], moved[replay.name] = now_played, time.monotonic()
            if status["done"]:
                tree.stop_ingest(replay.handler)
                active.remove(replay)
            elif time.monotonic() - moved[replay.name] > (STALL_S if now_played or status["clients"] else CONNECT_S):
                raise DemoError(f"the {replay.session.venue} replay stalled at {now_played:,} of {frames:,} frames: "
                                f"see {handler_log}")
        time.sleep(0.2)
    return [(replay.session, played[replay.name]) for replay in replays]


def _land(stores: Stores, logs: Path, progress: Progress) -> list[tuple[Session, int]]:
    """Replay every session through handlers, the bus and both sinks, until the sinks hold it all.
    The replay servers stop last: one gone before its handler has read the socket to the end could
    reset the connection under unread frames."""
    replays: list[_Replay] = []
    try:
        with ProcessTree(stores.nats_url, SINK_ARGS, logs) as tree:
            played = _follow(tree, replays, logs, progress)
            drain = progress.add_task("sinks: bus messages written to TimescaleDB and the lake", total=None)
            most = [0]

            def show(left: int) -> None:
                most[0] = max(most[0], left)
                progress.update(drain, total=most[0], completed=most[0] - max(left, 0))

            code = tree.finish(CATCH_UP_S, show)
    finally:
        for replay in replays:
            stop(replay.server)
    if code:
        raise DemoError(f"a handler or sink exited with code {code}: see {logs}")
    return played


def _stack(settings: Settings, console: Console) -> Stores:
    """Start what is not configured, migrate, check every hop; then empty an earlier demo's data."""
    local.up(settings)
    stores = Stores(local.pg_dsn(settings), local.nats_url(settings), settings.lake_root)
    applied = migrate(local.pg_owner_dsn(settings))  # the tables' owner (the superuser of a secure stack)
    console.print(f"  database {mask_url(stores.dsn)} ({len(applied)} migrations applied), bus "
                  f"{mask_url(stores.nats_url)}, lake {stores.lake_root}", soft_wrap=True)
    if not run_selfcheck(stores.dsn, stores.nats_url, settings.home).ok:
        raise DemoError("the selfcheck failed: `ticklake selfcheck` says where")
    console.print("  selfcheck passed: every record type through the codec, JetStream, TimescaleDB and Parquet")
    removed = prepare(stores, settings.home)
    if removed:
        console.print(f"  emptied what the previous demo run left: {removed}", soft_wrap=True)
    return stores


def _pipelines(settings: Settings, stores: Stores, days: list[dt.date], logs: Path,
               progress: Progress) -> list[RunResult]:
    task = progress.add_task("pipelines: UTC days sealed, bars, funding, analytics, checks", total=len(days))
    runs = []
    with stderr_to(logs / "pipelines.log"):
        for run in run_days(days, ticklake_home=settings.home, lake_root=stores.lake_root, pg_dsn=stores.dsn):
            runs.append(RunResult(run.day, run.run_id, run.success))
            progress.advance(task)
    return runs


def _retention(settings: Settings, stores: Stores) -> list[str]:
    """`ticklake db retention --dry-run`, summed up."""
    with connect(stores.dsn) as conn:
        plans = [plan for plan, _ in apply_retention(conn, stores.lake_root, settings.retention_days, time.time_ns(),
                                                     dry_run=True)]
    unsealed = sum(len(plan.unsealed) for plan in plans)
    lacking = [f"{plan.table} {venue} {day}" for plan in plans for venue, day, _, _ in plan.missing]
    line = (f"Retention (dry run, keep {settings.retention_days} days): {sum(plan.checked_days for plan in plans)} "
            f"table-venue-days checked; {unsealed} kept because the lake has not sealed them")
    return [line + (f"; kept because the lake holds fewer rows: {', '.join(lacking)}" if lacking else "")]


def _stack_health(stores: Stores) -> list[str]:
    """`ticklake status`, one line per server."""
    return [f"{h.name:<14}{'healthy' if h.ok else 'UNHEALTHY'}: {h.detail}"
            for h in (postgres_health(stores.dsn), nats_health(stores.nats_url))]


def _shown(path: Path) -> str:
    """`path` relative to the working directory when inside it (as `make demo` runs), else absolute."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _look(stores: Stores, lake: str) -> dict[str, str]:
    """Commands to look at what the demo landed (the notebooks where they are: in a checkout)."""
    look = {}
    if NOTEBOOKS.is_dir():
        jupyter = Path(sys.executable).with_name("jupyter")
        look["notebooks"] = f"{_shown(jupyter)} lab {_shown(NOTEBOOKS)}/"
        if not jupyter.exists():
            pip = _shown(Path(sys.executable).with_name("pip"))
            look["notebooks"] = f"{pip} install -c constraints.txt -e '.[notebooks]'; {look['notebooks']}"
    return look | {"Dagster UI": "ticklake pipelines dev   (then http://127.0.0.1:3000)",
                   "SQL prompt": f'psql "{mask_url(stores.dsn)}"',
                   "Polars": f'pl.scan_parquet("{lake}/trade/**/*.parquet", hive_partitioning=True)',
                   "query API": "python -c 'from ticklake import query; print(query.connect().trades())'"}


def run_demo(settings: Settings, console: Console) -> DemoReport:
    """Run the demo (see the module docstring), print its report and write it as JSON."""
    started = time.monotonic()
    seconds: dict[str, float] = {}
    logs = settings.home / "demo" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()

    console.print("[bold]1. The stack[/bold]")
    stores = _stack(settings, console)
    seconds["stack"] = time.monotonic() - started

    console.print(f"[bold]2. {len(SESSIONS)} recorded sessions replayed into the live handlers, the bus and both "
                  "sinks[/bold]")
    step = time.monotonic()
    with _progress(console) as progress:
        played = _land(stores, logs, progress)
    seconds["replay"] = time.monotonic() - step

    with connect(stores.dsn) as conn:
        records = demo_counts.record_counts(conn, stores.lake_root)
        feed_events, gap_flagged = demo_counts.feed_events(conn), demo_counts.gap_flagged(conn)
    days = demo_counts.trade_days(records, FIRST_DAY, dt.datetime.now(dt.UTC).date())

    console.print(f"[bold]3. The Dagster daily job for the {len(days)} UTC days with trades[/bold]")
    step = time.monotonic()
    with _progress(console) as progress:
        runs = _pipelines(settings, stores, days, logs, progress)
    seconds["pipelines"] = time.monotonic() - step

    lake = stores.lake_root if "://" in stores.lake_root else str(Path(stores.lake_root).absolute())
    data_days = {day for per_day in records.values() for _, day in per_day}
    report = DemoReport(
        home=str(settings.home.absolute()), lake_root=lake, dsn=mask_url(stores.dsn),
        nats_url=mask_url(stores.nats_url),
        sessions=[SessionResult(session.venue, session.label, frames) for session, frames in played],
        records=demo_counts.per_venue(records), feed_events=feed_events, gap_flagged=gap_flagged,
        normalizer_dead_letters=demo_counts.normalizer_dead_letters(settings.home),
        sink_dead_letters=stream_messages(stores.nats_url, ("DEADLETTER",)).get("DEADLETTER", 0),
        runs=runs, bars=demo_counts.bar_rows(stores.lake_root, days), other_days=len(data_days - set(days)),
        retention=_retention(settings, stores), stack=_stack_health(stores), look=_look(stores, lake))
    seconds["total"] = time.monotonic() - started
    report.seconds = {name: round(value, 1) for name, value in seconds.items()}
    (settings.home / "demo" / "report.json").write_text(report.to_json())
    console.print("[bold]4. Report[/bold]")
    report.render(console)
    return report
