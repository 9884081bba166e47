"""Export and backup, import and restore of PostgreSQL databases, with pg_dump and pg_restore.

`dump` writes a custom-format archive (`pg_dump -Fc`) of a database into the server's files
directory; `load` makes a new database from such an archive (CREATE DATABASE, then
`pg_restore`). The real client tools run as child processes (child_processes.py) that a cancel
ends. Progress is by rows for a dump (pg_stat_progress_copy of the child's backend, found by its
application_name, against the tables' row estimates) and by the archive's bytes read for a load
(the pg_restore process's file position; the archive does not say how many rows it holds).
Nothing half-made remains: a failed or cancelled dump leaves no file and no partial file, a
failed or cancelled load drops the database it created, and an existing file or database is never
touched. The DSN's password never goes on a command line or into a message: the child gets it in
PGPASSWORD. PostgresBackend delegates here; which operations exist is decided elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from typing import Any, TypeAlias

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject
from longrunning.databases.backend import files_path
from longrunning.databases.child_processes import ChildResult, LineHandler, Poll, run_child
from longrunning.databases.errors import (
    DOMAIN,
    RESOURCE_SEVERITY,
    SERVER_SEVERITY,
    USER_SEVERITY,
    from_os,
    from_postgres,
)
from longrunning.databases.postgres_dump_progress import DumpProgress, LoadProgress, Table
from longrunning.databases.published_files import discard, partial_path, publish
from longrunning.databases.servers import PostgresServer
from longrunning.databases.work import ProgressClock, Work
from longrunning.engine.context import OperationFailed

_TABLE_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA ", re.MULTILINE)
_MESSAGE_LINE = re.compile(r"^(?:pg_dump|pg_restore): (?:error|detail|hint): ")
_TOOL_PREFIX = re.compile(r"^(?:pg_dump|pg_restore): (?:error: )?")
_Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]
_APPLICATION_NAME_CHARS = 50  # PostgreSQL keeps 63 bytes; "-watch" must still fit
_CONNECT_TIMEOUT_SECONDS = 10

# The tables whose rows pg_dump copies: ordinary tables and partitions outside the system
# schemas, except those of extensions (pg_dump leaves those to CREATE EXTENSION).
_TABLES = r"""
SELECT c.oid, n.nspname, c.relname, c.reltuples::float8, pg_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""
_COPYING = """
SELECT p.relid, p.tuples_processed
FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid
WHERE a.application_name = %s
"""

# (code, is_user_error, severity, retryable) by what a client tool's message says, first match.
_TOOL_RULES: tuple[tuple[tuple[str, ...], tuple[Code, bool, int, bool]], ...] = (
    (("does not exist",), (Code.NOT_FOUND, True, USER_SEVERITY, False)),
    (("already exists",), (Code.ALREADY_EXISTS, True, USER_SEVERITY, False)),
    (
        ("permission denied", "must be owner", "password authentication", "no password"),
        (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),
    ),
    (("no space left", "disk full"), (Code.RESOURCE_EXHAUSTED, False, RESOURCE_SEVERITY, False)),
    (
        ("valid archive", "text format dump", "unsupported version", "end of file", "corrupt"),
        (Code.INVALID_ARGUMENT, True, USER_SEVERITY, False),
    ),
    (("version mismatch",), (Code.FAILED_PRECONDITION, False, SERVER_SEVERITY, False)),
    (
        ("could not connect", "connection to server", "server closed the connection"),
        (Code.UNAVAILABLE, False, SERVER_SEVERITY, True),
    ),
)
_TOOL_DEFAULT = (Code.INTERNAL, False, SERVER_SEVERITY, False)


async def dump(
    work: Work, server: PostgresServer, database: str, file: str, *, title: str
) -> JsonObject:
    """Write a pg_dump archive of `database` as `file` in server.files; never overwrite."""
    path = files_path(server, file)
    client = _Client(work, server, database, f"{title} {database!r} to file {file!r}")
    pg_dump = client.tool("pg_dump")
    if await asyncio.to_thread(path.exists):
        raise client.failed(
            f"file {file!r} already exists on server {server.name!r}",
            (Code.ALREADY_EXISTS, True, USER_SEVERITY, False),
            "FILE_EXISTS",
        )
    async with await client.connect(client.pg_name) as conn:
        progress = DumpProgress(ProgressClock(work), database, await _tables(conn, client))
        progress.report()

        async def watch(pid: int) -> None:
            if progress.copy_view:
                try:
                    cursor = await conn.execute(_COPYING, (client.app,))
                    for relid, tuples in await cursor.fetchall():
                        progress.copied(int(relid), int(tuples))
                except psycopg.Error:  # no such view before PostgreSQL 14: count by tables
                    progress.copy_view = False
            progress.report()

        try:
            await asyncio.to_thread(server.files.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise from_os(exc, client.doing) from None
        partial = partial_path(path)
        argv = [pg_dump, "--format=custom", "--verbose", "--no-password", f"--file={partial}"]
        try:
            result = await client.run([*argv, client.dbname], on_line=progress.line, poll=watch)
            if result.returncode:
                raise client.tool_failed("pg_dump", result)
            size = await asyncio.to_thread(publish, partial, path, server=server.name)
        except OSError as exc:
            await asyncio.to_thread(discard, partial)
            raise from_os(exc, client.doing) from None
        except BaseException:
            await asyncio.to_thread(discard, partial)
            raise
    progress.finish()
    return {"file": file, "bytes": size, "tables": progress.started, "rows": progress.rows}


async def load(
    work: Work, server: PostgresServer, file: str, database: str, *, title: str
) -> JsonObject:
    """Make the new database `database` from the pg_dump archive `file` in server.files."""
    path = files_path(server, file)
    client = _Client(work, server, database, f"{title} {database!r} from file {file!r}")
    pg_restore = client.tool("pg_restore")
    try:
        stat = await asyncio.to_thread(path.stat)
    except FileNotFoundError:
        raise client.failed(
            f"file {file!r} does not exist on server {server.name!r}",
            (Code.NOT_FOUND, True, USER_SEVERITY, False),
            "FILE_NOT_FOUND",
        ) from None
    except OSError as exc:
        raise from_os(exc, client.doing) from None
    # The table of contents first: it proves the file is an archive before anything is made.
    listing = await client.run([pg_restore, "--list", str(path)], capture_stdout=True)
    if listing.returncode:
        raise client.tool_failed("pg_restore", listing)
    entries = len(_TABLE_DATA.findall(listing.stdout.decode(errors="replace")))
    work.checkpoint()
    progress = LoadProgress(ProgressClock(work), file, stat.st_size, entries, str(path.resolve()))
    async with await client.connect(None) as admin:
        await _create(admin, client)

        async def watch(pid: int) -> None:
            progress.read_position(pid)
            if progress.copy_view:
                try:
                    cursor = await admin.execute(_COPYING, (client.app,))
                    for _, tuples in await cursor.fetchall():
                        progress.copied(int(tuples))
                except psycopg.Error:  # no such view before PostgreSQL 14
                    progress.copy_view = False
            progress.report()

        argv = [pg_restore, "--verbose", "--no-owner", "--no-privileges", "--exit-on-error"]
        argv += ["--no-password", client.dbname, str(path)]
        try:
            progress.report()
            result = await client.run(argv, on_line=progress.line, poll=watch)
            if result.returncode:
                raise client.tool_failed("pg_restore", result)
        except BaseException:
            await _drop(client)
            raise
    progress.finish()
    return {"file": file, "tables": entries}


class _Client:
    """One operation's way to the server: its child tools and its own sessions, named after
    the operation, with the password kept out of argv and of every message."""

    def __init__(self, work: Work, server: PostgresServer, database: str, doing: str) -> None:
        self.work = work
        self.server = server
        self.database = database
        self.pg_name = server.database_name(database)
        self.doing = doing
        """What is being done, for people: every failure's message starts with it."""
        self.app = re.sub(r"[^A-Za-z0-9._-]", "-", f"longrunning-{work.operation_id}")[
            :_APPLICATION_NAME_CHARS
        ]
        params = conninfo_to_dict(server.dsn)
        password = params.pop("password", None)
        self._password = None if password is None else str(password)
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT_SECONDS)
        params.update(dbname=self.pg_name, application_name=self.app)
        # Visible to every local user (ps), hence no password: the child gets PGPASSWORD.
        self.dbname = f"--dbname={make_conninfo('', **params)}"

    def tool(self, name: str) -> str:
        found = shutil.which(name)
        if found is None:
            raise self.failed(
                f"{name} was not found on PATH: the PostgreSQL client tools (pg_dump, "
                "pg_restore), as new as the server, must be installed where database "
                "operations run",
                (Code.FAILED_PRECONDITION, False, SERVER_SEVERITY, False),
                "CLIENT_TOOLS_MISSING",
            )
        return found

    async def run(
        self,
        argv: list[str],
        *,
        on_line: LineHandler | None = None,
        poll: Poll | None = None,
        capture_stdout: bool = False,
    ) -> ChildResult:
        env = {**os.environ, "PGAPPNAME": self.app, "LC_ALL": "C"}  # C: English, parsed
        env.pop("LANGUAGE", None)
        if self._password is not None:
            env["PGPASSWORD"] = self._password
        try:
            return await run_child(
                self.work, argv, env=env, on_line=on_line, poll=poll, capture_stdout=capture_stdout
            )
        except OSError as exc:
            raise from_os(exc, self.doing) from None

    async def connect(self, pg_name: str | None) -> _Connection:
        """A session of our own in `pg_name` (None: the server's maintenance database)."""
        options: dict[str, Any] = {"application_name": f"{self.app}-watch"}
        if pg_name is not None:
            options["dbname"] = pg_name
        if "connect_timeout" not in conninfo_to_dict(self.server.dsn):
            options["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
        try:
            return await psycopg.AsyncConnection.connect(
                make_conninfo(self.server.dsn, **options), autocommit=True
            )
        except psycopg.Error as exc:
            failure = exc
        # A connection refused for a missing database carries no SQLSTATE: ask the server.
        if pg_name is not None and not await self._exists(pg_name):
            raise self.failed(
                f"database {self.database!r} does not exist on server {self.server.name!r}",
                (Code.NOT_FOUND, True, USER_SEVERITY, False),
                "DATABASE_NOT_FOUND",
            )
        raise self.from_psycopg(failure)

    async def _exists(self, pg_name: str) -> bool:
        async with await self.connect(None) as conn:
            cursor = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (pg_name,))
            return await cursor.fetchone() is not None

    def from_psycopg(self, exc: psycopg.Error, doing: str | None = None) -> OperationFailed:
        if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError):
            message = self._scrub(" ".join(str(exc).split()).removeprefix("connection failed: "))
            return self.failed(
                message, (Code.UNAVAILABLE, False, SERVER_SEVERITY, True), "CONNECTION_FAILED"
            )
        return from_postgres(exc, doing or self.doing)

    def tool_failed(self, tool: str, result: ChildResult) -> OperationFailed:
        """The tool's own error lines (from the first), with any secret removed."""
        lines = [line for line in result.tail if _MESSAGE_LINE.match(line)]
        if not lines:
            lines = [line for line in result.tail if line.strip()][-3:]
        shown = [self._scrub(_TOOL_PREFIX.sub("", line))[:300] for line in lines[:3]]
        if result.returncode < 0:
            shown.append(f"{tool} was killed by signal {-result.returncode}")
        message = "; ".join(shown) or f"{tool} exited with status {result.returncode}"
        lowered = message.lower()
        rule = next((r for words, r in _TOOL_RULES if any(w in lowered for w in words)), None)
        return self.failed(
            message,
            rule or _TOOL_DEFAULT,
            f"{tool.upper()}_FAILED",
            {"tool": tool, "exitStatus": str(result.returncode)},
        )

    def _scrub(self, text: str) -> str:
        text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)
        return text.replace(self._password, "***") if self._password else text

    def failed(
        self,
        message: str,
        rule: tuple[Code, bool, int, bool],
        reason: str,
        metadata: dict[str, str] | None = None,
    ) -> OperationFailed:
        code, user, severity, retryable = rule
        detail: JsonObject = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": DOMAIN,
            "metadata": dict(metadata or {}),
        }
        return OperationFailed(
            f"{self.doing} failed: {message}",
            code=code,
            is_user_error=user,
            severity=severity,
            details=(detail,),
            retryable=retryable,
        )


async def _tables(conn: _Connection, client: _Client) -> list[Table]:
    """The tables with their row estimates. Never analysed (reltuples -1, or 0 before
    PostgreSQL 14) but not empty: the planner's estimate from the table's size, which reads
    no rows and changes nothing (ANALYZE would write statistics into the source)."""
    tables = []
    try:
        for oid, schema, name, reltuples, size in await (await conn.execute(_TABLES)).fetchall():
            estimate = float(reltuples)
            if estimate <= 0 and size > 0:
                plan = sql.SQL("EXPLAIN (FORMAT JSON) SELECT * FROM {}").format(
                    sql.Identifier(schema, name)
                )
                row = await (await conn.execute(plan)).fetchone()
                estimate = float(row[0][0]["Plan"]["Plan Rows"]) if row else 0.0
            tables.append(Table(int(oid), f"{schema}.{name}", max(estimate, 0.0)))
    except psycopg.Error as exc:
        raise client.from_psycopg(exc) from None
    return tables


async def _create(admin: _Connection, client: _Client) -> None:
    # template0: an archive restores cleanly only into a database with nothing in it.
    name = sql.Identifier(client.pg_name)
    try:
        await admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(name))
    except psycopg.errors.DuplicateDatabase:
        raise client.failed(
            f"database {client.database!r} already exists on server {client.server.name!r}",
            (Code.ALREADY_EXISTS, True, USER_SEVERITY, False),
            "DATABASE_EXISTS",
        ) from None
    except psycopg.Error as exc:
        raise client.from_psycopg(exc) from None


async def _drop(client: _Client) -> None:
    """Remove a half-restored database, ending the sessions of a child that was stopped. A
    fresh session: the watcher's may be what broke. Failing here fails the operation (even a
    cancelled one), since then something half-made remains."""
    name = sql.Identifier(client.pg_name)
    try:
        async with await client.connect(None) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    except psycopg.Error as exc:
        raise client.from_psycopg(exc, f"{client.doing}: removing the half-made database") from None
