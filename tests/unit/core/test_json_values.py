"""Requests, results and metadata are plain JSON, and text is Unicode that every store can keep."""

from __future__ import annotations

import math

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import check_json, check_json_object, check_text, storable_text


def test_plain_json_passes_through() -> None:
    value = {"a": [1, 2.5, "x", None, True, {"b": []}], "ü": "日本"}
    assert check_json(value, what="request") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"x": math.nan}, "INVALID_JSON"),
        ({"x": math.inf}, "INVALID_JSON"),
        ({1: "x"}, "INVALID_JSON"),
        ({"x": {1, 2}}, "INVALID_JSON"),
        ({"x": "\ud800"}, "INVALID_TEXT"),
        ({"\udfff": 1}, "INVALID_TEXT"),
        ({"x": "nul\x00inside"}, "INVALID_TEXT"),
        ({"\x00": 1}, "INVALID_TEXT"),
    ],
)
def test_what_is_not_json_or_not_unicode_is_refused(value: object, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_json(value, what="request")
    assert refused.value.reason == reason


def test_nesting_is_bounded() -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidRequest, match="deeply"):
        check_json(deep, what="request")


def test_an_object_is_required_where_asked() -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        check_json_object([1], what="request")


@pytest.mark.parametrize(
    ("text", "kept"),
    [("plain é 😀", "plain é 😀"), ("a\x00b", "a\ufffdb"), ("x\ud800y\udfff", "x\ufffdy\ufffd")],
)
def test_storable_text_replaces_only_what_no_store_can_keep(text: str, kept: str) -> None:
    assert storable_text(text) == kept
    assert check_text(storable_text(text), what="message") == kept
