"""Database and server names, and the operation target that ties an operation to a database.

An operation works on a database when its target is `servers/{server}/databases/{database}`;
every face maps its own resource names (Azure ids, Google names) to this one. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longrunning.core.errors import InvalidRequest

_SERVER = re.compile(r"[a-z0-9]+(-+[a-z0-9]+)*")
# Azure SQL's rule for database names (2025-01-01): no <>*%&:\/? or control characters, and no
# trailing dot or space.
_DATABASE = re.compile(r"[^<>*%&:\\/?\x00-\x1f]*[^.<>*%&:\\/?\s\x00-\x1f]")
_TARGET = re.compile(r"servers/([^/]+)/databases/(.+)")


def check_server_name(name: str) -> str:
    if len(name) > 63 or not _SERVER.fullmatch(name):
        raise InvalidRequest(
            f"server name {name[:80]!r} is not valid: 1 to 63 of a-z, 0-9 and inner hyphens",
            reason="INVALID_SERVER_NAME",
            metadata={"server": name[:80]},
        )
    return name


def check_database_name(name: str) -> str:
    if len(name) > 128 or not _DATABASE.fullmatch(name):
        raise InvalidRequest(
            f"database name {name[:80]!r} is not valid: 1 to 128 characters, none of "
            "<>*%&:\\/? or control characters, not ending in a dot or a space",
            reason="INVALID_DATABASE_NAME",
            metadata={"database": name[:80]},
        )
    return name


@dataclass(frozen=True, slots=True, order=True)
class DatabaseRef:
    server: str
    database: str

    @classmethod
    def checked(cls, server: str, database: str) -> DatabaseRef:
        return cls(check_server_name(server), check_database_name(database))

    @property
    def target(self) -> str:
        """The operation target naming this database."""
        return f"{server_target(self.server)}/databases/{self.database}"

    @classmethod
    def from_target(cls, target: str | None) -> DatabaseRef | None:
        """The database an operation works on, or None if its target is not a database."""
        match = _TARGET.fullmatch(target or "")
        return None if match is None else cls(match[1], match[2])

    def __str__(self) -> str:
        return f"{self.server}/{self.database}"


def server_target(server: str) -> str:
    return f"servers/{server}"
