"""The filter language for listing operations (a subset of AIP-160), parsed into a small AST.

`parse_filter` turns text into typed `Filter` nodes; `matches` is the reference evaluation used by
the memory store and pinned to the SQL translations by the store contract suite. Pure: no I/O.

Grammar (AIP-160: OR binds tighter than AND; juxtaposition means AND):
    expression  := sequence { "AND" sequence }
    sequence    := factor { factor }
    factor      := term { "OR" term }
    term        := [ "NOT" | "-" ] simple
    simple      := "(" expression ")" | field comparator value | field ":" value
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.operation import CancelOutcome, Operation, State
from longrunning.core.timestamps import parse_timestamp

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32


class FieldType(Enum):
    STRING = "string"
    STATE = "state"
    OUTCOME = "outcome"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    NUMBER = "number"
    CODE = "code"
    LABEL = "label"


FIELDS: Mapping[str, FieldType] = {
    "name": FieldType.STRING,
    "parent": FieldType.STRING,
    "kind": FieldType.STRING,
    "target": FieldType.STRING,
    "queue": FieldType.STRING,
    "request_id": FieldType.STRING,
    "state": FieldType.STATE,
    "cancel_outcome": FieldType.OUTCOME,
    "done": FieldType.BOOL,
    "cancel_requested": FieldType.BOOL,
    "cancellable": FieldType.BOOL,
    "create_time": FieldType.TIMESTAMP,
    "update_time": FieldType.TIMESTAMP,
    "start_time": FieldType.TIMESTAMP,
    "end_time": FieldType.TIMESTAMP,
    "attempt": FieldType.NUMBER,
    "percent": FieldType.NUMBER,
    "error.code": FieldType.CODE,
    "labels": FieldType.LABEL,
}
"""The fields a filter may name; `labels.<key>` names one label."""


class Comparator(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    HAS = ":"


FilterValue = str | float | bool | datetime | State | CancelOutcome | None


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    """A key of FIELDS, or `labels.<key>`."""
    op: Comparator
    value: FilterValue
    """Typed by the field; for `labels` with HAS, the label key; None matches an unset value."""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = Comparison | And | Or | Not

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|=|<|>|:)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z0-9_.*+\-/@]+)
    )""",
    re.VERBOSE,
)


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"invalid filter: {message}", reason="INVALID_FILTER")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos}")
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(
        self,
        tokens: list[tuple[str, str]],
        fields: Mapping[str, FieldType],
        aliases: Mapping[str, str] | None,
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields
        self.aliases = aliases
        self.depth = 0

    def canonical(self, spelled: str) -> str:
        """The field a face's spelling names (the spelling itself without aliases)."""
        if self.aliases is None:
            return spelled
        if spelled in self.aliases:
            return self.aliases[spelled]
        for prefix, target in self.aliases.items():
            if prefix.endswith(".") and spelled.startswith(prefix) and len(spelled) > len(prefix):
                return target + spelled[len(prefix) :]
        known = ", ".join(k + "<key>" if k.endswith(".") else k for k in sorted(self.aliases))
        raise _bad(f"unknown field {spelled!r}; known: {known}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise _bad("unexpected end")
        self.pos += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok == ("word", word)

    def expression(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _bad("nested too deeply")
        items = [self.sequence()]
        while self.is_word("AND"):
            self.pos += 1
            items.append(self.sequence())
        self.depth -= 1
        return items[0] if len(items) == 1 else And(tuple(items))

    def sequence(self) -> Filter:
        items = [self.factor()]
        while (tok := self.peek()) is not None and tok != ("paren", ")"):
            if self.is_word("AND"):
                break
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self) -> Filter:
        items = [self.term()]
        while self.is_word("OR"):
            self.pos += 1
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self) -> Filter:
        if self.is_word("NOT") or self.peek() == ("word", "-"):
            self.pos += 1
            return Not(self.simple())
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1].startswith("-") and len(tok[1]) > 1:
            # "-field=value": the minus sign lexes into the word.
            self.tokens[self.pos] = ("word", tok[1][1:])
            return Not(self.simple())
        return self.simple()

    def simple(self) -> Filter:
        kind, text = self.next()
        if (kind, text) == ("paren", "("):
            inner = self.expression()
            if self.next() != ("paren", ")"):
                raise _bad("expected ')'")
            return inner
        if kind != "word" or text in ("AND", "OR", "NOT"):
            raise _bad(f"expected a field name, found {text!r}")
        op_kind, op_text = self.next()
        if op_kind != "op":
            raise _bad(f"expected a comparator after {text!r}, found {op_text!r}")
        value_kind, value_text = self.next()
        if value_kind not in ("word", "str"):
            raise _bad(f"expected a value after {text}{op_text}")
        return comparison(self.canonical(text), Comparator(op_text), value_text, self.fields)


def _field_type(field: str, fields: Mapping[str, FieldType]) -> FieldType:
    if field in fields:
        return fields[field]
    if field.startswith("labels.") and len(field) > len("labels.") and "labels" in fields:
        return FieldType.STRING
    raise _bad(f"unknown field {field!r}; known: {', '.join(sorted(fields))}, labels.<key>")


def comparison(
    field: str, op: Comparator, raw: str, fields: Mapping[str, FieldType] = FIELDS
) -> Comparison:
    """Build one typed comparison, or raise InvalidRequest naming what is wrong."""
    ftype = _field_type(field, fields)
    ordered = op in (Comparator.LT, Comparator.LE, Comparator.GT, Comparator.GE)
    if ftype is FieldType.LABEL:
        if op is not Comparator.HAS:
            raise _bad("use labels:KEY to test presence, or labels.KEY=VALUE")
        return Comparison(field, op, raw)
    if ftype is FieldType.STRING:
        return Comparison(field, Comparator.EQ if op is Comparator.HAS else op, raw)
    if ftype in (FieldType.STATE, FieldType.OUTCOME, FieldType.BOOL) and ordered:
        raise _bad(f"{field} takes only = and !=")
    if ftype is FieldType.STATE:
        try:
            return Comparison(field, _eq(op), State(raw.upper()))
        except ValueError:
            raise _bad(f"state must be one of {', '.join(State)}") from None
    if ftype is FieldType.OUTCOME:
        try:
            return Comparison(field, _eq(op), CancelOutcome(raw.upper()))
        except ValueError:
            raise _bad(f"cancel_outcome must be one of {', '.join(CancelOutcome)}") from None
    if ftype is FieldType.BOOL:
        if raw.lower() not in ("true", "false"):
            raise _bad(f"{field} must be true or false")
        return Comparison(field, _eq(op), raw.lower() == "true")
    if ftype is FieldType.TIMESTAMP:
        try:
            return Comparison(field, _eq(op), parse_timestamp(raw))
        except ValueError:
            raise _bad(
                f"{field} needs a quoted RFC 3339 timestamp, "
                f'e.g. {field} > "2026-01-01T00:00:00Z"; got {raw!r}'
            ) from None
    if ftype is FieldType.CODE and op is Comparator.HAS and raw == "*":
        return Comparison(field, Comparator.NE, None)  # `error:*`: there is an error
    if ftype is FieldType.CODE and not _is_number(raw):
        try:
            return Comparison(field, _eq(op), float(Code[raw.upper()]))
        except KeyError:
            raise _bad(f"{field} needs a number or a code name, got {raw!r}") from None
    if not _is_number(raw):
        raise _bad(f"{field} needs a number, got {raw!r}")
    return Comparison(field, _eq(op), float(raw))


def _eq(op: Comparator) -> Comparator:
    return Comparator.EQ if op is Comparator.HAS else op


def _is_number(raw: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", raw) is not None


def parse_filter(
    text: str, fields: Mapping[str, FieldType] = FIELDS, *, aliases: Mapping[str, str] | None = None
) -> Filter | None:
    """Parse filter text; an empty filter is None (everything matches).

    With `aliases`, a face's own field names (e.g. Google's `metadata.create_time`) are the only
    ones accepted, each standing for the field of FIELDS it maps to; a key ending in `.` maps a
    prefix (`metadata.labels.` to `labels.`).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad(f"longer than {MAX_FILTER_LENGTH} characters")
    tokens = _tokens(text)
    if not tokens:
        return None
    parser = _Parser(tokens, fields, aliases)
    result = parser.expression()
    if parser.peek() is not None:
        raise _bad(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return result


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches any run of characters; everything else is literal."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


def field_value(op: Operation, field: str) -> FilterValue:
    """The value a filter compares for `field` (the reference the SQL stores are pinned to)."""
    if field.startswith("labels."):
        return op.labels.get(field[len("labels.") :])
    getters: dict[str, Callable[[Operation], FilterValue]] = {
        "done": lambda o: o.done,
        "cancel_requested": lambda o: o.cancel_requested,
        "percent": lambda o: o.progress.percent,
        "attempt": lambda o: float(o.attempt),
        "error.code": lambda o: float(o.error.code) if o.error else None,
    }
    getter = getters.get(field)
    if getter is not None:
        return getter(op)
    value: FilterValue = getattr(op, field)
    return value


def matches(flt: Filter | None, op: Operation) -> bool:
    if flt is None:
        return True
    if isinstance(flt, And):
        return all(matches(item, op) for item in flt.items)
    if isinstance(flt, Or):
        return any(matches(item, op) for item in flt.items)
    if isinstance(flt, Not):
        return not matches(flt.item, op)
    if flt.field == "labels":
        return flt.value in op.labels
    actual = field_value(op, flt.field)
    wanted = flt.value
    if isinstance(wanted, str) and not isinstance(wanted, State | CancelOutcome) and "*" in wanted:
        hit = isinstance(actual, str) and wildcard_regex(wanted).fullmatch(actual) is not None
        return hit if flt.op is Comparator.EQ else not hit if flt.op is Comparator.NE else False
    if flt.op is Comparator.EQ:
        return actual == wanted
    if flt.op is Comparator.NE:
        return actual != wanted
    if actual is None or wanted is None:
        return False
    try:
        if flt.op is Comparator.LT:
            return actual < wanted  # type: ignore[operator]
        if flt.op is Comparator.LE:
            return actual <= wanted  # type: ignore[operator]
        if flt.op is Comparator.GT:
            return actual > wanted  # type: ignore[operator]
        return actual >= wanted  # type: ignore[operator]
    except TypeError:
        return False
