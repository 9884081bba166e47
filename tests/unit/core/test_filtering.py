"""The filter parser: AIP-160 precedence, negation, quoting, typed values and its error messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.filtering import (
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Comparator,
    Comparison,
    Not,
    Or,
    parse_filter,
)
from longrunning.core.operation import CancelOutcome, State


def kind(value: str, op: Comparator = Comparator.EQ) -> Comparison:
    return Comparison("kind", op, value)


def test_an_empty_or_blank_filter_is_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("   ") is None


def test_or_binds_tighter_than_juxtaposition() -> None:
    assert parse_filter("kind=a OR kind=b kind=c") == And((Or((kind("a"), kind("b"))), kind("c")))


def test_or_binds_tighter_than_and() -> None:
    assert parse_filter("kind=a AND kind=b OR kind=c") == And(
        (kind("a"), Or((kind("b"), kind("c"))))
    )


def test_parentheses_override_precedence() -> None:
    assert parse_filter("(kind=a AND kind=b) OR kind=c") == Or(
        (And((kind("a"), kind("b"))), kind("c"))
    )


@pytest.mark.parametrize("text", ["NOT kind=a", "-kind=a", "- kind=a"])
def test_not_and_minus_negate_one_term(text: str) -> None:
    assert parse_filter(text) == Not(kind("a"))


def test_minus_negates_a_parenthesised_expression() -> None:
    assert parse_filter("-(kind=a OR kind=b)") == Not(Or((kind("a"), kind("b"))))


def test_a_negative_number_is_a_value_not_a_negation() -> None:
    assert parse_filter("attempt=-1") == Comparison("attempt", Comparator.EQ, -1.0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('kind="a b"', "a b"),
        ("kind='a b'", "a b"),
        (r'kind="a\"b"', 'a"b'),
        (r"kind='it\'s'", "it's"),
        (r'kind="a\\b"', "a\\b"),
        ('kind="AND"', "AND"),
        ('kind="ünï*"', "ünï*"),
    ],
)
def test_quoted_values_keep_spaces_and_unescape(text: str, value: str) -> None:
    assert parse_filter(text) == kind(value)


def test_has_on_a_string_field_means_equals() -> None:
    assert parse_filter("kind:demo.sleep") == kind("demo.sleep")


def test_labels_presence_and_label_values() -> None:
    assert parse_filter('labels:"x y"') == Comparison("labels", Comparator.HAS, "x y")
    assert parse_filter("labels.a.b=c") == Comparison("labels.a.b", Comparator.EQ, "c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state=running", Comparison("state", Comparator.EQ, State.RUNNING)),
        ("state!=PENDING", Comparison("state", Comparator.NE, State.PENDING)),
        (
            "cancel_outcome=killed",
            Comparison("cancel_outcome", Comparator.EQ, CancelOutcome.KILLED),
        ),
        ("done=TRUE", Comparison("done", Comparator.EQ, True)),
        ("cancellable:false", Comparison("cancellable", Comparator.EQ, False)),
        ("attempt>=2", Comparison("attempt", Comparator.GE, 2.0)),
        ("percent<42.5", Comparison("percent", Comparator.LT, 42.5)),
        ("error.code=5", Comparison("error.code", Comparator.EQ, 5.0)),
        ("error.code=not_found", Comparison("error.code", Comparator.EQ, float(Code.NOT_FOUND))),
        (
            'create_time>"2026-01-01T01:00:00.5+01:00"',
            Comparison("create_time", Comparator.GT, datetime(2026, 1, 1, 0, 0, 0, 500000, UTC)),
        ),
    ],
)
def test_values_are_typed_by_their_field(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense=1", "unknown field 'nonsense'"),
        ("labels.=x", "unknown field 'labels.'"),
        ("state=NOPE", "state must be one of PENDING, RUNNING"),
        ("cancel_outcome=MAYBE", "cancel_outcome must be one of"),
        ("state<RUNNING", "state takes only = and !="),
        ("done>false", "done takes only = and !="),
        ("done=maybe", "done must be true or false"),
        ('create_time>"yesterday"', "create_time needs a quoted RFC 3339 timestamp"),
        ('create_time>"2026-01-01T00:00:00"', "needs a quoted RFC 3339 timestamp"),
        ("attempt=many", "attempt needs a number, got 'many'"),
        ("attempt=1e3", "attempt needs a number"),
        ("error.code=NOPE", "error.code needs a number or a code name"),
        ("labels=x", "use labels:KEY to test presence"),
        ("kind=a#", "unexpected character '#'"),
        ("kind=a)", "unexpected ')'"),
        ("(kind=a", "unexpected end"),
        ("kind=", "unexpected end"),
        ("kind", "unexpected end"),
        ("kind=a OR", "unexpected end"),
        ("AND kind=a", "expected a field name, found 'AND'"),
        ("NOT NOT kind=a", "expected a field name, found 'NOT'"),
        ("kind==a", "expected a value after kind="),
        ('"kind"=a', "expected a field name"),
    ],
)
def test_a_bad_filter_is_an_invalid_filter_error_saying_why(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filter(text)
    assert caught.value.reason == "INVALID_FILTER"
    assert caught.value.message.startswith("invalid filter: ")
    assert message in caught.value.message


def test_an_unknown_field_error_lists_the_known_fields() -> None:
    with pytest.raises(InvalidRequest, match=r"known: attempt, .*labels\.<key>"):
        parse_filter("colour=red")


def test_filters_up_to_the_length_limit_parse_and_longer_ones_fail() -> None:
    longest = 'kind="' + "a" * (MAX_FILTER_LENGTH - 7) + '"'
    assert len(longest) == MAX_FILTER_LENGTH
    assert parse_filter(longest) == kind("a" * (MAX_FILTER_LENGTH - 7))
    with pytest.raises(InvalidRequest, match="longer than") as caught:
        parse_filter(longest + " ")
    assert caught.value.reason == "INVALID_FILTER"


def test_nesting_beyond_the_depth_limit_fails() -> None:
    deepest = MAX_DEPTH - 1  # the top level counts as one
    assert parse_filter("(" * deepest + "kind=a" + ")" * deepest) == kind("a")
    with pytest.raises(InvalidRequest, match="nested too deeply") as caught:
        parse_filter("(" * (deepest + 1) + "kind=a" + ")" * (deepest + 1))
    assert caught.value.reason == "INVALID_FILTER"
