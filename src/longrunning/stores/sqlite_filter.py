"""Translate a filter AST into a parameterized SQLite WHERE expression that agrees with
`core.filtering.matches` on every operation. Values are always bound, never spliced into the SQL.

Every comparison yields 0 or 1, never NULL, so that NOT and OR behave as they do in Python.
"""

from __future__ import annotations

from longrunning.core.errors import InvalidRequest
from longrunning.core.filtering import And, Comparator, Comparison, Filter, Not, Or
from longrunning.core.operation import CancelOutcome, State
from longrunning.stores._rows import FIELD_EXPRESSIONS, TERMINAL_STATES, SqlValue, to_param

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
_LABEL_VALUE = "(SELECT value FROM json_each(labels) WHERE key = ?)"
_LABEL_PRESENT = "EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ?)"


def where_sql(flt: Filter | None) -> tuple[str, list[SqlValue]]:
    """The SQL expression for `flt` (`1` when there is none) and its parameters, in order."""
    params: list[SqlValue] = []
    if flt is None:
        return "1", params
    return _expression(flt, params), params


def glob_pattern(wildcard: str) -> str:
    """A filter wildcard (`*` is any run of characters) as a GLOB pattern matching the rest
    literally: GLOB's own `?` and `[` become one-character classes. Unlike LIKE, GLOB is
    case-sensitive, as `matches` is, and gives `%` and `_` no meaning."""
    return "".join({"?": "[?]", "[": "[[]"}.get(c, c) for c in wildcard)


def _expression(flt: Filter, params: list[SqlValue]) -> str:
    if isinstance(flt, And):
        parts = [_expression(item, params) for item in flt.items]
        return "(" + " AND ".join(parts) + ")" if parts else "1"
    if isinstance(flt, Or):
        parts = [_expression(item, params) for item in flt.items]
        return "(" + " OR ".join(parts) + ")" if parts else "0"
    if isinstance(flt, Not):
        inner = flt.item
        if isinstance(inner, Comparison) and inner.field == "done" and inner.op in _EQUALITY:
            # `-done = true` is `done = false`: keep it indexable.
            flipped = Comparator.NE if inner.op is Comparator.EQ else Comparator.EQ
            return _comparison(Comparison("done", flipped, inner.value), params)
        return f"(NOT {_expression(inner, params)})"
    return _comparison(flt, params)


def _comparison(cmp: Comparison, params: list[SqlValue]) -> str:
    value = cmp.value
    if cmp.field == "labels":
        # `matches` tests presence whatever the comparator, and a `*` in a key is literal.
        if not isinstance(value, str):
            return "0"
        params.append(value)
        return _LABEL_PRESENT
    is_wildcard = (
        isinstance(value, str) and not isinstance(value, State | CancelOutcome) and "*" in value
    )
    ordered = cmp.op in _ORDERED
    if ordered and (is_wildcard or value is None):
        return "0"
    if cmp.field == "done" and isinstance(value, bool) and cmp.op in _EQUALITY:
        # `done = false` is the commonest history filter: say it with the state column alone,
        # so it is served by the state index instead of a scan over every operation.
        wanted = value if cmp.op is Comparator.EQ else not value
        return f"(state IN {TERMINAL_STATES if wanted else _LIVE_STATES})"
    column = _column(cmp.field, params)
    if is_wildcard:
        assert isinstance(value, str)
        params.append(glob_pattern(value))
        hit = f"COALESCE({column} GLOB ?, 0)"
        return hit if cmp.op is Comparator.EQ else f"(NOT {hit})"
    if value is None:
        return f"({column} IS NULL)" if cmp.op is Comparator.EQ else f"({column} IS NOT NULL)"
    params.append(to_param(value))
    if cmp.op is Comparator.EQ:
        return f"({column} IS ?)"
    if cmp.op is Comparator.NE:
        return f"({column} IS NOT ?)"
    # An unset value is neither smaller nor greater than anything.
    return f"COALESCE({column} {_ORDERED[cmp.op]} ?, 0)"


def _column(field: str, params: list[SqlValue]) -> str:
    if field.startswith("labels.") and len(field) > len("labels."):
        params.append(field[len("labels.") :])
        return _LABEL_VALUE
    expression = FIELD_EXPRESSIONS.get(field)
    if expression is None:
        raise InvalidRequest(f"invalid filter: unknown field {field!r}", reason="INVALID_FILTER")
    return expression
