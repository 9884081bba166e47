"""Database resource names on the Google face, and which request paths are about databases:

    {parent}/servers/{server}/databases                      the collection (List, Create, :import)
    {parent}/servers/{server}/databases/{database}           one database (Get, Delete, :export)
    {parent}/servers/{server}/databases/{database}/indexes   its indexes (CreateIndex)

`{parent}` is the server's configured parent (`projects/local/locations/local` by default).
No operation name has one of these shapes (those end in `/operations` or `/operations/{id}`,
and a parent is collection/id pairs), so the two kinds of route never compete. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from longrunning.core.errors import InvalidRequest
from longrunning.databases.backend import check_file_name
from longrunning.databases.names import DatabaseRef


class Shape(StrEnum):
    DATABASES = "databases"
    DATABASE = "database"
    INDEXES = "indexes"


@dataclass(frozen=True, slots=True)
class DatabasePath:
    """A request path about databases, its segments percent-decoded one by one."""

    shape: Shape
    parent: str
    server: str
    database: str | None
    """None for the collection."""
    verb: str
    """The custom method after `:`, or empty."""


def match(raw_path: str) -> DatabasePath | None:
    """`/{version}/{name}[:verb]`, still percent-encoded, if its name has a database shape.
    Segments are decoded after splitting, so an encoded `/` never adds one, and the verb is
    split off before decoding, so an encoded `:` is never a verb."""
    raw = raw_path.split("/")[2:]
    if not raw:
        return None
    last, _, verb = raw[-1].partition(":")
    s = [unquote(segment) for segment in [*raw[:-1], last]]
    n = len(s)
    if n >= 6 and (s[-5], s[-3], s[-1]) == ("servers", "databases", "indexes"):
        shape, server, database, parent = Shape.INDEXES, s[-4], s[-2], s[:-5]
    elif n >= 5 and (s[-4], s[-2]) == ("servers", "databases"):
        shape, server, database, parent = Shape.DATABASE, s[-3], s[-1], s[:-4]
    elif n >= 4 and (s[-3], s[-1]) == ("servers", "databases"):
        shape, server, database, parent = Shape.DATABASES, s[-2], None, s[:-3]
    else:
        return None
    return DatabasePath(shape, "/".join(parent), server, database, verb)


def database_name(parent: str, ref: DatabaseRef) -> str:
    return f"{parent}/servers/{ref.server}/databases/{ref.database}"


def parse_database_name(name: str) -> tuple[str, str, str]:
    """A full database name (e.g. a copy's `sourceDatabase`) as (parent, server, database)."""
    s = name.split("/")
    if len(s) < 5 or (s[-4], s[-2]) != ("servers", "databases") or not s[-1]:
        raise InvalidRequest(
            f"{name[:200]!r} is not a database name like "
            "projects/p/locations/l/servers/s/databases/d",
            reason="INVALID_NAME",
            metadata={"name": name[:200]},
        )
    return "/".join(s[:-4]), s[-3], s[-1]


def uri_file(uri: str) -> str:
    """The file a URI names: its last path segment, percent-decoded (`gs://b/dumps/sales.sql` is
    `sales.sql`), which must be a file name of the server's files directory."""
    return check_file_name(unquote(urlsplit(uri.strip()).path.rpartition("/")[2]))
