"""Trades stored long after their event time, marked for the live bars.

`ticklake sink live-bars` (pipelines/live_bars.py) rebuilds a trailing window: the trades whose event
time lies at most LATE_NS before the bus time of the last message the Timescale sinks committed. Some
trades reach the database later than that: a trade backfill's (the trades a restarted handler fetched
by id, seconds to minutes old), a handler's spool sent after a bus outage, a recorded market replayed
with its own clock. For a batch holding such trades the sink adds a row with the span of their event
times to ticklake_late_trades, in the batch's transaction; each pass of the live bars reads the rows,
rebuilds the minutes of their span and deletes exactly the rows it read (a batch committed meanwhile
leaves its row for the next pass). Without it, the day's live bars would miss those trades and differ
from its sealed bars."""

from __future__ import annotations

from collections.abc import Iterable

from normalize.records import Trade

LATE_NS = 10 * 10**9
"""How far before its message's bus time a trade's event time may lie and still be in the live bars'
trailing window; a trade older than that is marked late."""
KEPT_DAYS = 7
"""Days of live bars kept (LiveBarsConfig.keep_days). A trade older than that is not marked: no live bar
holds it, and a recorded market of years ago replayed on its own clock leaves no marks behind."""
_TS_EVENT = Trade.__struct_fields__.index("ts_event")


def late_span(rows: Iterable[tuple[object, ...]], bus_time_ns: int) -> tuple[int, int] | None:
    """Pure: the first and last event time of the trade rows (contract order) that are late for a
    message stored at `bus_time_ns` (and within KEPT_DAYS of it), or None when none is."""
    cutoff, kept = bus_time_ns - LATE_NS, bus_time_ns - KEPT_DAYS * 86_400 * 10**9
    late = [ts for row in rows if isinstance(ts := row[_TS_EVENT], int) and kept <= ts < cutoff]
    return (min(late), max(late)) if late else None


def merge(spans: Iterable[tuple[int, int] | None]) -> tuple[int, int] | None:
    """Pure: the span covering every span given (None: none)."""
    present = [span for span in spans if span is not None]
    return (min(s[0] for s in present), max(s[1] for s in present)) if present else None
