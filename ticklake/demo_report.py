"""The report at the end of `ticklake demo`, from counts only (no I/O): rich tables for the terminal
and JSON (`$TICKLAKE_HOME/demo/report.json`) for scripts, tests and notebooks."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from ticklake.demo_counts import BAR_ASSETS


@dataclass(frozen=True)
class SessionResult:
    venue: str
    label: str
    frames: int
    """WebSocket frames the replay server played to the handler."""


@dataclass(frozen=True)
class RunResult:
    day: dt.date
    run_id: str
    success: bool


@dataclass
class DemoReport:
    home: str
    lake_root: str
    dsn: str
    """Masked: safe to print."""
    nats_url: str
    sessions: list[SessionResult]
    records: dict[str, dict[str, tuple[int, int]]]
    """Record type -> venue -> (rows in Timescale, rows in the lake), before the pipelines ran."""
    feed_events: dict[str, dict[str, int]]
    gap_flagged: dict[str, int]
    normalizer_dead_letters: dict[str, int]
    sink_dead_letters: int
    runs: list[RunResult]
    bars: dict[str, dict[dt.date, int]]
    """Bar asset -> day -> rows in the lake."""
    other_days: int
    """UTC days that hold rows but no trades (books only, funding history, fixtures): not sealed."""
    retention: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    look: dict[str, str] = field(default_factory=dict)
    """What to run to look at the data (notebooks, Dagster UI, SQL prompt, ...) -> the command."""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def venues(self) -> list[str]:
        return sorted({s.venue for s in self.sessions})

    @property
    def mismatches(self) -> list[tuple[str, str]]:
        """(record type, venue) whose rows differ between Timescale and the lake."""
        return [(table, venue) for table, per_venue in self.records.items()
                for venue, (db_rows, lake_rows) in per_venue.items() if db_rows != lake_rows]

    @property
    def venues_without_market_data(self) -> list[str]:
        return [v for v in self.venues if not all(self.records.get(t, {}).get(v, (0, 0))[0] for t in ("trade",
                                                                                                     "book_delta"))]

    @property
    def ok(self) -> bool:
        return (not self.mismatches and not self.venues_without_market_data and not self.sink_dead_letters
                and all(run.success for run in self.runs))

    def to_json(self) -> str:
        return json.dumps({
            "ok": self.ok, "home": self.home, "lake_root": self.lake_root, "dsn": self.dsn, "nats_url": self.nats_url,
            "sessions": [{"venue": s.venue, "label": s.label, "frames": s.frames} for s in self.sessions],
            "records": {table: {venue: {"timescale": db_rows, "lake": lake_rows}
                                for venue, (db_rows, lake_rows) in per_venue.items()}
                        for table, per_venue in self.records.items()},
            "feed_events": self.feed_events, "gap_flagged": self.gap_flagged,
            "dead_letters": {"normalizers": self.normalizer_dead_letters, "sinks": self.sink_dead_letters},
            "runs": [{"day": r.day.isoformat(), "run_id": r.run_id, "success": r.success} for r in self.runs],
            "bars": {asset: {day.isoformat(): rows for day, rows in per_day.items()}
                     for asset, per_day in self.bars.items()},
            "other_days": self.other_days, "retention": self.retention, "stack": self.stack, "look": self.look,
            "seconds": self.seconds,
        }, indent=2) + "\n"

    def render(self, console: Console) -> None:
        console.print(self._sessions_table())
        console.print(self._records_table())
        console.print(self._journal_table())
        console.print(self._pipelines_table())
        console.print(f"{self.other_days} more UTC days hold rows but no trades (books only, funding history, "
                      "fixtures): in both stores, not sealed; `ticklake pipelines run --from D --to D` does them.")
        for line in self.retention:
            console.print(line, soft_wrap=True)
        console.print("\n[bold]Where things are[/bold]")
        for name, value in (("TICKLAKE_HOME", f"{self.home}   (raw captures: capture/, logs: demo/logs/, "
                                                  "this report: demo/report.json)"),
                            ("lake", f"{self.lake_root}   (<type>/venue=<v>/date=<d>/, derived/<asset>/...)"),
                            ("TimescaleDB", f"{self.dsn}   (a table per record type; bars_1m, bars_5m, ...)"),
                            ("bus", f"{self.nats_url}   (stream TICKS)")):
            console.print(f"  {name:<14}{value}", soft_wrap=True)
        for line in self.stack:
            console.print(f"  {line}", soft_wrap=True)
        console.print("\n[bold]Look at the data[/bold]")
        for name, command in self.look.items():
            console.print(f"  {name:<14}{command}", soft_wrap=True)
        timings = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in self.seconds.items())
        verdict = "[green]demo ok[/green]" if self.ok else "[red]demo FAILED[/red]: " + "; ".join(self._problems())
        console.print(f"\n{verdict} ({timings})", soft_wrap=True)

    def _problems(self) -> list[str]:
        problems = [f"{table} {venue}: Timescale and lake differ" for table, venue in self.mismatches]
        problems += [f"{venue}: no trades or no book rows" for venue in self.venues_without_market_data]
        problems += [f"{run.day}: pipelines run failed ({run.run_id})" for run in self.runs if not run.success]
        if self.sink_dead_letters:
            problems.append(f"{self.sink_dead_letters} envelopes the sinks could not decode")
        return problems

    def _records_table(self) -> Table:
        """A row per venue listing its record types' rows (ten venues as columns did not fit a terminal):
        one number where both stores hold it, `TimescaleDB / lake` in red where they differ."""
        table = Table("venue", "rows per record type, in TimescaleDB and in the Parquet lake alike",
                      title="Records landed (both sinks, exactly once; red: TimescaleDB / lake differ)")
        for venue in self.venues:
            cells = []
            for record_type, per_venue in self.records.items():
                db_rows, lake_rows = per_venue.get(venue, (0, 0))
                if db_rows or lake_rows:
                    cells.append(f"{record_type} {db_rows:,}" if db_rows == lake_rows
                                 else f"[red]{record_type} {db_rows:,} / {lake_rows:,}[/red]")
            table.add_row(venue, ", ".join(cells) or "-")
        return table

    def _sessions_table(self) -> Table:
        table = Table("venue", "recorded session (bundled captures)", "frames replayed",
                      title="Replayed through the live handlers")
        for session in self.sessions:
            table.add_row(session.venue, session.label, f"{session.frames:,}")
        return table

    def _journal_table(self) -> Table:
        table = Table("venue", "feed_status events (the gap journal)", "rows flagged GAP_BEFORE",
                      "frames the normalizer rejected", title="Gaps and dead letters")
        for venue in self.venues:
            events = ", ".join(f"{event} {rows}" for event, rows in self.feed_events.get(venue, {}).items())
            table.add_row(venue, events or "-", f"{self.gap_flagged.get(venue, 0):,}",
                          f"{self.normalizer_dead_letters.get(venue, 0):,}")
        if self.sink_dead_letters:
            table.add_row("sinks", "", "", f"[red]{self.sink_dead_letters:,} envelopes[/red]")
        return table

    def _pipelines_table(self) -> Table:
        short = [asset.removeprefix("bars_") for asset in BAR_ASSETS]
        table = Table("UTC day", "Dagster run", *short, title="Pipelines (day seal, bars, funding, analytics, "
                                                               "checks): bar rows per day")
        for run in self.runs:
            state = "ok" if run.success else "[red]FAILED[/red]"
            table.add_row(run.day.isoformat(), f"{state} {run.run_id[:8]}",
                          *(f"{self.bars.get(asset, {}).get(run.day, 0):,}" for asset in BAR_ASSETS))
        return table
