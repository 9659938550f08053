"""The `ticklake` command line."""

from __future__ import annotations

import datetime as dt
import errno
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from ingest.capture_formats import CaptureFormatError
from ingest.venues.interface import UnknownChannel, VenueLimitExceeded
from ingest.venues.names import UnknownInstrument
from storage.migrate import MigrationError, migrate
from storage.parquet_sink import ManifestBehind, ParquetSink, ParquetSinkConfig
from storage.pg import DatabaseUnavailable, connect
from storage.sink_consumer import JetStreamSink
from storage.timescale_features import apply_full_edition
from storage.timescale_sink import SinkConfig, TimescaleSink
from ticklake import __version__
from ticklake.bus_auth import BusAuthError, bus_auth
from ticklake.demo_state import DemoError
from ticklake.settings import Settings, SettingsError, load_settings, mask_url
from ticklake.stack import local
from ticklake.stack.health import Health, nats_health, postgres_health
from ticklake.stack.nats import NatsError
from ticklake.stack.postgres import PostgresError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Tick-level crypto market data: handlers, bus, TimescaleDB and a Parquet lake.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema commands.")
app.add_typer(db_app, name="db")
console = Console(width=120)

USER_ERRORS = (SettingsError, DatabaseUnavailable, local.StackNotUp, MigrationError, PostgresError, NatsError,
               ManifestBehind, UnknownChannel, UnknownInstrument, VenueLimitExceeded, DemoError, CaptureFormatError,
               BusAuthError, local.StackError)
"""Errors whose message is the whole story: printed as one line, no traceback, exit code 2."""
USER_OS_ERRORS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EROFS,
                  errno.ENOSPC, errno.EADDRINUSE, errno.EADDRNOTAVAIL}
"""OSErrors about the user's paths and ports (a folder that cannot be written, a port in use): their
message names the path or address, so one line says it all."""




def _above_zero(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be above 0, not {value:g}")
    return value


def Positive(help: str) -> typer.models.OptionInfo:
    """An option of seconds (or any amount) that must be above 0: 0 or less is a usage error naming it."""
    return typer.Option(callback=_above_zero, help=help)


ConfigOption = Annotated[Path | None, typer.Option("--config", help="Feed configuration file (TOML; "
                                                                   "docs/operations.md).")]
MetricsPortOption = Annotated[int, typer.Option(min=0, max=65535, help="Serve Prometheus metrics on this port "
                                                                       "(0: off).")]


def _print_version(value: bool) -> None:
    if value:
        print(f"ticklake {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                                help="Print the installed version and exit.")] = False) -> None:
    """Tick-level crypto market data: handlers, bus, TimescaleDB and a Parquet lake."""


def _settings() -> Settings:
    return load_settings()


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked) and where each server URL comes from."""
    settings = _settings()
    table = Table("setting", "value", "source")
    table.columns[1].overflow = "fold"  # a long DSN wraps whole, rather than losing its end to an ellipsis
    home_source = "configured" if "home" in settings.model_fields_set else "default"
    table.add_row("TICKLAKE_HOME", str(settings.home.absolute()), home_source)
    for name, value, resolve in (("TICKLAKE_PG_DSN", settings.pg_dsn, local.pg_dsn),
                                 ("TICKLAKE_PG_READER_DSN", settings.pg_reader_dsn, local.pg_reader_dsn),
                                 ("TICKLAKE_NATS_URL", settings.nats_url, local.nats_url)):
        try:
            shown = mask_url(resolve(settings))
        except local.StackNotUp:
            table.add_row(name, "-", "embedded, not up")
            continue
        if value:
            source = "configured"
        elif name == "TICKLAKE_PG_READER_DSN" and (settings.pg_dsn or not local.load_state(settings).secure):
            source = "as TICKLAKE_PG_DSN"
        else:
            source = "embedded (ticklake up)"
        table.add_row(name, shown, source)
    table.add_row("TICKLAKE_LAKE", settings.lake_root, "configured" if settings.lake else "default")
    for name, shown, source in _security_rows(settings):
        table.add_row(name, shown, source)
    console.print(table)


def _security_rows(settings: Settings) -> list[tuple[str, str, str]]:
    """The credentials in use, never their values: where each password comes from, the TLS files."""
    rows = [(f"TICKLAKE_{name.upper()}", "***", source) for name in ("pg_password", "pg_reader_password")
            if (source := settings.secret_source(name))]
    if local.load_state(settings).secure:
        rows.append(("embedded stack", f"secure: secrets in {settings.home.absolute() / 'secrets'}",
                     "ticklake up --secure"))
    try:
        url = local.nats_url(settings)
    except local.StackNotUp:
        url = settings.nats_url or ""
    auth = bus_auth(settings, url)
    embedded = "embedded (ticklake up --secure)"
    if auth.user:
        rows.append(("TICKLAKE_NATS_USER", auth.user, "configured" if settings.nats_user else embedded))
    if auth.password is not None:
        rows.append(("TICKLAKE_NATS_PASSWORD", "***", settings.secret_source("nats_password") or embedded))
    for name, path in (("TICKLAKE_NATS_TLS_CA", auth.ca), ("TICKLAKE_NATS_TLS_CERT", auth.cert),
                       ("TICKLAKE_NATS_TLS_KEY", auth.key)):
        if path is not None:
            rows.append((name, str(path), "configured" if getattr(settings, name[9:].lower()) else embedded))
    if settings.nats_tls_first:
        rows.append(("TICKLAKE_NATS_TLS_FIRST", "true", "configured"))
    return rows


def _print_health(results: list[Health]) -> bool:
    for health in results:
        mark = "healthy  " if health.ok else "UNHEALTHY"
        console.print(f"{health.name:<9} {mark} {health.address}  {health.detail}", soft_wrap=True)
    return all(h.ok for h in results)


def _health(settings: Settings) -> list[Health]:
    results = []
    for name, resolve, probe in (("postgres", local.pg_dsn, postgres_health), ("nats", local.nats_url, nats_health)):
        try:
            results.append(probe(resolve(settings)))
        except local.StackNotUp as exc:
            results.append(Health(name, "-", False, str(exc)))
            continue
        if name == "postgres" and (reader := local.pg_reader_dsn(settings)) != resolve(settings):
            health = postgres_health(reader, "TICKLAKE_PG_READER_DSN")
            results.append(Health("reader", health.address, health.ok, health.detail))
    return results


@app.command()
def up(
    secure: Annotated[bool, typer.Option(help="Require passwords and TLS from now on (docs/security.md): "
                                              "scram-sha-256 roles in PostgreSQL, a user, password and TLS in "
                                              "nats-server; the secrets are generated under $TICKLAKE_HOME/secrets. "
                                              "A stack running without them must be stopped first.")] = False,
) -> None:
    """Start the embedded PostgreSQL+TimescaleDB and nats-server (unless URLs are configured)."""
    settings = _settings()
    local.up(settings, secure=secure)
    if not _print_health(_health(settings)):
        raise typer.Exit(1)


@app.command()
def down(
    purge: Annotated[bool, typer.Option(help="Also remove everything the stack created: the embedded database "
                                             "(wherever it lives), the bus store, and the home's captures, spool, "
                                             "dead letters, pipeline history, logs and default lake.")] = False,
) -> None:
    """Stop only what `ticklake up` started."""
    settings = _settings()
    stopped = local.down(settings)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing started by `ticklake up` is running")
    if purge:
        removed = local.purge(settings)
        for path in removed:
            console.print(f"removed {path}", soft_wrap=True)
        if not removed:
            console.print("nothing to remove")


@app.command()
def status() -> None:
    """Report the health of both servers; exit 1 when one is unhealthy."""
    if not _print_health(_health(_settings())):
        raise typer.Exit(1)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (a no-op when up to date); on TimescaleDB's full edition also its
    compression policies and continuous aggregate (storage/timescale_features.py)."""
    dsn = local.pg_owner_dsn(_settings())  # DDL: the tables' owner
    applied = migrate(dsn)
    if applied:
        for migration in applied:
            console.print(f"applied {migration.version:04d}_{migration.name}")
    else:
        console.print("schema is up to date")
    with connect(dsn) as conn:
        if apply_full_edition(conn):
            console.print("full edition: compression policies and the trade_ohlcv_1m continuous aggregate in place")


@db_app.command("retention")
def db_retention(
    keep_days: Annotated[int | None, typer.Option(min=0, help="Days to keep (default: "
                                                              "TICKLAKE_RETENTION_DAYS).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would be dropped; drop nothing.")] = False,
) -> None:
    """Drop hypertable chunks older than the kept days, but only days the Parquet lake holds."""
    import time

    from storage.retention import apply_retention

    settings = _settings()
    days = settings.retention_days if keep_days is None else keep_days
    with connect(local.pg_owner_dsn(settings)) as conn:  # drop_chunks needs the hypertables' owner
        results = apply_retention(conn, settings.lake_root, days, time.time_ns(), dry_run=dry_run)
    for plan, dropped in results:
        cutoff = dt.datetime.fromtimestamp(plan.cutoff_ns / 1e9, dt.UTC).date()
        verb = "would drop chunks" if dry_run else f"dropped {dropped} chunks"
        console.print(f"{plan.table:<12} {verb} before {cutoff} ({plan.checked_days} venue-days checked)")
        for venue, day, db_rows, lake_rows in plan.missing:
            console.print(f"  kept {venue} {day}: {db_rows:,} rows in Timescale, {lake_rows:,} in the lake")
        for venue, day in plan.unsealed:
            console.print(f"  kept {venue} {day}: not sealed in the lake yet")


@app.command()
def selfcheck(
    keep: Annotated[bool, typer.Option(help="Leave the check's Parquet files in place.")] = False,
) -> None:
    """End-to-end check of the stack: every record type through the codec, JetStream,
    TimescaleDB and Parquet, compared value by value."""
    from ticklake.selfcheck import run_selfcheck

    settings = _settings()
    report = run_selfcheck(_database_url(settings), _bus_url(settings), settings.home, keep=keep)
    for line in report.lines:
        console.print(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command("normalize")
def normalize_command(
    venue: Annotated[str, typer.Argument(help="Venue id, e.g. binance-usdm.")],
    captures: Annotated[list[Path], typer.Argument(help="Capture files of one run (any supported format).")],
    out: Annotated[Path, typer.Option("--out", help="Output lake directory.")],
    top_depth: Annotated[int, typer.Option(min=0, help="Also write top-N book snapshots (book_top) of this many "
                                                       "levels per side (0: none).")] = 0,
    top_every: Annotated[float, Positive(help="Seconds of receive time between top-N snapshots.")] = 1.0,
) -> None:
    """Normalize recorded captures offline (the live code path) into Parquet in the lake layout."""
    from ingest.capture_formats import read_frames
    from ingest.dead_letters import append_dead_letters
    from ingest.offline import TopSchedule, normalize_frames
    from ingest.venues.registry import NORMALIZERS
    from storage.lake_write import write_records

    if venue not in NORMALIZERS:
        raise SettingsError(f"unknown venue '{venue}' (known: {', '.join(NORMALIZERS)})")
    tops = TopSchedule(top_depth, int(top_every * 1e9)) if top_depth else None
    emitted, normalizer = normalize_frames(venue, read_frames(_captures(captures)), tops)
    written = write_records(str(out), emitted.records, part_name="normalized")
    for record_type, rows in sorted(written.items()):
        console.print(f"{record_type:<14}{rows:>10,} rows")
    for symbol, (applied, breaks, synced) in sorted(normalizer.book_report().items()):
        state = "in sync" if synced else "NOT in sync (no usable snapshot)"
        console.print(f"book {symbol:<12} {applied:>7,} diffs applied, {breaks} sequence breaks, {state}")
    events = [r for r in emitted.records if r.record_type == "feed_status"]
    console.print(f"gap journal: {len(events)} feed_status events")
    if emitted.dead_letters:
        dead = out / "dead_letters.jsonl"
        dead.unlink(missing_ok=True)
        append_dead_letters(dead, emitted.dead_letters)
        console.print(f"dead letters: {len(emitted.dead_letters)} (written to {dead})")
    else:
        console.print("dead letters: 0")


def _captures(paths: list[Path]) -> list[Path]:
    """Capture files named on the command line, each checked to be a file (reading one that is not a
    capture raises CaptureFormatError, a user error too)."""
    for path in paths:
        if not path.is_file():
            raise SettingsError(f"capture not found: {path}")
    return paths


RouteOption = Annotated[list[str] | None, typer.Option(
    help="NAME=PATH: serve the venue's route NAME from PATH under the WebSocket base instead of the documented "
         "path (repeatable), for a venue that moved a route before ticklake was updated; check with `ticklake probe`.")]


def _route_paths(specs: list[str] | None) -> dict[str, str]:
    paths = {}
    for spec in specs or ():
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise SettingsError(f"--route takes NAME=PATH (e.g. market=/market), not '{spec}'")
        paths[name] = path
    return paths


@app.command()
def probe(
    venue: Annotated[str, typer.Argument(help="Venue id, e.g. binance-usdm.")],
    symbols: Annotated[str | None, typer.Option(help="Comma-separated instruments, as normalized ids "
                                                     "(BTC-USDT-PERP) or venue symbols (default: the venue's most "
                                                     "liquid perpetual).")] = None,
    seconds: Annotated[float, Positive(help="How long to listen.")] = 20.0,
    channels: Annotated[str | None, typer.Option(help="Comma-separated channels instead of the venue's default "
                                                      "set: standard names (trades, book, bbo, funding, "
                                                      "mark_index, open_interest, liquidations) or the "
                                                      "venue's.")] = None,
    ws_url: Annotated[str | None, typer.Option(help="WebSocket base URL override (e.g. a replay server).")] = None,
    rest_url: Annotated[str | None, typer.Option(help="REST base URL override.")] = None,
    route: RouteOption = None,
    textfile: Annotated[Path | None, typer.Option(help="Also write the result as Prometheus metrics to this file "
                                                       "(node_exporter textfile collector), for alerting.")] = None,
) -> None:
    """Connect to the live venue with the handler's own code, subscribe every default channel and
    print, per route and channel, the frames received, the first frame's latency, the book's
    sequence checks and its snapshot. Exits 1 when a channel stayed silent (liquidations may)."""
    import asyncio

    from ingest.probe import probe as run_probe
    from ingest.probe import write_textfile
    from ingest.venues.registry import CONNECTIONS, NORMALIZERS
    from ticklake.ingest_run import make_connection

    if venue not in CONNECTIONS:
        raise SettingsError(f"unknown venue '{venue}' (known: {', '.join(CONNECTIONS)})")
    names = [s for s in symbols.split(",") if s] if symbols else list(CONNECTIONS[venue].probe_symbols)
    connection = make_connection(venue, names, ws_url, rest_url,
                                 [c for c in channels.split(",") if c] if channels else None, _route_paths(route))
    report = asyncio.run(run_probe(connection, NORMALIZERS[venue](), seconds))
    if textfile is not None:
        write_textfile(report, str(textfile))
    table = Table("route", "channel", "frames", "first frame", "sequence checks", "book snapshot", "")
    for result in report.channels:
        verdict = ("quiet (sends on events only)" if result.quiet else "SILENT") if result.silent else "ok"
        first = f"{result.first_frame_s:.2f} s" if result.first_frame_s is not None else "-"
        table.add_row(result.route, result.channel, f"{result.frames:,}", first, result.checks or "-",
                      result.snapshot or "-", verdict)
    console.print(f"{venue} {','.join(report.symbols)} for {seconds:g} s", soft_wrap=True)
    console.print(table)
    events = ", ".join(f"{event} {count}" for event, count in sorted(report.journal.items()))
    console.print(f"journal: {events or 'nothing'}", soft_wrap=True)
    if not report.ok:
        silent = "; ".join(f"{c.channel} on route {c.route} ({c.url[:120]})" for c in report.failed)
        console.print(f"[red]probe failed: no frame in {seconds:g} s from {silent}[/red]", soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def ingest(
    venue: Annotated[list[str] | None, typer.Option(help="Venue id; repeat with --symbols for several feeds in one "
                                                         "process.")] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Comma-separated instruments of the matching --venue: "
                                                           "normalized ids (BTC-USDT-PERP) or venue symbols.")] = None,
    config_file: ConfigOption = None,
    feed_name: Annotated[str | None, typer.Option("--feed", help="With --config: the feed to run (its `name`, else "
                                                                 "its venue); needed when the file has several.")
                         ] = None,
    shard: Annotated[str | None, typer.Option(help="K/N: run only the symbols of shard K of N (stable hash), "
                                                   "so N processes or hosts split a symbol list.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write Parquet straight to this lake directory instead of "
                                                  "publishing to the bus.")] = None,
    ws_url: Annotated[str | None, typer.Option(help="WebSocket base URL override (e.g. a replay server).")] = None,
    rest_url: Annotated[str | None, typer.Option(help="REST base URL override.")] = None,
    duration: Annotated[float | None, Positive(help="Stop after this many seconds.")] = None,
    capture: Annotated[bool, typer.Option(help="Record raw frames under $TICKLAKE_HOME/capture.")] = True,
    metrics_port: MetricsPortOption = 0,
    top_depth: Annotated[int, typer.Option(min=0, help="Publish top-N book snapshots (book_top) of this many levels "
                                                       "per side (0: none).")] = 0,
    top_every: Annotated[float, Positive(help="Seconds between top-N snapshots (on the clock's grid).")] = 1.0,
    channels: Annotated[str | None, typer.Option(help="Comma-separated channels instead of the venue's default "
                                                      "set: standard names (trades, book, bbo, funding, mark_index, "
                                                      "open_interest, liquidations) or the venue's own (e.g. "
                                                      "trade,depth@0ms,bookTicker).")] = None,
    metadata_every: Annotated[float, Positive(help="Seconds between refreshes of the instrument metadata "
                                                   "(an instrument is published again when it changes).")] = 3600.0,
    route: RouteOption = None,
    clock_skew: Annotated[float, typer.Option(min=0, help="Journal clock_skew (one line) when every frame's receive "
                                                          "lag over 10 s is beyond this many seconds either way: "
                                                          "this host's clock is off from the venue's (0: off).")
                          ] = 5.0,
    clock: Annotated[str, typer.Option(help="local: stamp ts_recv with this host's clock (live venues); recorded: "
                                            "with the capture's own receive times, as a replay server carries them "
                                            "(replays keep their real receive times and latencies).")] = "local",
) -> None:
    """Run feed handlers: capture every frame, normalize, publish to the bus (or write a lake
    directory with --out). Stops cleanly on SIGINT/SIGTERM: everything received is published."""
    import asyncio

    from ingest.feed_handler import HandlerConfig
    from ingest.sharding import ShardError, parse_shard
    from ingest.venues.names import venue_symbols
    from ingest.venues.registry import CONNECTIONS
    from ticklake import logs
    from ticklake.ingest_run import bus_output, lake_output, plan_feeds, run_ingest

    feed_label = ""
    if config_file is not None:
        if venue or symbols:
            raise SettingsError("give --config or --venue/--symbols, not both")
        from ticklake.feed_config import feed_symbols, load_feed_config

        spec = load_feed_config(config_file).named(feed_name)
        feed_label = spec.name
        venue, symbols = [spec.venue], [",".join(feed_symbols(spec))]
        capture, top_depth, top_every, clock = spec.capture, spec.top_depth, spec.top_every_s, spec.clock
        metadata_every, ws_url, rest_url = spec.metadata_every_s, ws_url or spec.ws_url, rest_url or spec.rest_url
        channels = ",".join(spec.channels) if spec.channels else channels
    if not venue or not symbols:
        raise SettingsError("give --venue and --symbols, or --config FILE")
    for name in venue:
        if name not in CONNECTIONS:
            raise SettingsError(f"unknown venue '{name}' (known: {', '.join(CONNECTIONS)})")
    if len(venue) != len(symbols):
        raise SettingsError(f"{len(venue)} --venue but {len(symbols)} --symbols: give one --symbols per --venue")
    try:
        shard_spec = parse_shard(shard) if shard else None
    except ShardError as exc:
        raise SettingsError(str(exc)) from None
    # venue symbols before sharding: every host hashes the same names, whichever form it was given
    groups = [venue_symbols(CONNECTIONS[name], [s for s in group.split(",") if s])
              for name, group in zip(venue, symbols, strict=True)]
    feeds = plan_feeds(venue, groups, shard_spec, feed_label)
    if not feeds:
        raise SettingsError(f"shard {shard} holds none of the given symbols")
    logs.configure()
    settings = _settings()
    output = (lake_output(str(out), settings.home) if out
              else bus_output(local.nats_url(settings), settings.home, feeds, settings.bus_max_age_s,
                              settings.bus_max_bytes or -1))
    capture_root = settings.home / "capture" if capture else None
    if clock not in ("local", "recorded"):
        raise SettingsError(f"--clock takes local or recorded, not {clock!r}")
    config = HandlerConfig(top_depth=top_depth, top_every_s=top_every, metadata_every_s=metadata_every,
                           clock=clock, clock_skew_s=clock_skew if clock == "local" else 0.0)
    handlers = asyncio.run(run_ingest(feeds, output, capture_root, ws_url, rest_url, duration,
                                      metrics_port=metrics_port, config=config,
                                      channels=[c for c in channels.split(",") if c] if channels else None,
                                      route_paths=_route_paths(route)))
    for feed in feeds:
        console.print(f"feed {feed.venue} {feed.label or '-'}: {','.join(feed.symbols)}")
    for record_type, rows in sorted(output.rows.items()):
        console.print(f"{record_type:<14}{rows:>10,} rows")
    console.print(f"-> {output.destination()}")
    stats = [h.stats for h in handlers]
    console.print(f"frames {sum(s.frames for s in stats):,}, connects {sum(s.connects for s in stats)}, "
                  f"disconnects {sum(s.disconnects for s in stats)}, stale {sum(s.stale for s in stats)}, "
                  f"queue overflows {sum(s.overflows for s in stats)}", soft_wrap=True)
    console.print(f"snapshots {sum(s.snapshots for s in stats)}, trade backfills {sum(s.backfills for s in stats)}, "
                  f"REST errors {sum(s.rest_errors for s in stats)}, dead letters {output.dead_letters}",
                  soft_wrap=True)


@app.command()
def run(
    venue: Annotated[list[str] | None, typer.Option(help="Venue id; repeat with --symbols for several feeds.")
                     ] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Comma-separated instruments of the matching --venue: "
                                                           "normalized ids (BTC-USDT-PERP) or venue symbols.")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="Run the whole service from this feed "
                                                                      "configuration, supervised: restarts, schedule, "
                                                                      "health endpoint (docs/operations.md).")] = None,
    health_port: Annotated[int | None, typer.Option(min=0, max=65535, help="With --config: serve the health JSON "
                                                                           "on this port (default: the config's).")
                           ] = None,
    ws_url: Annotated[str | None, typer.Option(help="WebSocket base URL override (e.g. a replay server).")] = None,
    rest_url: Annotated[str | None, typer.Option(help="REST base URL override.")] = None,
    duration: Annotated[float | None, Positive(help="Stop after this many seconds.")] = None,
    catch_up: Annotated[float, typer.Option(min=0, help="Seconds the sinks get to drain the stream at "
                                                        "shutdown.")] = 60.0,
    metrics_port: Annotated[int, typer.Option(min=0, max=65533, help="First of three Prometheus ports: ingest, "
                                                                     "Timescale sink, Parquet sink (0: off).")] = 0,
) -> None:
    """Handlers, bus publishing and both sinks in one process tree; SIGINT/SIGTERM stops it cleanly
    (handlers publish what they hold, sinks catch up, flush, commit and acknowledge)."""
    from ticklake.run_all import run_all

    if config_file is not None:
        if venue or symbols:
            raise SettingsError("give --config or --venue/--symbols, not both")
        _supervise(config_file, health_port, duration)
        return
    if not venue or not symbols:
        raise SettingsError("give --venue and --symbols, or --config FILE")
    settings = _settings()
    nats_url = local.nats_url(settings)
    local.pg_dsn(settings)  # fail here, with the usual message, when the stack is not up
    ingest_args: list[str] = []
    if len(venue) != len(symbols):
        raise SettingsError(f"{len(venue)} --venue but {len(symbols)} --symbols: give one --symbols per --venue")
    for name, group in zip(venue, symbols, strict=True):
        ingest_args += ["--venue", name, "--symbols", group]
    for flag, value in (("--ws-url", ws_url), ("--rest-url", rest_url)):
        if value:
            ingest_args += [flag, value]
    sink_args: dict[str, list[str]] = {"timescale": [], "parquet": []}
    if metrics_port:
        ingest_args += ["--metrics-port", str(metrics_port)]
        sink_args = {"timescale": ["--metrics-port", str(metrics_port + 1)],
                     "parquet": ["--metrics-port", str(metrics_port + 2)]}
    code = run_all([ingest_args], sink_args, nats_url, duration, catch_up)
    if code:
        raise typer.Exit(code)


def _supervise(config_file: Path, health_port: int | None, duration: float | None) -> None:
    from ticklake import logs
    from ticklake.feed_config import load_feed_config
    from ticklake.supervisor import Supervisor

    config = load_feed_config(config_file)
    if health_port is not None:
        config = config.model_copy(update={"supervisor": config.supervisor.model_copy(
            update={"health_port": health_port})})
    settings = _settings()
    _database_url(settings)  # both servers checked now: one line here, not a restart loop later
    logs.configure()
    supervisor = Supervisor(config, config_file, _bus_url(settings), settings.home, settings.lake_root,
                            settings.home / "logs")
    code = supervisor.run(duration)
    if code:
        raise typer.Exit(code)


@app.command()
def schedule(
    config_file: Annotated[Path, typer.Option("--config", help="Feed configuration whose [schedule] and [capture] "
                                                               "to follow.")],
    once: Annotated[bool, typer.Option(help="Run one round and exit.")] = False,
) -> None:
    """Run on time what the service needs besides ingest and sinks: the daily pipelines for each finished UTC
    day, Timescale retention and capture pruning (docs/operations.md); `ticklake run --config` runs it."""
    import signal
    import threading

    from ticklake import logs
    from ticklake.feed_config import load_feed_config
    from ticklake.schedule import run_schedule

    config = load_feed_config(config_file)
    settings = _settings()
    logs.configure()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_schedule(config, settings, local.pg_owner_dsn(settings), stop, once)


@app.command()
def demo() -> None:
    """The demo: start the stack, replay every venue's bundled real captures through the live
    handlers, the bus and both sinks, run the pipelines for those days and report what landed.
    Each run first empties the data of the previous demo run (and refuses stores holding other data);
    the report is also written to $TICKLAKE_HOME/demo/report.json."""
    from ticklake.demo import run_demo

    report = run_demo(_settings(), console)
    if not report.ok:
        raise typer.Exit(1)


pipelines_app = typer.Typer(no_args_is_help=True, help="Dagster pipelines: day seal, bars, funding, analytics.")
app.add_typer(pipelines_app, name="pipelines")


@app.command("backfill")
def backfill_command(
    first: Annotated[str, typer.Option("--from", help="Start of the window (UTC), by receive time: YYYY-MM-DD or "
                                                      "an ISO time such as 2026-12-07T10:00.")],
    last: Annotated[str, typer.Option("--to", help="End of the window (exclusive), same forms.")],
    venue: Annotated[list[str] | None, typer.Option(help="Venue id (repeatable; default: every venue with "
                                                         "captures).")] = None,
    replace: Annotated[bool, typer.Option(help="Swap the window's rows for freshly normalized ones (after a "
                                               "normalizer fix), atomically per store; closed days only.")] = False,
) -> None:
    """Repair both stores from the raw captures of a window ($TICKLAKE_HOME/capture): re-normalize them with
    the current normalizers and load what is missing (idempotent), or --replace the window's rows; bus gaps
    the window covers are journaled `repaired`, and an audit row says what was done with which code."""
    from ticklake.backfill import BackfillError, backfill

    settings = _settings()
    start_ns, end_ns = _window_ns(first, "--from"), _window_ns(last, "--to")
    try:
        result = backfill(settings.home / "capture", settings.lake_root, local.pg_dsn(settings), start_ns, end_ns,
                          venue or (), replace)
    except BackfillError as exc:
        raise SettingsError(str(exc)) from None
    console.print(f"backfill {result.id} ({result.mode}) of {', '.join(result.venues)} from "
                  f"{len(result.captures)} capture files", soft_wrap=True)
    table = Table("table", "re-normalized", "TimescaleDB added", "TimescaleDB replaced", "lake added")
    for record_type in sorted(result.records.keys() | result.timescale_deleted.keys()):
        table.add_row(record_type, f"{result.records.get(record_type, 0):,}",
                      f"{result.timescale_added.get(record_type, 0):,}",
                      f"{result.timescale_deleted.get(record_type, 0):,}" if result.mode == "replace" else "-",
                      f"{result.lake_added.get(record_type, 0):,}")
    console.print(table)
    console.print(f"bus gaps repaired: {result.repaired}; frames rejected (dead letters): {result.dead_letters}")


def _window_ns(text: str, flag: str) -> int:
    """A date or an ISO time, UTC unless it says otherwise, as ns."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{flag} {text!r}: give a date (2026-12-07) or an ISO time (2026-12-07T10:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@pipelines_app.command("run")
def pipelines_run(
    first: Annotated[str, typer.Option("--from", help="First UTC day: YYYY-MM-DD, or 'today'.")],
    last: Annotated[str | None, typer.Option("--to", help="Last UTC day: YYYY-MM-DD, or 'today' (default: "
                                                          "--from).")] = None,
    select: Annotated[list[str] | None, typer.Option(help="Asset names (default: all).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Dagster's own log lines on the terminal (stderr) "
                                                            "instead of $TICKLAKE_HOME/logs/pipelines.log.")] = False,
) -> None:
    """Run the daily job for each UTC day of [--from, --to] that has data in the lake (a backfill; runs
    recorded in $TICKLAKE_HOME/dagster). Today's open day runs without its seal: bars, funding and analytics
    from the files present, replaced by the run after midnight, which seals the day."""
    import contextlib

    from ticklake import logs

    settings = _settings()
    log = settings.home / "logs" / "pipelines.log"
    with contextlib.nullcontext() if verbose else logs.stderr_to(log):
        from pipelines.partitions import utc_today
        from pipelines.runner import parse_day, plan_days, run_days

        today = utc_today()
        start = parse_day(first, "--from", today)
        plan = plan_days(start, parse_day(last, "--to", today) if last is not None else start,
                         lake_root=settings.lake_root, first_day=settings.pipelines_start, today=today)
        ok = True
        for result in run_days(plan.days, ticklake_home=settings.home, lake_root=settings.lake_root,
                               pg_dsn=local.pg_dsn(settings), selection=select, first_day=settings.pipelines_start):
            partial = "  today's open day: not sealed, outputs partial" if result.partial else ""
            console.print(f"{result.day}  {'ok    ' if result.success else 'FAILED'}  run {result.run_id}{partial}",
                          soft_wrap=True)
            ok = ok and result.success
    if plan.skipped:
        count = len(plan.skipped)
        console.print(f"{count:,} day{'s' if count > 1 else ''} without data in the lake: skipped")
    if not verbose:
        console.print(f"Dagster's log: {log}", soft_wrap=True)
    if not ok:
        raise typer.Exit(1)


@pipelines_app.command("dev")
def pipelines_dev(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the Dagster UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Address the Dagster UI listens on.")] = "127.0.0.1",
) -> None:
    """Start `dagster dev -m pipelines` (UI, schedules and sensors) on this stack's lake, database and
    run history ($TICKLAKE_HOME/dagster), so the UI shows the runs `ticklake pipelines run` recorded."""
    import os
    import shutil

    from pipelines.runner import pipelines_env

    settings = _settings()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if dagster is None:
        raise SettingsError("the `dagster` command is not installed in this environment")
    env = {**os.environ, **pipelines_env(settings.home, settings.lake_root, local.pg_dsn(settings))}
    os.execve(dagster, [dagster, "dev", "-m", "pipelines", "--host", host, "--port", str(port)], env)


@app.command("replay-server")
def replay_server(
    venue: Annotated[str, typer.Argument(help="Venue id whose protocol to speak.")],
    captures: Annotated[list[Path] | None, typer.Argument(help="Capture files of one run (none with --synthetic).")
                        ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 0,
    speed: Annotated[float, typer.Option(min=0, help="Playback speed: 1 real time, 10 ten times faster, 0 flat "
                                                     "out.")] = 1.0,
    skip: Annotated[list[int] | None, typer.Option(min=0, help="Playback index of a frame never to send "
                                                                "(repeatable).")] = None,
    drop_after: Annotated[int | None, typer.Option(min=0, help="Close the first connection after N frames.")] = None,
    corrupt_checksum: Annotated[list[int] | None, typer.Option(
        min=0, help="Playback index of a frame whose checksum to corrupt (repeatable).")] = None,
    clients: Annotated[int, typer.Option(min=1, help="Start playback once this many connections are open (a "
                                                     "Binance USD-M handler opens one per route: /public and "
                                                     "/market).")] = 1,
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Serve a generated market instead of captures "
                                                                "(docs/synthetic.md).")] = False,
    instruments: Annotated[str, typer.Option(help="Synthetic: a count, or base assets (BTC,ETH,...).")] = "3",
    rate: Annotated[str, typer.Option(help="Synthetic: messages a second over all instruments, e.g. "
                                           "trades=1000,book=5000,liquidations=1.")] = "",
    duration: Annotated[float, typer.Option(min=0, help="Synthetic: seconds of market (0: endless).")] = 60.0,
    start: Annotated[str, typer.Option(help="Synthetic: the market's start time, ISO 8601 UTC (default now).")] = "",
    seed: Annotated[int, typer.Option(help="Synthetic: the random seed (same seed, same market).")] = 0,
    scenario: Annotated[list[str] | None, typer.Option(help="Synthetic: burst:at=S,for=S,x=N | flash-crash:at=S,for=S "
                                                            "| outage:at=S,for=S (repeatable).")] = None,
    channel: Annotated[list[str] | None, typer.Option(help="Synthetic: venue channel to send (repeatable; default "
                                                           "the handler's default set).")] = None,
    truth: Annotated[Path | None, typer.Option(help="Synthetic: write the ground truth (every trade, final books, "
                                                     "withheld and skipped frames) here as JSON on exit.")] = None,
) -> None:
    """Serve recorded captures, or a synthetic market, as a local venue endpoint (WebSocket and REST on one port)."""
    import asyncio

    from ingest.replay_server import Faults
    from ingest.venues.registry import PROTOCOLS
    from ticklake.ingest_run import SyntheticOptions, run_replay_server

    if venue not in PROTOCOLS:
        raise SettingsError(f"unknown venue '{venue}' (known: {', '.join(PROTOCOLS)})")
    if synthetic == bool(captures):
        raise SettingsError("give capture files or --synthetic, not both" if synthetic else
                            "give capture files to replay, or --synthetic for a generated market")
    faults = Faults(drop_after=drop_after, skip=set(skip or ()), corrupt_checksum=set(corrupt_checksum or ()))
    options = SyntheticOptions.parse(instruments, rate, duration, start, seed, scenario or (), channel or (),
                                     truth) if synthetic else None
    asyncio.run(run_replay_server(venue, _captures(captures or []), port, speed, faults, clients, options))


capture_app = typer.Typer(no_args_is_help=True, help="Raw captures under $TICKLAKE_HOME/capture.")
app.add_typer(capture_app, name="capture")


@capture_app.command("prune")
def capture_prune(
    keep_days: Annotated[int | None, typer.Option(min=0, help="UTC days to keep (default: the config's [capture] "
                                                              "keep_days, else TICKLAKE_CAPTURE_KEEP_DAYS).")] = None,
    max_gib: Annotated[float | None, Positive(help="GiB the captures may take (default: the config's [capture] "
                                                   "max_gib, else TICKLAKE_CAPTURE_MAX_GIB).")] = None,
    config_file: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print what would go; remove nothing.")] = False,
) -> None:
    """Remove raw captures older than the kept days or over the size limit, oldest first, and only of UTC
    days the lake has sealed (docs/operations.md)."""
    from pipelines.partitions import utc_today
    from ticklake.capture_retention import GIB, prune_captures
    from ticklake.feed_config import load_feed_config

    settings = _settings()
    retention = load_feed_config(config_file).capture if config_file is not None else None
    days = keep_days if keep_days is not None else (retention.keep_days if retention else None)
    gib = max_gib if max_gib is not None else (retention.max_gib if retention else None)
    days = settings.capture_keep_days if days is None else days
    gib = settings.capture_max_gib if gib is None else gib
    if days is None and gib is None:
        raise SettingsError("nothing to prune by: give --keep-days or --max-gib (or set them in the config's "
                            "[capture] or as TICKLAKE_CAPTURE_KEEP_DAYS / TICKLAKE_CAPTURE_MAX_GIB)")
    plan = prune_captures(settings.home / "capture", settings.lake_root, utc_today(), days,
                          int(gib * GIB) if gib is not None else None, dry_run)
    verb = "would remove" if dry_run else "removed"
    for file, why in plan.remove:
        console.print(f"{verb} {file.path} ({file.size:,} bytes, {why})", soft_wrap=True)
    freed = sum(file.size for file, _ in plan.remove)
    console.print(f"{verb} {len(plan.remove)} capture files, {freed:,} bytes of {plan.total_bytes:,}; "
                  f"{plan.kept_unsealed} kept as their day is not sealed yet", soft_wrap=True)
    if plan.over_by:
        console.print(f"still {plan.over_by:,} bytes over {gib:g} GiB: unsealed days are never pruned", soft_wrap=True)


sink_app = typer.Typer(no_args_is_help=True, help="Sinks: the bus into TimescaleDB or the Parquet lake, exactly once.")
app.add_typer(sink_app, name="sink")

ConsumerOption = Annotated[str, typer.Option(help="Durable consumer name: the sink's offset (and manifest).")]
FilterOption = Annotated[str, typer.Option("--filter", help="Subject filter, e.g. ticks.*.binance-usdm.> to scale "
                                                            "out: one consumer name per filter.")]
BatchOption = Annotated[int, typer.Option(min=1, help="Messages per fetch.")]
AckWaitOption = Annotated[float, Positive(help="Seconds before an unacknowledged message is redelivered.")]


def _database_url(settings: Settings) -> str:
    """The database DSN, checked now: a wrong address is one line here, not a retry loop later."""
    dsn = local.pg_dsn(settings)
    health = postgres_health(dsn)
    if not health.ok:
        raise DatabaseUnavailable(health.detail)
    return dsn


def _bus_url(settings: Settings) -> str:
    """The bus URL, checked now: a wrong address is one line here, not a reconnect loop later."""
    url = local.nats_url(settings)
    health = nats_health(url)
    if not health.ok:
        raise NatsError(health.detail)
    return url


def _run_sink(sink: JetStreamSink, metrics_port: int) -> None:
    """Run until SIGINT/SIGTERM; the sink then finishes what it holds (writes, commits,
    acknowledges) before the summary line is printed."""
    import asyncio
    import signal

    from ticklake import logs, metrics

    logs.configure()
    lake = sink.config.lake if isinstance(sink, ParquetSink) else None  # its disk and the seals' state
    disks = {"home": _settings().home} | ({"lake": lake} if lake and "://" not in lake else {})
    metrics.serve(metrics_port, disks=disks, lake=lake)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await sink.run(stop)

    asyncio.run(until_signalled())
    console.print(sink.summary(), soft_wrap=True)


def _sink_options(ctx: typer.Context, config_file: Path | None, sink: str, **values: Any) -> dict[str, Any]:
    """The options as given, with the feed configuration's `[sinks.<sink>]` for those left at their default:
    a flag on the command line wins over the file, the file over the built-in default."""
    if config_file is None:
        return values
    from click.core import ParameterSource

    from ticklake.feed_config import load_feed_config

    options = load_feed_config(config_file).sinks.get(sink)  # type: ignore[call-overload]
    if options is None:
        return values
    fields = {"batch": "batch", "ack_wait": "ack_wait_s", "flush_rows": "flush_rows", "flush_age": "flush_age_s"}
    for name in values:
        configured = getattr(options, fields[name])
        if configured is not None and ctx.get_parameter_source(name) == ParameterSource.DEFAULT:
            values[name] = configured
    return values


@sink_app.command("timescale")
def sink_timescale(
    ctx: typer.Context,
    consumer: ConsumerOption = SinkConfig.consumer,
    filter_subject: FilterOption = SinkConfig.filter_subject,
    batch: BatchOption = SinkConfig.batch,
    ack_wait: AckWaitOption = SinkConfig.ack_wait_s,
    metrics_port: MetricsPortOption = 0,
    config_file: ConfigOption = None,
) -> None:
    """JetStream into the hypertables: binary COPY and the offset in one transaction, acks after the commit."""
    options = _sink_options(ctx, config_file, "timescale", batch=batch, ack_wait=ack_wait)
    batch, ack_wait = options["batch"], options["ack_wait"]
    settings = _settings()
    dsn = _database_url(settings)
    config = SinkConfig(nats_url=_bus_url(settings), pg_dsn=dsn, consumer=consumer, filter_subject=filter_subject,
                        batch=batch, ack_wait_s=ack_wait)
    _run_sink(TimescaleSink(config), metrics_port)


@sink_app.command("parquet")
def sink_parquet(
    ctx: typer.Context,
    consumer: ConsumerOption = ParquetSinkConfig.consumer,
    filter_subject: FilterOption = ParquetSinkConfig.filter_subject,
    batch: BatchOption = ParquetSinkConfig.batch,
    flush_rows: Annotated[int, typer.Option(min=1, help="Flush when the buffer holds this many rows.")] = (
        ParquetSinkConfig.flush_rows),
    flush_age: Annotated[float, Positive(help="Flush when the oldest buffered message is this many seconds "
                                              "old.")] = ParquetSinkConfig.flush_age_s,
    lake: Annotated[str | None, typer.Option(help="Lake root, a path or s3://bucket/prefix (default: "
                                                  "TICKLAKE_LAKE).")] = None,
    ack_wait: AckWaitOption = ParquetSinkConfig.ack_wait_s,
    metrics_port: MetricsPortOption = 0,
    config_file: ConfigOption = None,
) -> None:
    """JetStream into the Parquet lake: a file per type, venue and day each flush, then the manifest, then acks."""
    options = _sink_options(ctx, config_file, "parquet", batch=batch, ack_wait=ack_wait, flush_rows=flush_rows,
                            flush_age=flush_age)
    batch, ack_wait, flush_rows, flush_age = (options[name] for name in ("batch", "ack_wait", "flush_rows",
                                                                         "flush_age"))
    settings = _settings()
    config = ParquetSinkConfig(nats_url=_bus_url(settings), lake=lake or settings.lake_root, consumer=consumer,
                               filter_subject=filter_subject, batch=batch, flush_rows=flush_rows,
                               flush_age_s=flush_age, ack_wait_s=ack_wait)
    _run_sink(ParquetSink(config), metrics_port)


@sink_app.command("live-bars")
def sink_live_bars(
    interval: Annotated[float, Positive(help="Seconds between two refreshes.")] = 1.0,
) -> None:
    """Today's 1 s and 1 m bars in TimescaleDB's bars_live, rebuilt every second from the trade table with the
    sealed bars' own code (docs/timescale.md)."""
    import os
    import signal
    import threading

    stopping = threading.Event()  # before the imports below (Dagster's, seconds): a stop then is a clean one
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stopping.set())
    os.nice(10)  # derived data: capture and the sinks beside it (`ticklake run`) get the CPU first

    from pipelines.live_bars import LiveBarsConfig, run_live_bars
    from ticklake import logs

    logs.configure()
    config = LiveBarsConfig(pg_dsn=_database_url(_settings()), interval_s=interval)
    passes = [0, 0]

    def counted(start_ns: int, written: int) -> None:
        passes[0], passes[1] = passes[0] + 1, written

    run_live_bars(config, stopping, counted)
    console.print(f"live bars: {passes[0]} refreshes, {passes[1]} bars in the last window")


def main() -> None:
    """The `ticklake` script. A user's mistake, whether the command found it (USER_ERRORS) or the parser
    did (a missing or malformed option, an unknown command), is one line on stderr, `ticklake: ...`,
    and exit code 2, so scripts and people see the reason rather than a traceback or a framed panel.
    Anything else is a bug and keeps its traceback."""
    try:
        code = app(standalone_mode=False)
    except USER_ERRORS as exc:
        _user_error(str(exc))
    except typer.TyperException as exc:  # the parser's: a usage error names its command's --help
        if not exc.format_message().strip():  # a group named without a command: its help is on stdout already
            sys.exit(2)
        context = getattr(exc, "ctx", None)
        _user_error(exc.format_message() + (f" (see '{context.command_path} --help')" if context else ""))
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        _user_error(str(exc))
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _user_error(message: str) -> NoReturn:
    print(f"ticklake: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)
