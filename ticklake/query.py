"""The query API: one call returns a Polars frame whether the rows are live (TimescaleDB) or history
(the Parquet lake).

    from ticklake import query
    q = query.connect()                      # the configured lake and database (`ticklake config`)
    q.trades("binance-usdm", "BTC-USDT-PERP", "2024-08-08", "2024-08-09")
    q.scan_trades("binance-usdm", "BTC-USDT-PERP", "2024-08-08", "2024-08-09")   # a LazyFrame
    q.bars("1m", venue="okx", start="2022-05-13", end="2022-05-14")
    q.book_at("BTC-USDT-PERP", "2024-08-08T23:59:00Z", venue="binance-usdm", depth=10)

The reads and the watermark that stitches the two stores are storage/query.py's; this shell adds the
configured stores (the embedded stack's database when it is up) and bars, which need the pipelines'
bar maths. docs/query-api.md describes every call and the errors it raises.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ingest.venues.registry import VENUES
from storage import query as store
from storage.pg import DatabaseUnavailable
from storage.query import (
    DERIVED,
    END_OF_TIME,
    LakeOnlyWarning,
    Names,
    QueryError,
    Time,
    interval_ns,
    names,
    time_range,
    to_ns,
)
from ticklake.settings import load_settings
from ticklake.stack import local

BAR_INTERVALS = ("1s", "1m", "5m", "1h", "1d")
"""Intervals the pipelines build as `bars_<interval>` assets (each divides a day)."""
__all__ = ["BAR_INTERVALS", "DatabaseUnavailable", "LakeOnlyWarning", "Query", "QueryError", "connect", "to_ns"]


class Query(store.Query):
    """storage.query.Query plus bars, knowing every venue ticklake speaks."""

    venue_ids = tuple(VENUES)

    def bars(self, interval: str = "1m", venue: Names = None, instrument: Names = None, start: Time = 0,
             end: Time = END_OF_TIME) -> pl.DataFrame:
        """OHLCV time bars (columns of pipelines/bars.py) with `ts` in [start, end).

        A day's bars are read from what the pipelines built (`bars_<interval>` in the lake) when they
        built it and the day's trades are sealed; every other stretch of the range (today, a day not
        sealed or not built, whatever the latest sealed day is, or an interval they do not build such as
        "15m") is computed from trades here, with the same code, over whole buckets."""
        from pipelines.bars import time_bars  # the pipelines package imports Dagster: only when needed

        start_ns, end_ns = time_range(start, end)
        every = interval_ns(interval)
        venues = self._checked_venues(names(venue))
        instruments = names(instrument)
        self._check_instruments("trade", instruments)
        stored = {v: self._stored_bar_days(interval, v, start_ns, end_ns)
                  for v in (venues or self._lake_venues("trade"))}
        parts = [self._select_rows(self._scan(self._derived_files(f"bars_{interval}", v, days)), instruments, "ts",
                                   start_ns, end_ns).collect()
                 for v, days in stored.items() if days]
        # computed from trades: every stretch of the range some venue has not stored, over whole buckets
        everywhere = set.intersection(*map(set, stored.values())) if stored else set()
        skipped = pl.DataFrame([(v, day) for v, days in stored.items() for day in days], orient="row",
                               schema={"venue": pl.String, "day": pl.Date})
        for first, last in _outside(everywhere, start_ns, end_ns):
            trades = self.trades(venues, instruments, first // every * every,
                                 min(-(-last // every) * every, END_OF_TIME))
            trades = trades.join(skipped, left_on=["venue", pl.col("ts_event").dt.date()],
                                 right_on=["venue", "day"], how="anti")
            parts.append(self._select_rows(time_bars(trades, interval).lazy(), None, "ts", start_ns, end_ns).collect())
        parts = [p for p in parts if p.height]
        if not parts:
            return time_bars(pl.DataFrame(schema=self._schema("trade")), interval)
        return pl.concat(parts, how="vertical_relaxed").sort("venue", "instrument", "ts")

    def _stored_bar_days(self, interval: str, venue: str, start_ns: int, end_ns: int) -> list[dt.date]:
        """Days [start_ns, end_ns) touches whose `bars_<interval>` the pipelines built and whose trades are
        sealed: bars built for a day not sealed (today's, built on demand) may miss trades."""
        if interval not in BAR_INTERVALS:
            return []
        built = self._days_in(f"{self._base}/{DERIVED}/bars_{interval}", venue, start_ns, end_ns)
        return [day for day in built if self.sealed("trade", venue, day)]


def _outside(days: set[dt.date], start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """The stretches of [start_ns, end_ns), in ns, that none of `days` covers."""
    stretches, cursor = [], start_ns
    for day in sorted(days):
        if to_ns(day) > cursor:
            stretches.append((cursor, min(to_ns(day), end_ns)))
        cursor = max(cursor, to_ns(day + dt.timedelta(days=1)))
    if cursor < end_ns:
        stretches.append((cursor, end_ns))
    return [(first, last) for first, last in stretches if first < last]


def connect(strict: bool = False) -> Query:
    """A Query over the configured lake and database (settings as `ticklake config` shows them). The
    embedded stack's database when `ticklake up` started one, the lake alone when it never did; a
    database that is configured but down (after `ticklake down`, say) is found unreachable at the first
    read that needs it: the lake alone then, with one LakeOnlyWarning, or DatabaseUnavailable if `strict`."""
    settings = load_settings()
    try:
        dsn: str | None = local.pg_reader_dsn(settings)  # the read-only role where there is one
    except local.StackNotUp:
        dsn = None
    return Query(settings.lake_root, dsn, strict=strict)
