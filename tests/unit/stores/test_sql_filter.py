"""The SQL translations of filters: values are bound, never spliced; wildcards become GLOB
(SQLite) or LIKE (PostgreSQL) patterns that take every other character literally. (Agreement
with `matches` on real data is the contract suite's job.)"""

from __future__ import annotations

import sqlite3

import pytest

from longrunning.core.filtering import And, Comparator, Comparison, Or, parse_filter
from longrunning.stores.sql_filter import POSTGRES, glob_pattern, like_pattern, where_sql


@pytest.mark.parametrize(
    ("wildcard", "pattern"),
    [
        ("a*", "a*"),
        ("a?b*", "a[?]b*"),
        ("[x]*", "[[]x]*"),
        ("100%_*", "100%_*"),
        ("*]*", "*]*"),
    ],
)
def test_wildcards_become_glob_patterns_with_literal_specials(wildcard: str, pattern: str) -> None:
    assert glob_pattern(wildcard) == pattern


@pytest.mark.parametrize(
    ("text", "wildcard", "hit"),
    [
        ("a?b-c", "a?b*", True),
        ("axb-c", "a?b*", False),
        ("[x]", "[x]*", True),
        ("x", "[x]*", False),
        ("100%_off", "100%_*", True),
        ("100xyoff", "100%_*", False),
        ("Abc", "a*", False),
        ("line\nbreak", "line*break", True),
    ],
)
def test_glob_patterns_match_like_the_reference_wildcards(
    text: str, wildcard: str, hit: bool
) -> None:
    with sqlite3.connect(":memory:") as conn:
        (result,) = conn.execute("SELECT ? GLOB ?", (text, glob_pattern(wildcard))).fetchone()
    assert bool(result) is hit


@pytest.mark.parametrize(
    ("wildcard", "pattern"),
    [("a*", "a%"), ("100%_*", "100\\%\\_%"), ("back\\slash*", "back\\\\slash%"), ("?[", "?[")],
)
def test_wildcards_become_like_patterns_with_literal_specials(wildcard: str, pattern: str) -> None:
    assert like_pattern(wildcard) == pattern


def test_postgres_binds_with_its_own_placeholders_and_labels_by_key() -> None:
    sql, params = where_sql(parse_filter('labels.env = "prod" AND kind = "a*"'), POSTGRES)
    assert "?" not in sql.replace("labels ?", "")
    assert sql.count("%s") == len(params) == 3
    assert params == ["env", "prod", "a%"]


def test_values_and_label_keys_are_bound_not_spliced() -> None:
    hostile = "x' OR 1=1 --"
    sql, params = where_sql(
        And(
            (
                Comparison("kind", Comparator.EQ, hostile),
                Comparison(f"labels.{hostile}", Comparator.NE, hostile),
                Comparison("labels", Comparator.HAS, hostile),
            )
        )
    )
    assert hostile not in sql
    assert params == [hostile, hostile, hostile, hostile]
    assert sql.count("?") == len(params)


def test_no_filter_and_empty_groups_are_constants() -> None:
    assert where_sql(None) == ("1", [])
    assert where_sql(And(())) == ("1", [])
    assert where_sql(Or(())) == ("0", [])


def test_ordered_comparisons_with_wildcards_or_unset_values_match_nothing() -> None:
    assert where_sql(parse_filter('kind>"a*"')) == ("0", [])
    assert where_sql(Comparison("target", Comparator.LT, None)) == ("0", [])
