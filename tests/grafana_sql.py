"""What Grafana does to a panel's SQL before PostgreSQL sees it, for the dashboards' tests.

Two steps, as in Grafana: the browser replaces template variables (`$name`, `${name}`, `[[name]]`;
a multi-value or include-all variable becomes `'a','b'` with quotes doubled, a single-value one is
inserted as is), then the PostgreSQL data source replaces `$__interval_ms` and its macros
`$__name(args)` for the panel's time range.

Only what ticklake's dashboards use is known: `$__interval_ms`, `$__unixEpochNanoFilter(col)`,
`$__unixEpochNanoFrom()` and `$__unixEpochNanoTo()`. Any other macro, an undefined variable, or a
`$`, `${` or `[[` left after expansion raises ExpansionError, so a dashboard cannot pass its test
with SQL that Grafana would expand differently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+)\]\]|\$\{(\w+)\}")
"""Grafana's variable syntaxes (without the `${name:format}` forms, which are not supported here)."""
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
"""The PostgreSQL data source's macro pattern (pkg/tsdb/grafana-postgresql-datasource/macros.go)."""
LEFTOVER = re.compile(r"\$\w|\$\{|\[\[")


class ExpansionError(ValueError):
    """The SQL uses something Grafana would not expand the way this module does."""


@dataclass(frozen=True)
class Variable:
    """A template variable's selected values; `quoted` for multi-value or include-all variables."""

    values: tuple[str, ...]
    quoted: bool

    def sql(self) -> str:
        if self.quoted:
            return ",".join("'" + value.replace("'", "''") + "'" for value in self.values)
        if len(self.values) != 1:
            raise ExpansionError(f"a single-value variable holds {len(self.values)} values")
        return self.values[0].replace("'", "''")


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range in ns since the epoch, and Grafana's interval for it."""

    from_ns: int
    to_ns: int
    interval_ms: int


def expand(sql: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    """The SQL Grafana would send for this selection and time range."""
    def variable(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name == "__interval_ms":
            return str(time_range.interval_ms)
        return variables[name].sql() if name in variables else match.group(0)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [arg.strip() for arg in match.group(2).split(",")]
        if name == "__unixEpochNanoFilter" and len(args) == 1 and args[0]:
            return f"{args[0]} >= {time_range.from_ns} AND {args[0]} <= {time_range.to_ns}"
        if name == "__unixEpochNanoFrom" and args == [""]:
            return str(time_range.from_ns)
        if name == "__unixEpochNanoTo" and args == [""]:
            return str(time_range.to_ns)
        raise ExpansionError(f"unknown macro or wrong arguments: {match.group(0)}")

    expanded = MACRO.sub(macro, VARIABLE.sub(variable, sql))
    if leftover := LEFTOVER.search(expanded):
        raise ExpansionError(f"not expanded: {expanded[leftover.start():leftover.start() + 40]!r}")
    return expanded
