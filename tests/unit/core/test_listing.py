"""Listing queries: page sizes, and page tokens that resume exactly their own query."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import UTC, datetime

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.core.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    OperationQuery,
    build_query,
    decode_page_token,
    encode_page_token,
    page_of,
)
from longrunning.core.timestamps import from_micros
from longrunning.testing import make_operation

CREATED = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def packed(version: int, micros: int, op_id: bytes) -> str:
    """A token in the packed layout, with a valid checksum, whatever its content."""
    body = struct.pack(">B8sq", version, bytes.fromhex(OperationQuery().fingerprint()), micros)
    body += op_id
    raw = body + zlib.crc32(body).to_bytes(4, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def token_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_a_page_token_resumes_after_the_last_operation() -> None:
    query = build_query(parent="projects/p", filter_text="state=RUNNING", newest_first=False)
    last = make_operation(now=CREATED)
    token = encode_page_token(query, last)
    assert "=" not in token
    assert decode_page_token(token, query) == Cursor(create_time=CREATED, id=last.id)
    resumed = build_query(
        parent="projects/p", filter_text="state=RUNNING", newest_first=False, page_token=token
    )
    assert resumed.after == Cursor(create_time=CREATED, id=last.id)
    assert resumed.filter == query.filter


def test_a_page_token_survives_a_different_page_size() -> None:
    token = encode_page_token(build_query(page_size=5), make_operation(now=CREATED))
    assert build_query(page_size=50, page_token=token).after is not None


@pytest.mark.parametrize(
    "other",
    [
        OperationQuery(parent="projects/q", filter_text="state=RUNNING"),
        OperationQuery(parent="projects/p", filter_text="state=PENDING"),
        OperationQuery(parent="projects/p", filter_text="state=RUNNING", newest_first=False),
        OperationQuery(filter_text="state=RUNNING"),
    ],
    ids=["parent", "filter", "order", "no parent"],
)
def test_a_page_token_is_bound_to_parent_filter_and_order(other: OperationQuery) -> None:
    original = OperationQuery(parent="projects/p", filter_text="state=RUNNING")
    token = encode_page_token(original, make_operation(now=CREATED))
    with pytest.raises(InvalidRequest) as caught:
        decode_page_token(token, other)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def _encoded(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!",
        "ünïcødé",
        _encoded([1, 2, 3]),
        _encoded({"q": OperationQuery().fingerprint()}),
        _encoded({"q": OperationQuery().fingerprint(), "t": "soon", "i": "x"}),
        _encoded({"q": OperationQuery().fingerprint(), "t": 1, "i": 7}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        # The right head but another format byte, no id, or an id that is not UTF-8.
        packed(2, 1, b"x"),
        packed(1, 1, b""),
        packed(1, 1, b"\xff"),
        packed(1, 2**62, b"x"),
        packed(1, 1, b"x")[:-2],  # truncated
        tampered(packed(1, 1, b"x")),
    ],
)
def test_a_malformed_page_token_is_rejected(token: str) -> None:
    assert packed(1, 1, b"x") != token  # the one sound token in the family is accepted:
    assert build_query(page_token=packed(1, 1, b"x")).after == Cursor(from_micros(1), "x")
    with pytest.raises(InvalidRequest) as caught:
        build_query(page_token=token)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_a_missing_or_zero_page_size_means_the_default() -> None:
    assert build_query().page_size == DEFAULT_PAGE_SIZE
    assert build_query(page_size=0).page_size == DEFAULT_PAGE_SIZE


def test_a_negative_page_size_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_query(page_size=-1)
    assert caught.value.reason == "INVALID_PAGE_SIZE"


def test_a_page_size_above_the_maximum_is_capped() -> None:
    assert build_query(page_size=MAX_PAGE_SIZE + 1).page_size == MAX_PAGE_SIZE
    assert build_query(page_size=500, max_page_size=100).page_size == 100


def test_a_bad_filter_fails_the_query() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_query(filter_text="state=")
    assert caught.value.reason == "INVALID_FILTER"


def test_page_of_cuts_the_extra_row_into_a_token() -> None:
    query = OperationQuery(page_size=2)
    ops = [make_operation(now=CREATED) for _ in range(3)]
    page = page_of(query, ops)
    assert page.operations == ops[:2]
    assert page.next_page_token is not None
    assert decode_page_token(page.next_page_token, query) == Cursor(CREATED, ops[1].id)
    # Opaque (AIP-158): packed bytes, not a structure a client could read and start relying on.
    raw = token_bytes(page.next_page_token)
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        json.loads(raw)
    assert str(1772366400123456).encode() not in raw
    assert page.next_page_token.replace("-", "").replace("_", "").isalnum()
    last = page_of(query, ops[:2])
    assert last.operations == ops[:2]
    assert last.next_page_token is None


def test_page_token_is_bound_to_the_filter_not_its_spelling() -> None:
    from longrunning.core.listing import encode_page_token
    from longrunning.testing.factories import make_operation

    first = build_query(filter_text="state=RUNNING AND kind=demo.sleep")
    token = encode_page_token(first, make_operation())
    respelled = build_query(filter_text="state = RUNNING   AND kind = demo.sleep", page_token=token)
    assert respelled.after is not None
    with pytest.raises(InvalidRequest):
        build_query(filter_text="state = PENDING", page_token=token)
