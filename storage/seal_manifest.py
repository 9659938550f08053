"""Seal manifests: which lake partitions have been compacted, and the commit record of a seal.

A seal (pipelines/seal.py) rewrites one partition `<type>/venue=<v>/date=<d>/` into sorted,
deduplicated `sealed-g<generation>-<n>.parquet` files. Its manifest,
`<lake>/_manifests/seals/<type>/<venue>/<date>.json`, is both the commit record of that rewrite
and the truth about the day: `state` is `committing` while the input files are being swapped for
the outputs and `sealed` once they have been. It lives in the lake (not in TimescaleDB) so the lake
stays self-describing on any filesystem and the seal's commit point sits next to the data it
commits; it is outside the `<type>/` folders, so `<type>/**/*.parquet` globs never see it.

Retention reads it: a Timescale day is dropped only once its lake partition is sealed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

from pyarrow import fs

from normalize.records import RECORD_TYPES
from storage.lake_layout import partition_path
from storage.parquet_files import TMP_SUFFIX, filesystem_for, lake_partitions, parquet_files, write_bytes_atomic

SEALS_DIR = "_manifests/seals"
COMMITTING = "committing"
SEALED = "sealed"


@dataclass(frozen=True)
class SealedFile:
    name: str
    """File name inside the partition folder."""
    rows: int


@dataclass(frozen=True)
class SealManifest:
    record_type: str
    venue: str
    date: str
    """UTC day, YYYY-MM-DD."""
    state: str
    """COMMITTING or SEALED."""
    generation: int
    """1 for the first seal of the day, +1 for each re-seal (late files merged)."""
    key_columns: list[str]
    inputs: list[SealedFile]
    """The files this seal replaced (hidden, then deleted, during the commit)."""
    outputs: list[SealedFile]
    rows_before: int
    rows: int
    """Rows in the outputs: the number of distinct keys in the inputs."""
    sealed_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SealManifest:
        raw = json.loads(data)
        raw["inputs"] = [SealedFile(**entry) for entry in raw["inputs"]]
        raw["outputs"] = [SealedFile(**entry) for entry in raw["outputs"]]
        return cls(**raw)


def manifest_path(base: str, record_type: str, venue: str, day: dt.date) -> str:
    return f"{base.rstrip('/')}/{SEALS_DIR}/{record_type}/{venue}/{day.isoformat()}.json"


def read_manifest(filesystem: fs.FileSystem, base: str, record_type: str, venue: str,
                  day: dt.date) -> SealManifest | None:
    try:
        with filesystem.open_input_stream(manifest_path(base, record_type, venue, day)) as stream:
            return SealManifest.from_json(stream.read())
    except FileNotFoundError:
        return None


def write_manifest(filesystem: fs.FileSystem, base: str, manifest: SealManifest) -> None:
    """Replace the partition's manifest atomically (the seal's commit points)."""
    day = dt.date.fromisoformat(manifest.date)
    write_bytes_atomic(filesystem, manifest_path(base, manifest.record_type, manifest.venue, day),
                       manifest.to_json())


def sealed_days(lake_root: str, record_type: str) -> set[tuple[str, dt.date]]:
    """(venue, day) of every partition of `record_type` whose seal has committed."""
    filesystem, base = filesystem_for(lake_root)
    selector = fs.FileSelector(f"{base}/{SEALS_DIR}/{record_type}", recursive=True, allow_not_found=True)
    days = set()
    for info in filesystem.get_file_info(selector):
        if info.type != fs.FileType.File or not info.base_name.endswith(".json"):
            continue
        with filesystem.open_input_stream(info.path) as stream:
            manifest = SealManifest.from_json(stream.read())
        if manifest.state == SEALED:
            days.add((manifest.venue, dt.date.fromisoformat(manifest.date)))
    return days


def partition_files(filesystem: fs.FileSystem, base: str, record_type: str, venue: str, day: dt.date) -> list[str]:
    """The files a reader takes as the partition, so a rewrite (a seal, a backfill's replace) is
    seen whole or not at all: while a rewrite commits (its manifest says `committing`), its outputs
    (renamed in already, or still `.tmp`) instead of its inputs, with any file that arrived
    meanwhile; otherwise the partition's `*.parquet` files. Costs one small read per partition."""
    folder = partition_path(base, record_type, venue, day)
    listed = parquet_files(filesystem, folder)
    manifest = read_manifest(filesystem, base, record_type, venue, day)
    if manifest is None or manifest.state != COMMITTING:
        return listed
    replaced = {f"{folder}/{entry.name}" for entry in manifest.inputs}
    outputs = []
    for entry in manifest.outputs:
        path = f"{folder}/{entry.name}"
        renamed = filesystem.get_file_info(path).type == fs.FileType.File
        outputs.append(path if renamed else path + TMP_SUFFIX)
    return sorted({p for p in listed if p not in replaced} | set(outputs))


def venue_days(lake_root: str) -> dict[tuple[str, dt.date], bool]:
    """Every (venue, day) of the lake, True once its every record type is sealed: the lake then holds
    the day for good, so what it was built from (raw captures, Timescale rows) may go."""
    present: dict[tuple[str, dt.date], set[str]] = {}
    for record_type in RECORD_TYPES:
        for key in lake_partitions(lake_root, record_type):
            present.setdefault(key, set()).add(record_type)
    sealed = {record_type: sealed_days(lake_root, record_type) for record_type in RECORD_TYPES}
    return {key: all(key in sealed[t] for t in types) for key, types in present.items()}
