"""The JSON value type used for requests, results, metadata and error details.

Results and metadata are JSON, never pickle: every face and every store can carry them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeAlias

from longrunning.core.errors import InvalidRequest

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

_MAX_DEPTH = 64


def check_json(value: object, *, what: str, depth: int = 0) -> JsonValue:
    """Return `value` if it is plain JSON (finite numbers, string keys); else InvalidRequest."""
    if depth > _MAX_DEPTH:
        raise InvalidRequest(f"{what} is nested too deeply", reason="JSON_TOO_DEEP")
    if isinstance(value, str):
        return check_text(value, what=what)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{what} holds a non-finite number", reason="INVALID_JSON")
        return value
    if isinstance(value, list | tuple):
        return [check_json(item, what=what, depth=depth + 1) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(f"{what} has a non-string key", reason="INVALID_JSON")
            out[check_text(key, what=what)] = check_json(item, what=what, depth=depth + 1)
        return out
    raise InvalidRequest(
        f"{what} holds a {type(value).__name__}, which is not JSON", reason="INVALID_JSON"
    )


def check_json_object(value: object, *, what: str) -> JsonObject:
    """Like `check_json`, but the value must be a JSON object."""
    checked = check_json(value, what=what)
    if not isinstance(checked, dict):
        raise InvalidRequest(f"{what} must be a JSON object", reason="INVALID_JSON")
    return checked


def check_text(value: str, *, what: str) -> str:
    # Lone surrogates ("\ud800") are valid Python but not Unicode text, and PostgreSQL text
    # cannot hold NUL: refusing both here keeps every store accepting exactly the same values.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{what} holds a lone surrogate", reason="INVALID_TEXT") from None
    if "\x00" in value:
        raise InvalidRequest(f"{what} holds a NUL character", reason="INVALID_TEXT")
    return value


def storable_text(value: str) -> str:
    """`value` with what `check_text` refuses (lone surrogates, NUL) replaced by U+FFFD: for
    text that must be kept whatever it holds, such as an exception's message."""
    return "".join("\ufffd" if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
