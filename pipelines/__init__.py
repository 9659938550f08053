"""Dagster pipelines over the lake: day seal, bars, funding, analytics and data-quality checks.

`dagster dev -m pipelines` and `dagster asset materialize -m pipelines ...` load `defs`, bound to
the lake and database of `ticklake.settings` (see pipelines/definitions.py).
"""

from pipelines.definitions import build_definitions

defs = build_definitions()
