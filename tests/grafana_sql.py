"""What Grafana does to a panel's SQL before PostgreSQL sees it, for the dashboards' tests.

Two steps, as in Grafana: the browser replaces template variables (`$name`, `${name}`, `[[name]]`;
a multi-value or include-all variable becomes `'a','b'` with quotes doubled, a single-value one is
inserted as is), then the PostgreSQL data source replaces `$__interval_ms` and its macros
`$__name(args)` for the panel's time range.

Only what ticklake's dashboards and docs use is known: `$__interval` and `$__interval_ms`, the standard
time macros on a timestamptz column (`$__timeFilter(col)`, `$__timeGroup(col, interval)` and
`$__timeGroupAlias(col, interval)`, as the data source writes them with its TimescaleDB option on:
`time_bucket`), and `$__unixEpochNanoFilter(col)`, `$__unixEpochNanoFrom()` and `$__unixEpochNanoTo()`
for the bigint ns columns. Any other macro, an undefined variable, or a `$`, `${` or `[[` left after
expansion raises ExpansionError, so a dashboard cannot pass its test with SQL that Grafana would expand
differently.
"""

from __future__ import annotations

import datetime as dt
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


_UNITS_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def interval_text(interval_ms: int) -> str:
    """`$__interval` as Grafana's browser writes it: the largest unit that divides it ("1d", "5m", "250ms")."""
    unit = next(unit for unit, ms in _UNITS_MS.items() if interval_ms % ms == 0)
    return f"{interval_ms // _UNITS_MS[unit]}{unit}"


def interval_seconds(text: str) -> str:
    """An interval argument ("1m", "'5s'", "1d") in whole seconds, as the data source formats it for
    time_bucket (`%.0f`)."""
    match = re.fullmatch(r"'?(\d+)(ms|s|m|h|d)'?", text)
    if match is None:
        raise ExpansionError(f"not an interval: {text!r}")
    return f"{int(match.group(1)) * _UNITS_MS[match.group(2)] / 1000:.0f}"


def rfc3339(ns: int) -> str:
    """A time as the data source quotes it in $__timeFilter (RFC 3339, UTC)."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(sql: str, variables: Mapping[str, Variable], time_range: TimeRange) -> str:
    """The SQL Grafana would send for this selection and time range."""
    def variable(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name == "__interval_ms":
            return str(time_range.interval_ms)
        if name == "__interval":
            return interval_text(time_range.interval_ms)
        return variables[name].sql() if name in variables else match.group(0)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [arg.strip() for arg in match.group(2).split(",")]
        if name == "__timeFilter" and len(args) == 1 and args[0]:
            return f"{args[0]} BETWEEN '{rfc3339(time_range.from_ns)}' AND '{rfc3339(time_range.to_ns)}'"
        if name in ("__timeGroup", "__timeGroupAlias") and len(args) == 2 and args[0]:
            bucket = f"time_bucket('{interval_seconds(args[1])}s',{args[0]})"
            return bucket + (' AS "time"' if name == "__timeGroupAlias" else "")
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
