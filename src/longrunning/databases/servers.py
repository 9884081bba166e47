"""Database servers: where each server keeps its databases, from a TOML file or the default.

Without a file there is one server, `local`, keeping SQLite files under the data directory. A
file declares servers by name (see docs/reference/databases.md), each backed by a directory of
SQLite files or by a PostgreSQL server:

    [servers.local]
    directory = "databases/local"      # relative to the file; created if missing
    copy_pages_per_step = 256          # at most this many pages between cancel checks
    copy_step_pause_seconds = 0.0      # a pause between steps keeps the source responsive
    parent = "projects/local/locations/local"   # where its operations are listed (Google names)
    files = "files/local"              # exports and backups; default files/{server}

    [servers.pg]
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres"   # a maintenance database
    database_prefix = "lr_"            # the server manages only databases named so
    cancel_grace_seconds = 5.0         # pg_cancel_backend, then pg_terminate_backend
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from longrunning.core.errors import InvalidRequest, ResourceNotFound
from longrunning.databases.names import check_server_name

DEFAULT_SERVER = "local"
DEFAULT_PARENT = "projects/local/locations/local"
SUFFIX = ".sqlite3"
_MAX_FILE_NAME = 255
_PARTIAL_EXTRA = 22
_COMMON = {"parent", "files"}
_SQLITE_OPTIONS = {"directory", "copy_pages_per_step", "copy_step_pause_seconds"} | _COMMON
_POSTGRES_OPTIONS = {"dsn", "database_prefix", "cancel_grace_seconds"} | _COMMON
_POSTGRES_NAME_BYTES = 63


@dataclass(frozen=True, slots=True, kw_only=True)
class SqliteServer:
    """A server whose databases are SQLite files in one directory."""

    name: str
    directory: Path
    files: Path
    """Where its exports and backups are written and imports and restores read from."""
    copy_pages_per_step: int = 256
    copy_step_pause_seconds: float = 0.0
    parent: str = DEFAULT_PARENT

    def path(self, database: str) -> Path:
        """The database's file. Percent-encoded, so that a database name is one plain file
        name; a leading dot too, since dot files are work in progress, never databases."""
        encoded = quote(database, safe=" !#$'()+,-.;=@[]^_`{}~")
        if encoded.startswith("."):
            encoded = "%2E" + encoded[1:]
        name = encoded + SUFFIX
        # The work-in-progress name beside it is longer by `.` + `.{12 hex}.partial`.
        if len(name.encode()) + _PARTIAL_EXTRA > _MAX_FILE_NAME:
            raise InvalidRequest(
                f"database name {database[:40]!r}... is too long for a file name on server "
                f"{self.name!r}: use fewer characters outside A-Z, a-z and 0-9",
                reason="INVALID_DATABASE_NAME",
                metadata={"database": database[:80]},
            )
        return self.directory / name

    def database_names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            unquote(entry.name[: -len(SUFFIX)])
            for entry in self.directory.iterdir()
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresServer:
    """A server whose databases are the databases of a PostgreSQL server named with a prefix."""

    name: str
    dsn: str
    """Connects to a maintenance database (e.g. `postgres`) as a role that may create databases."""
    files: Path
    database_prefix: str = "lr_"
    """Only databases named `{prefix}{database}` are this server's: others on the same
    PostgreSQL server are never listed, altered or dropped."""
    cancel_grace_seconds: float = 5.0
    parent: str = DEFAULT_PARENT

    def database_name(self, database: str) -> str:
        """The PostgreSQL database a database is, checked against PostgreSQL's name limit."""
        name = self.database_prefix + database
        if len(name.encode()) > _POSTGRES_NAME_BYTES:
            raise InvalidRequest(
                f"database name {database[:40]!r} is too long for PostgreSQL server "
                f"{self.name!r}: with its prefix at most {_POSTGRES_NAME_BYTES} bytes",
                reason="INVALID_DATABASE_NAME",
                metadata={"database": database[:80]},
            )
        return name


DatabaseServer = SqliteServer | PostgresServer


class DatabaseServers:
    """The servers a node knows, by name."""

    def __init__(self, servers: Mapping[str, DatabaseServer]) -> None:
        self._servers = dict(servers)

    def get(self, name: str) -> DatabaseServer:
        try:
            return self._servers[name]
        except KeyError:
            raise ResourceNotFound(
                f"server {name!r} does not exist",
                reason="SERVER_NOT_FOUND",
                metadata={"server": name},
            ) from None

    def __iter__(self) -> Iterator[DatabaseServer]:
        return iter(sorted(self._servers.values(), key=lambda s: s.name))


def default_servers(data_dir: Path) -> DatabaseServers:
    local = SqliteServer(
        name=DEFAULT_SERVER,
        directory=data_dir / "databases" / DEFAULT_SERVER,
        files=data_dir / "files" / DEFAULT_SERVER,
    )
    return DatabaseServers({local.name: local})


def load_servers(path: Path) -> DatabaseServers:
    """Read a servers file; raise ValueError with one clear line if it is not valid."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read database servers from {path}: {exc}") from None
    tables = document.get("servers")
    if not isinstance(tables, dict) or not tables or set(document) != {"servers"}:
        raise ValueError(f"{path}: expected only [servers.NAME] tables, at least one")
    servers: dict[str, DatabaseServer] = {}
    for name, options in tables.items():
        servers[name] = _server(path, name, options)
    return DatabaseServers(servers)


def _server(path: Path, name: str, options: object) -> DatabaseServer:
    where = f"{path}: [servers.{name}]"
    try:
        check_server_name(name)
    except InvalidRequest as exc:
        raise ValueError(f"{where}: {exc.message}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(options) - _SQLITE_OPTIONS - _POSTGRES_OPTIONS
    if unknown:
        raise ValueError(f"{where}: unknown option {sorted(unknown)[0]!r}")
    if ("dsn" in options) == ("directory" in options):
        raise ValueError(f"{where}: give either directory (SQLite) or dsn (PostgreSQL)")
    postgres = "dsn" in options
    misplaced = set(options) - (_POSTGRES_OPTIONS if postgres else _SQLITE_OPTIONS)
    if misplaced:
        other = "SQLite" if postgres else "PostgreSQL"
        raise ValueError(f"{where}: option {sorted(misplaced)[0]!r} is for {other} servers only")
    parent = options.get("parent", DEFAULT_PARENT)
    if not isinstance(parent, str):
        raise ValueError(f"{where}: parent must be a resource name like projects/p/locations/l")
    files = options.get("files", f"files/{name}")
    if not isinstance(files, str) or not files:
        raise ValueError(f"{where}: files must be a path")
    files_path = (path.parent / files).resolve()
    if "dsn" in options:
        return _postgres_server(where, name, options, parent, files_path)
    directory = options.get("directory")
    if not isinstance(directory, str) or not directory:
        raise ValueError(f"{where}: directory must be a path")
    pages = options.get("copy_pages_per_step", 256)
    if isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= 1_000_000:
        raise ValueError(f"{where}: copy_pages_per_step must be an integer from 1 to 1000000")
    pause = options.get("copy_step_pause_seconds", 0.0)
    if isinstance(pause, bool) or not isinstance(pause, int | float) or not 0 <= pause <= 60:
        raise ValueError(f"{where}: copy_step_pause_seconds must be from 0 to 60")
    return SqliteServer(
        name=name,
        directory=(path.parent / directory).resolve(),
        files=files_path,
        copy_pages_per_step=pages,
        copy_step_pause_seconds=float(pause),
        parent=parent,
    )


def _postgres_server(
    where: str, name: str, options: dict[str, object], parent: str, files: Path
) -> PostgresServer:
    dsn = options["dsn"]
    if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"{where}: dsn must be a postgresql:// URL")
    prefix = options.get("database_prefix", "lr_")
    if not isinstance(prefix, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,31}|", prefix):
        raise ValueError(f"{where}: database_prefix must be up to 32 of a-z, 0-9 and _")
    grace = options.get("cancel_grace_seconds", 5.0)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 600:
        raise ValueError(f"{where}: cancel_grace_seconds must be from 0 to 600")
    return PostgresServer(
        name=name,
        dsn=dsn,
        files=files,
        database_prefix=prefix,
        cancel_grace_seconds=float(grace),
        parent=parent,
    )
