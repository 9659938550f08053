"""Dagster pipelines over the lake: day seal, bars, funding, analytics and data-quality checks.

`dagster dev -m pipelines` and `dagster asset materialize -m pipelines ...` load `defs`, bound to
the lake and database of `ticklake.settings` (see pipelines/definitions.py). Loading is lazy: the
partitions start at the lake's earliest day, which is listed when Dagster loads the definitions,
not whenever a module of this package is imported.
"""

import dagster

from pipelines.definitions import build_definitions


@dagster.definitions  # not imported by name: the submodule pipelines.definitions takes that name in this package
def defs() -> dagster.Definitions:
    return build_definitions()
