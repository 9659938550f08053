"""The derived tables published to TimescaleDB for dashboards, declared once from the frames' schemas.

Each table has the columns of its asset's output frame, taken from the pure functions themselves (their
output on empty input), with timestamps as bigint ns UTC like every ticklake table and days as `date`,
then a `time timestamptz` column: the row's time column as a timestamptz (`ticklake_ts(ts)`, a day at
UTC midnight), which dashboards filter and bucket on (docs/timescale.md). They are hypertables on `time`
(7-day chunks), indexed on (instrument, time) where there is an instrument. `python -m
pipelines.timescale_tables [TABLE ...]` prints the DDL (migrations 0005 and 0011 hold it for the first
tables, 0012 for spot_perp_basis, term_structure and funding_comparison); a test checks the migrated
tables against these declarations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from normalize.arrow_schema import schema_for
from pipelines import analytics, bars, funding
from storage.ddl import retime_ddl

CHUNK_INTERVAL = "INTERVAL '7 days'"


@dataclass(frozen=True)
class DerivedTable:
    columns: dict[str, pl.DataType]
    """Column name -> polars type, in table order."""
    time: str = "ts"
    """The time column (bigint ns UTC, or a date): the hypertable dimension and what a day's replacement
    deletes by."""

    @property
    def by_date(self) -> bool:
        return self.columns[self.time] == pl.Date()

    @property
    def time_sql(self) -> str:
        """The `time` column's value from the table's own time column, in SQL."""
        return f"(\"{self.time}\"::timestamp AT TIME ZONE 'UTC')" if self.by_date else f'ticklake_ts("{self.time}")'


def _output_schema(frame: pl.DataFrame) -> dict[str, pl.DataType]:
    return dict(frame.schema)


def _empty(record_type: str) -> pl.DataFrame:
    frame = pl.from_arrow(schema_for(record_type).empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


_NO_BARS = pl.DataFrame(schema=bars.BAR_SCHEMA)

TIMESCALE_TABLES: dict[str, DerivedTable] = {
    "bars_1m": DerivedTable(bars.BAR_SCHEMA),
    "bars_5m": DerivedTable(bars.BAR_SCHEMA),
    "bars_1h": DerivedTable(bars.BAR_SCHEMA),
    "bars_1d": DerivedTable(bars.BAR_SCHEMA),
    "funding_history": DerivedTable(funding.HISTORY_SCHEMA, "funding_time"),
    "funding_spreads": DerivedTable(funding.SPREAD_SCHEMA, "funding_time"),
    "realized_volatility": DerivedTable(_output_schema(analytics.realized_volatility(_NO_BARS)), "date"),
    "spread_stats": DerivedTable(_output_schema(analytics.spread_stats(_empty("bbo"))), "date"),
    "basis": DerivedTable(_output_schema(analytics.basis(_empty("mark_index"))), "hour"),
    "open_interest_changes": DerivedTable(_output_schema(analytics.open_interest_changes(_empty("open_interest"))),
                                          "hour"),
    "liquidation_aggregates": DerivedTable(_output_schema(analytics.liquidation_aggregates(_empty("liquidation"))),
                                           "hour"),
    "price_dispersion": DerivedTable(_output_schema(analytics.price_dispersion(_NO_BARS))),
    "order_flow_imbalance": DerivedTable(_output_schema(analytics.order_flow_imbalance(_empty("trade")))),
    "spot_perp_basis": DerivedTable(_output_schema(analytics.spot_perp_basis(_empty("bbo")))),
    "term_structure": DerivedTable(_output_schema(analytics.term_structure(_empty("bbo"), _empty("instrument")))),
    "funding_comparison": DerivedTable(_output_schema(analytics.funding_comparison(
        pl.DataFrame(schema=funding.HISTORY_SCHEMA))), "date"),
}
"""Table (= asset) name -> its declaration. bars_1s and the threshold bars stay in the lake only."""


def pg_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "bigint"
    simple = {pl.String: "text", pl.Float64: "double precision", pl.Int64: "bigint", pl.Int32: "integer",
              pl.Int16: "smallint", pl.Int8: "smallint", pl.Boolean: "boolean", pl.Date: "date"}
    return simple[dtype.base_type()]


def index_ddl(name: str) -> str:
    index = "(instrument, time DESC)" if "instrument" in TIMESCALE_TABLES[name].columns else "(time DESC)"
    return f"CREATE INDEX {name}_time ON {name} {index};"


def table_ddl(name: str) -> str:
    table = TIMESCALE_TABLES[name]
    body = ",\n".join([*(f'    "{column}" {pg_type(dtype)}' for column, dtype in table.columns.items()),
                       "    time timestamptz NOT NULL"])
    return "\n".join([
        f"CREATE TABLE {name} (\n{body}\n);",
        f"SELECT create_hypertable('{name}', by_range('time', {CHUNK_INTERVAL}), create_default_indexes => false);",
        index_ddl(name)])


def retime_derived_ddl(names: Iterable[str] = TIMESCALE_TABLES) -> str:
    """storage.ddl.retime_ddl of derived tables (migration 0011 holds it for those of migration 0005)."""
    return "\n".join(retime_ddl(name, TIMESCALE_TABLES[name].time_sql, CHUNK_INTERVAL, index_ddl(name) + "\n")
                     for name in names)


if __name__ == "__main__":
    import sys

    print("\n\n".join(table_ddl(name) for name in sys.argv[1:] or TIMESCALE_TABLES))
