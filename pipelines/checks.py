"""Asset checks: the data-quality functions of pipelines/quality.py over each run's days.

On every `sealed_<type>`: `no_duplicate_keys` (one row per key_columns) and `ts_event_in_order`
(no ts_event step back within an instrument, in file order). On `sealed_bbo`: `no_crossed_books`
(derived BBO from ticklake's own books never crossed or flagged MAYBE_BAD_BOOK). On
`sealed_feed_status`: `completeness`, the gap journal's events and a completeness score per venue
and day (WARN below MIN_COMPLETENESS). On each time-bar asset: `bars_consistent` (low <= open,
close <= high; volume and trade count equal the bar's trades); on bars_1s and bars_1m also
`live_bars_equal_sealed` (the day's live bars in TimescaleDB equal them bit for bit: pipelines/live_bars.py).
On the venue analytics: `spot_perp_basis` `legs_in_bucket` (both legs quoted in the row's minute, basis
within bounds), `term_structure` `curve_sane` (expiries strictly ordered, annualization sane),
`funding_comparison` `intervals_known` and `rates_in_bounds`.

A check covers every day of its run (one, or a backfill range) and fails if any day fails; its
metadata holds the numbers per day and up to 20 offending rows.
"""

import datetime as dt
from collections.abc import Callable, Iterable

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from normalize.flags import SNAPSHOT
from normalize.records import RECORD_TYPES
from pipelines import bars, quality
from pipelines.assets_bars import TIME_BARS
from pipelines.assets_seal import sealed_key
from pipelines.lake_io import partition_venues, read_day, read_derived, read_partition
from pipelines.live_bars import RESOLUTIONS, read_live_bars
from pipelines.partitions import run_days
from pipelines.resources import LakeResource, TimescaleResource
from pipelines.timescale_tables import TIMESCALE_TABLES
from storage.record_keys import key_names, keys_of

MIN_COMPLETENESS = 0.99
"""A venue-day below this completeness score makes the completeness check fail (WARN)."""
FAILURE_ROWS = 20


def _rows(frame: pl.DataFrame) -> MetadataValue:
    """The first offending rows, JSON-safe (times and dates as ISO text)."""
    head = frame.head(FAILURE_ROWS).with_columns(pl.col(pl.Datetime, pl.Date).cast(pl.String))
    return MetadataValue.json(head.to_dicts())


def _result(days: Iterable[tuple[dt.date, quality.Check]]) -> AssetCheckResult:
    """One result for the run's days: passed when every day passed; numbers per day and in total."""
    per_day = list(days)
    totals: dict[str, int | float] = {}
    for _, check in per_day:
        for name, value in check.metadata.items():
            totals[name] = totals.get(name, 0) + value
    failures = [check.failures.with_columns(pl.lit(day).alias("day")) for day, check in per_day
                if not check.passed and check.failures.height]
    metadata: dict[str, object] = {**totals, "days": MetadataValue.json(
        {day.isoformat(): check.metadata for day, check in per_day})}
    if failures:
        metadata["failures"] = _rows(pl.concat(failures, how="diagonal_relaxed"))
    return AssetCheckResult(passed=all(check.passed for _, check in per_day), metadata=metadata)  # type: ignore[arg-type]


def _per_venue(lake: LakeResource, record_type: str, day: dt.date,
               check: Callable[[pl.DataFrame], quality.Check]) -> quality.Check:
    """`check` over each venue's partition of the day (bounded memory), merged into one Check."""
    results = [check(read_partition(lake.root, record_type, venue, day))
               for venue in partition_venues(lake.root, record_type, day)]
    metadata: dict[str, int | float] = {}
    for result in results:
        for name, value in result.metadata.items():
            metadata[name] = metadata.get(name, 0) + value
    failures = [r.failures for r in results if r.failures.height]
    return quality.Check(all(r.passed for r in results), metadata,
                         pl.concat(failures, how="diagonal_relaxed") if failures else pl.DataFrame())


def _sealed_checks(record_type: str) -> list[AssetChecksDefinition]:
    sealed = sealed_key(record_type)
    keys = key_names(record_type)

    @asset_check(asset=sealed, name="no_duplicate_keys",
                 description=f"No two rows of a sealed `{record_type}` partition share {', '.join(keys)}.")
    def no_duplicate_keys(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        return _result((day, _per_venue(lake, record_type, day,
                                        lambda df: quality.duplicate_keys(keys_of(df, record_type), keys)))
                       for day in run_days(context))

    @asset_check(asset=sealed, name="ts_event_in_order",
                 description="Within each instrument, ts_event never steps back in the sealed files' order.")
    def ts_event_in_order(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        return _result((day, _per_venue(lake, record_type, day, quality.out_of_order)) for day in run_days(context))

    return [no_duplicate_keys, ts_event_in_order]


@asset_check(asset=sealed_key("bbo"), name="no_crossed_books",
             description="BBO derived from ticklake's own books is never crossed (bid >= ask) nor MAYBE_BAD_BOOK.")
def no_crossed_books(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    return _result((day, _per_venue(lake, "bbo", day, quality.crossed_books)) for day in run_days(context))


def _book_days_and_snapshots(lake: LakeResource, day: dt.date) -> pl.DataFrame:
    """What completeness needs of the day's book deltas: SNAPSHOT rows (a book whole again) and one row
    per venue (the venue had book data that day), read one venue at a time."""
    frames = []
    for venue in partition_venues(lake.root, "book_delta", day):
        deltas = read_partition(lake.root, "book_delta", venue, day)
        frames.append(pl.concat([deltas.head(1), deltas.filter((pl.col("flags") & SNAPSHOT) != 0)]))
    return pl.concat(frames) if frames else read_day(lake.root, "book_delta", day)


@asset_check(asset=sealed_key("feed_status"), name="completeness", additional_deps=[sealed_key("book_delta")],
             description="Gap journal events and the completeness score (1 - seconds of book or connection "
                         f"outage / 86400) per venue and day; WARN below {MIN_COMPLETENESS}.")
def completeness(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    tables = [quality.completeness(read_day(lake.root, "feed_status", day), _book_days_and_snapshots(lake, day))
              .filter(pl.col("date") == day) for day in run_days(context)]
    table = pl.concat(tables)
    low = table.filter(pl.col("completeness") < MIN_COMPLETENESS)
    scores = table.with_columns(pl.col("date").cast(pl.String)).to_dicts()
    return AssetCheckResult(passed=low.is_empty(), severity=AssetCheckSeverity.WARN, metadata={
        "min_completeness": float(table["completeness"].min()) if table.height else 1.0,  # type: ignore[arg-type]
        "gaps": int(table["gaps"].sum()), "venue_days": table.height, "scores": MetadataValue.json(scores)})


def _bar_check(every: str) -> AssetChecksDefinition:
    @asset_check(asset=AssetKey(f"bars_{every}"), name="bars_consistent", additional_deps=[sealed_key("trade")],
                 description="low <= open, close <= high, and each bar's volume and trade count equal its trades'.")
    def bars_consistent(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        return _result((day, quality.bar_consistency(read_derived(lake.root, f"bars_{every}", day, bars.BAR_SCHEMA),
                                                     read_day(lake.root, "trade", day)))
                       for day in run_days(context))

    return bars_consistent


def _live_bars_check(every: str) -> AssetChecksDefinition:
    @asset_check(asset=AssetKey(f"bars_{every}"), name="live_bars_equal_sealed",
                 description=f"The day's {every} live bars in TimescaleDB (bars_live) equal these sealed bars bit "
                             "for bit; a day without live bars (loaded afterwards) passes.")
    def live_bars_equal_sealed(context: AssetCheckExecutionContext, lake: LakeResource,
                               timescale: TimescaleResource) -> AssetCheckResult:
        with timescale.connect() as conn:
            return _result((day, quality.same_bars(read_live_bars(conn, every, day),
                                                   read_derived(lake.root, f"bars_{every}", day, bars.BAR_SCHEMA)))
                           for day in run_days(context))

    return live_bars_equal_sealed


def _derived_check(asset: str, name: str, check: Callable[[pl.DataFrame], quality.Check],
                   description: str) -> AssetChecksDefinition:
    """`check` over each day of a derived analytics table (its columns as published to TimescaleDB)."""
    @asset_check(asset=AssetKey(asset), name=name, description=description)
    def derived_check(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        return _result((day, check(read_derived(lake.root, asset, day, TIMESCALE_TABLES[asset].columns)))
                       for day in run_days(context))

    return derived_check


CHECKS: list[AssetChecksDefinition] = [
    *(check for record_type in RECORD_TYPES for check in _sealed_checks(record_type)),
    no_crossed_books, completeness,
    *(_bar_check(every) for every in TIME_BARS),
    *(_live_bars_check(every) for every in RESOLUTIONS),
    _derived_check("spot_perp_basis", "legs_in_bucket", quality.basis_legs,
                   "Both legs of every row quoted within its minute with a positive mid, and |basis| at most "
                   f"{quality.MAX_BASIS_BPS:g} bps."),
    _derived_check("term_structure", "curve_sane", quality.term_structure_sane,
                   "Within each curve and minute the expiries rise strictly with rank 1, 2, ...; days to expiry "
                   f"positive; |annualized basis| at most {quality.MAX_ANNUALIZED_BASIS:g} a day or more out."),
    _derived_check("funding_comparison", "intervals_known", quality.funding_intervals_known,
                   f"Every perpetual's funding interval is one of {quality.FUNDING_INTERVALS_S} s."),
    _derived_check("funding_comparison", "rates_in_bounds", quality.funding_rates_in_bounds,
                   f"Funding restated per 8 hours within ±{quality.MAX_FUNDING_8H:g}."),
]
