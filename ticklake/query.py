"""The query API: one call returns a Polars frame whether the rows are live (TimescaleDB) or history
(the Parquet lake).

    from ticklake import query
    q = query.connect()                      # the configured lake and database (`ticklake config`)
    q.trades("binance-usdm", "BTC-USDT-PERP", "2024-08-08", "2024-08-09")
    q.bars("1m", venue="okx", start="2022-05-13", end="2022-05-14")
    q.book_at("BTC-USDT-PERP", "2024-08-08T23:59:00Z", venue="binance-usdm", depth=10)

The reads and the watermark that stitches the two stores are storage/query.py's; this shell adds the
configured stores (the embedded stack's database when it is up) and bars, which need the pipelines'
bar maths.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from storage import query as store
from storage.query import DERIVED, END_OF_TIME, Names, Time, interval_ns, names, to_ns
from ticklake.settings import load_settings
from ticklake.stack import local

BAR_INTERVALS = ("1s", "1m", "5m", "1h", "1d")
"""Intervals the pipelines build as `bars_<interval>` assets."""
__all__ = ["BAR_INTERVALS", "Query", "connect", "to_ns"]


class Query(store.Query):
    """storage.query.Query plus bars."""

    def bars(self, interval: str = "1m", venue: Names = None, instrument: Names = None, start: Time = 0,
             end: Time = END_OF_TIME) -> pl.DataFrame:
        """OHLCV time bars (columns of pipelines/bars.py) with `ts` in [start, end).

        Days up to the latest the pipelines have built (`bars_<interval>` in the lake, sealed days) are
        read; the rest (today, days not sealed or not built yet, or any other interval) is computed from
        trades here, with the same code, over whole buckets."""
        from pipelines.bars import time_bars  # the pipelines package imports Dagster: only when needed

        start_ns, end_ns = to_ns(start), to_ns(end)
        venues, instruments = names(venue), names(instrument)
        every = interval_ns(interval)
        built = {v: self._bars_built(interval, v) for v in (venues or self._lake_venues("trade"))}
        stored = [(self.derived(f"bars_{interval}", start_ns, min(end_ns, mark), v), mark)
                  for v, mark in built.items() if mark > start_ns]
        parts = [self._select_rows(frame, instruments, "ts", start_ns, min(end_ns, mark))
                 for frame, mark in stored if frame.height]
        # the rest from trades, over whole buckets: from the earliest watermark (0 for a venue only live)
        live_from = start_ns if venues is None else max(start_ns, min(built.values(), default=0))
        if end_ns > live_from:
            trades = self.trades(venues, instruments, live_from // every * every, -(-end_ns // every) * every)
            mark = pl.col("venue").replace_strict(built, default=0, return_dtype=pl.Int64)
            trades = trades.filter(pl.col("ts_event").dt.epoch("ns") >= mark)
            parts.append(self._select_rows(time_bars(trades, interval), None, "ts", start_ns, end_ns))
        parts = [p for p in parts if p.height]
        if not parts:
            return time_bars(pl.DataFrame(schema=self._schema("trade")), interval)
        return pl.concat(parts, how="vertical_relaxed").sort("venue", "instrument", "ts")

    def _bars_built(self, interval: str, venue: str) -> int:
        """Midnight after the latest day the pipelines built `bars_<interval>` for, bounded by the watermark
        (today's partial bars, built unsealed on demand, are never read); 0 for an interval they do not build."""
        if interval not in BAR_INTERVALS:
            return 0
        days = self._days_in(f"{self._base}/{DERIVED}/bars_{interval}", venue, 0, END_OF_TIME)
        built = to_ns(max(days) + dt.timedelta(days=1)) if days else 0
        return min(built, self.watermark("trade", venue))


def connect() -> Query:
    """A Query over the configured lake and database (settings as `ticklake config` shows them; the
    embedded stack's database when it is up, the lake alone when it is not)."""
    settings = load_settings()
    try:
        dsn: str | None = local.pg_dsn(settings)
    except local.StackNotUp:
        dsn = None
    return Query(settings.lake_root, dsn)
