"""One `sealed_<type>` asset per record type: the day's lake partitions of that type, compacted.

Materializing `sealed_trade` for 2024-08-08 seals `trade/venue=*/date=2024-08-08/` for every venue
(pipelines/seal.py); everything derived from trades depends on it, so bars of a closed day are
computed from sealed, deduplicated files. Today's open day is never sealed (seal_day refuses it):
`ticklake pipelines run` computes its derived assets from the files present, without these.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)

from normalize.records import RECORD_TYPES
from pipelines.partitions import SINGLE_RUN, run_days
from pipelines.resources import LakeResource
from pipelines.seal import SealResult, seal_day


def seal_metadata(results: list[SealResult]) -> dict[str, object]:
    """Per day and venue: files and rows before and after; totals and the compaction rate."""
    per_day: dict[str, dict[str, object]] = {}
    for r in results:
        per_day.setdefault(r.day.isoformat(), {})[r.venue] = {
            "files_before": r.files_before, "rows_before": r.rows_before, "files_after": r.files_after,
            "rows_after": r.rows_after, "generation": r.generation, "already_sealed": r.skipped}
    seconds = sum(r.seconds for r in results if not r.skipped)
    compacted = sum(r.rows_before for r in results if not r.skipped)
    return {"days": MetadataValue.json(per_day), "rows": sum(r.rows_after for r in results),
            "duplicates_removed": sum(r.duplicates_removed for r in results),
            "rows_per_second": round(compacted / seconds) if seconds > 0 else 0}


def sealed_key(record_type: str) -> AssetKey:
    """The key of `record_type`'s sealed asset, for dependencies and checks."""
    return AssetKey(f"sealed_{record_type}")


def _sealed_asset(record_type: str, partitions: PartitionsDefinition) -> AssetsDefinition:
    @asset(key=sealed_key(record_type), partitions_def=partitions, backfill_policy=SINGLE_RUN, group_name="lake",
           kinds={"parquet"},
           description=f"The day's `{record_type}` lake partitions, every venue: compacted into sorted files "
                       "with one row per key, verified, and recorded in the seal manifest.")
    def sealed(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        results = [result for day in run_days(context) for result in seal_day(lake.root, day, [record_type])]
        for r in results:
            context.log.info(f"{record_type} {r.venue} {r.day}: {r.files_before} files, {r.rows_before:,} rows -> "
                             f"{r.files_after} files, {r.rows_after:,} rows")
        return MaterializeResult(metadata=seal_metadata(results))  # type: ignore[arg-type]

    return sealed


def sealed_assets(partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """One sealed asset per record type, over `partitions`."""
    return [_sealed_asset(record_type, partitions) for record_type in RECORD_TYPES]
