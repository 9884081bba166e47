"""Listing queries, pages and the opaque page tokens that resume them. Pure: no I/O.

Listing is keyset pagination over (create_time, id), so a page costs one index range scan
however deep it is, and an operation created meanwhile never shifts later pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from longrunning.core.errors import InvalidRequest
from longrunning.core.filtering import And, Filter, parse_filter
from longrunning.core.operation import Operation
from longrunning.core.timestamps import from_micros, to_micros

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: the last operation's create time and id."""

    create_time: datetime
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationQuery:
    parent: str | None = None
    """Only operations whose parent is exactly this; None lists every parent."""
    filter_text: str = ""
    filter: Filter | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    newest_first: bool = True
    after: Cursor | None = None

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")

    def fingerprint(self) -> str:
        """What a page token is bound to: the same parent, filter and order, nothing else.

        The parsed filter counts, not its spelling: `state=RUNNING` and `state = RUNNING` share
        their tokens.
        """
        spelled = repr(self.filter) if self.filter is not None else self.filter_text
        key = json.dumps([self.parent, spelled, self.newest_first])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Page:
    operations: list[Operation]
    next_page_token: str | None


def build_query(
    *,
    parent: str | None = None,
    filter_text: str = "",
    page_size: int | None = None,
    page_token: str | None = None,
    newest_first: bool = True,
    max_page_size: int = MAX_PAGE_SIZE,
    aliases: Mapping[str, str] | None = None,
    within: Filter | None = None,
) -> OperationQuery:
    """Validate listing arguments from any face into one query.

    `aliases` are the face's filter field names (see `parse_filter`); `within` narrows the
    query further, e.g. to the parents a wildcard parent stands for.
    """
    if page_size is None or page_size == 0:
        page_size = DEFAULT_PAGE_SIZE
    if page_size < 0:
        raise InvalidRequest("page size must not be negative", reason="INVALID_PAGE_SIZE")
    parsed = parse_filter(filter_text, aliases=aliases)
    if within is not None:
        parsed = within if parsed is None else And((within, parsed))
    query = OperationQuery(
        parent=parent,
        filter_text=filter_text,
        filter=parsed,
        page_size=min(page_size, max_page_size),
        newest_first=newest_first,
    )
    if page_token:
        return OperationQuery(
            parent=query.parent,
            filter_text=query.filter_text,
            filter=query.filter,
            page_size=query.page_size,
            newest_first=query.newest_first,
            after=decode_page_token(page_token, query),
        )
    return query


_TOKEN_FORMAT = 1
_TOKEN_HEAD = struct.Struct(">B8sq")
"""Format byte, query fingerprint, cursor create time (microseconds); then the cursor id, and a
CRC-32 of all that, so a truncated or altered token is refused rather than resumed elsewhere."""


def encode_page_token(query: OperationQuery, last: Operation) -> str:
    """An opaque, URL-safe token: packed bytes, not a readable structure (AIP-158), so that
    clients treat it as the black box it is."""
    head = _TOKEN_HEAD.pack(
        _TOKEN_FORMAT, bytes.fromhex(query.fingerprint()), to_micros(last.create_time)
    )
    body = head + last.id.encode()
    check = zlib.crc32(body).to_bytes(4, "big")
    return base64.urlsafe_b64encode(body + check).decode().rstrip("=")


def decode_page_token(token: str, query: OperationQuery) -> Cursor:
    bad = InvalidRequest(
        "invalid page token: it is malformed or belongs to another query",
        reason="INVALID_PAGE_TOKEN",
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body, check = raw[:-4], raw[-4:]
        if zlib.crc32(body).to_bytes(4, "big") != check:  # truncated or tampered with
            raise ValueError("bad checksum")
        version, fingerprint, micros = _TOKEN_HEAD.unpack_from(body)
        op_id = body[_TOKEN_HEAD.size :].decode()
        cursor = Cursor(create_time=from_micros(micros), id=op_id)
    except (ValueError, binascii.Error, struct.error, OverflowError):
        raise bad from None
    if version != _TOKEN_FORMAT or fingerprint.hex() != query.fingerprint() or not op_id:
        raise bad
    return cursor


def page_of(query: OperationQuery, rows: list[Operation]) -> Page:
    """Cut rows fetched with `page_size + 1` into a page and the token for the next one."""
    if len(rows) > query.page_size:
        kept = rows[: query.page_size]
        return Page(kept, encode_page_token(query, kept[-1]))
    return Page(rows, None)


def sort_key(op: Operation) -> tuple[datetime, str]:
    return (op.create_time, op.id)
