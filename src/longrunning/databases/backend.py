"""DatabaseBackend: the one protocol every kind of database server implements.

`SqliteBackend` (sqlite_backend.py) and `PostgresBackend` (postgres_backend.py) do the real work;
the kinds (kinds.py) only parse requests and pick the backend of the server a request names.
Also here: what the work takes and gives (IndexSpec, DatabaseInfo) and the rules for the names of
exported and backed-up files. No I/O here.

Every method that changes something takes the operation's `Work`: it reports progress, stops at
the next safe point once a cancel is requested (raising what `work.checkpoint()` raises), and
leaves nothing half-made behind: no partial file, no half-created database, no INVALID index.
A source database is only ever read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject
from longrunning.databases.servers import DatabaseServer
from longrunning.databases.work import Work

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_IDENTIFIER_MAX = 63


def check_file_name(name: str) -> str:
    """An export or backup file: one plain name in the server's files directory, never a path."""
    if not _FILE_NAME.fullmatch(name) or name.endswith(".partial"):
        raise InvalidRequest(
            f"file name {name[:80]!r} is not valid: 1 to 200 of A-Z, a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit",
            reason="INVALID_FILE_NAME",
            metadata={"file": name[:80]},
        )
    return name


def check_identifier(value: object, what: str) -> str:
    """A table, column or index name: any text a database accepts once quoted, bounded."""
    if not isinstance(value, str) or not 1 <= len(value.encode()) <= _IDENTIFIER_MAX:
        raise InvalidRequest(
            f"{what} must be a name of 1 to {_IDENTIFIER_MAX} bytes", reason="INVALID_REQUEST"
        )
    if "\x00" in value:
        raise InvalidRequest(f"{what} must not contain NUL", reason="INVALID_REQUEST")
    return value


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """CREATE [UNIQUE] INDEX {name} ON {table} ({columns})."""

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False

    @classmethod
    def from_json(cls, value: object) -> IndexSpec:
        if not isinstance(value, dict):
            raise InvalidRequest(
                "request.index must be an object with name, table and columns",
                reason="INVALID_REQUEST",
            )
        unknown = set(value) - {"name", "table", "columns", "unique"}
        if unknown:
            raise InvalidRequest(
                f"unknown field request.index.{sorted(unknown)[0]}", reason="INVALID_REQUEST"
            )
        columns = value.get("columns")
        if not isinstance(columns, list) or not 1 <= len(columns) <= 32:
            raise InvalidRequest(
                "request.index.columns must list 1 to 32 columns", reason="INVALID_REQUEST"
            )
        unique = value.get("unique", False)
        if not isinstance(unique, bool):
            raise InvalidRequest("request.index.unique must be a boolean", reason="INVALID_REQUEST")
        return cls(
            name=check_identifier(value.get("name"), "request.index.name"),
            table=check_identifier(value.get("table"), "request.index.table"),
            columns=tuple(check_identifier(c, "request.index.columns[]") for c in columns),
            unique=unique,
        )

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "table": self.table,
            "columns": list(self.columns),
            "unique": self.unique,
        }


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    name: str
    size_bytes: int
    created: datetime | None
    """When it was made, where the backend knows (a file's modification time for SQLite)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    name: str
    size_bytes: int
    modified: datetime


class DatabaseBackend(Protocol):
    """One server's databases. Reads are cheap; every change is the body of an operation."""

    @property
    def server(self) -> DatabaseServer: ...

    async def names(self) -> list[str]:
        """The server's databases, sorted."""

    async def describe(self, database: str) -> DatabaseInfo | None:
        """None when it does not exist."""

    async def files(self) -> list[FileInfo]:
        """The server's export and backup files, sorted by name."""

    def check_name(self, database: str) -> None:
        """Raise InvalidRequest if this server cannot hold a database of that name."""

    def check_alter(self, changes: JsonObject) -> None:
        """Raise InvalidRequest unless this backend can make every change asked for."""

    async def create(self, work: Work, database: str) -> JsonObject: ...

    async def drop(self, work: Work, database: str) -> JsonObject: ...

    async def copy(self, work: Work, source: str, database: str) -> JsonObject:
        """A new database `database` with the content of `source`, on this same server."""

    async def backup(self, work: Work, database: str, file: str) -> JsonObject:
        """A backup of `database` in file `file` of the server's files directory."""

    async def restore(self, work: Work, file: str, database: str) -> JsonObject:
        """A new database from a backup file."""

    async def export(self, work: Work, database: str, file: str) -> JsonObject:
        """A portable logical dump (SQL text for SQLite, a pg_dump archive for PostgreSQL)."""

    async def import_(self, work: Work, file: str, database: str) -> JsonObject:
        """A new database from an export file; a failed or cancelled import leaves none."""

    async def alter(self, work: Work, database: str, changes: JsonObject) -> JsonObject: ...

    async def create_index(self, work: Work, database: str, index: IndexSpec) -> JsonObject: ...


def files_path(server: DatabaseServer, file: str) -> Path:
    return server.files / check_file_name(file)
