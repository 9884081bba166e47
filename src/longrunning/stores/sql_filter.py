"""Translate a filter AST into a parameterized SQL WHERE expression that agrees with
`core.filtering.matches` on every operation, for each SQL dialect the stores speak. Values are
always bound, never spliced into the SQL.

Every comparison yields true or false, never NULL, so that NOT and OR behave as they do in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from longrunning.core.errors import InvalidRequest
from longrunning.core.filtering import And, Comparator, Comparison, Filter, Not, Or
from longrunning.core.operation import CancelOutcome, State
from longrunning.stores._rows import (
    DATETIME,
    FIELD_EXPRESSIONS,
    MICROS,
    TERMINAL_STATES,
    SqlValue,
    TimeCodec,
    to_param,
)

_ORDERED = {
    Comparator.LT: "<",
    Comparator.LE: "<=",
    Comparator.GT: ">",
    Comparator.GE: ">=",
    # The parser turns `:` on a non-label field into `=`; a hand-built one reads as `>=` in
    # `matches`, and the two must agree.
    Comparator.HAS: ">=",
}

_EQUALITY = (Comparator.EQ, Comparator.NE)
_LIVE_STATES = "('PENDING', 'RUNNING')"


def glob_pattern(wildcard: str) -> str:
    """A filter wildcard (`*` is any run of characters) as a GLOB pattern matching the rest
    literally: GLOB's own `?` and `[` become one-character classes. Unlike LIKE, GLOB is
    case-sensitive, as `matches` is, and gives `%` and `_` no meaning."""
    return "".join({"?": "[?]", "[": "[[]"}.get(c, c) for c in wildcard)


def like_pattern(wildcard: str) -> str:
    """A filter wildcard as a PostgreSQL LIKE pattern (escape `\\`) matching the rest literally.
    PostgreSQL's LIKE is case-sensitive, as `matches` is."""
    return "".join({"\\": "\\\\", "%": "\\%", "_": "\\_", "*": "%"}.get(c, c) for c in wildcard)


@dataclass(frozen=True, slots=True)
class SqlDialect:
    placeholder: str
    true: str
    false: str
    same: str
    """Null-safe equality: NULL is the same as NULL and differs from every value."""
    differs: str
    wildcard: str
    """`{column}` matching a bound wildcard pattern; must be true or false, never NULL."""
    pattern: Callable[[str], str]
    label_value: str
    """The value of the label whose key is bound, as text comparable like the other columns."""
    label_present: str
    times: TimeCodec


SQLITE = SqlDialect(
    placeholder="?",
    true="1",
    false="0",
    same="IS",
    differs="IS NOT",
    wildcard="COALESCE({column} GLOB ?, 0)",
    pattern=glob_pattern,
    label_value="(SELECT value FROM json_each(labels) WHERE key = ?)",
    label_present="EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ?)",
    times=MICROS,
)

POSTGRES = SqlDialect(
    placeholder="%s",
    true="TRUE",
    false="FALSE",
    same="IS NOT DISTINCT FROM",
    differs="IS DISTINCT FROM",
    wildcard="COALESCE({column} LIKE %s, FALSE)",
    pattern=like_pattern,
    # Byte order ("C"), as Python compares strings, whatever the database's default collation.
    label_value='((labels ->> %s::text) COLLATE "C")',
    label_present="(labels ? %s::text)",
    times=DATETIME,
)


def where_sql(flt: Filter | None, dialect: SqlDialect = SQLITE) -> tuple[str, list[SqlValue]]:
    """The SQL expression for `flt` (true when there is none) and its parameters, in order."""
    params: list[SqlValue] = []
    if flt is None:
        return dialect.true, params
    return _Translation(dialect, params).expression(flt), params


@dataclass(slots=True)
class _Translation:
    d: SqlDialect
    params: list[SqlValue]

    def expression(self, flt: Filter) -> str:
        if isinstance(flt, And):
            parts = [self.expression(item) for item in flt.items]
            return "(" + " AND ".join(parts) + ")" if parts else self.d.true
        if isinstance(flt, Or):
            parts = [self.expression(item) for item in flt.items]
            return "(" + " OR ".join(parts) + ")" if parts else self.d.false
        if isinstance(flt, Not):
            inner = flt.item
            if isinstance(inner, Comparison) and inner.field == "done" and inner.op in _EQUALITY:
                # `-done = true` is `done = false`: keep it indexable.
                flipped = Comparator.NE if inner.op is Comparator.EQ else Comparator.EQ
                return self.comparison(Comparison("done", flipped, inner.value))
            return f"(NOT {self.expression(inner)})"
        return self.comparison(flt)

    def comparison(self, cmp: Comparison) -> str:
        d, value = self.d, cmp.value
        if cmp.field == "labels":
            # `matches` tests presence whatever the comparator, and a `*` in a key is literal.
            if not isinstance(value, str):
                return d.false
            self.params.append(value)
            return d.label_present
        is_wildcard = (
            isinstance(value, str) and not isinstance(value, State | CancelOutcome) and "*" in value
        )
        ordered = cmp.op in _ORDERED
        if ordered and (is_wildcard or value is None):
            return d.false
        if cmp.field == "done" and isinstance(value, bool) and cmp.op in _EQUALITY:
            # `done = false` is the commonest history filter: say it with the state column
            # alone, so it is served by the state index instead of a scan over every operation.
            wanted = value if cmp.op is Comparator.EQ else not value
            return f"(state IN {TERMINAL_STATES if wanted else _LIVE_STATES})"
        column = self.column(cmp.field)
        if is_wildcard:
            assert isinstance(value, str)
            self.params.append(d.pattern(value))
            hit = d.wildcard.format(column=column)
            return hit if cmp.op is Comparator.EQ else f"(NOT {hit})"
        if value is None:
            return f"({column} IS NULL)" if cmp.op is Comparator.EQ else f"({column} IS NOT NULL)"
        self.params.append(to_param(value, d.times))
        if cmp.op is Comparator.EQ:
            return f"({column} {d.same} {d.placeholder})"
        if cmp.op is Comparator.NE:
            return f"({column} {d.differs} {d.placeholder})"
        # An unset value is neither smaller nor greater than anything.
        return f"COALESCE({column} {_ORDERED[cmp.op]} {d.placeholder}, {d.false})"

    def column(self, field: str) -> str:
        if field.startswith("labels.") and len(field) > len("labels."):
            self.params.append(field[len("labels.") :])
            return self.d.label_value
        expression = FIELD_EXPRESSIONS.get(field)
        if expression is None:
            raise InvalidRequest(
                f"invalid filter: unknown field {field!r}", reason="INVALID_FILTER"
            )
        return expression
