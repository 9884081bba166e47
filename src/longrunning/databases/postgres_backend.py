"""PostgresBackend: the DatabaseBackend of a PostgresServer.

A managed database `db` is the PostgreSQL database `{prefix}{db}`; no other database of the
server is ever listed or touched. Server-level statements run in the maintenance database
(server.dsn), the rest in the managed database. Long statements run through `run_statement`
(postgres_sessions.py: the cancel ladder) with a watch from postgres_watches.py; dumps and
restores are postgres_dump.py's. Identifiers and values reach SQL only through psycopg.sql or
as bound parameters.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from longrunning.core.json_values import JsonObject
from longrunning.databases import postgres_alter
from longrunning.databases.backend import DatabaseInfo, FileInfo, IndexSpec
from longrunning.databases.postgres_sessions import (
    Connection,
    connect,
    failure,
    fetch_one,
    restated,
    run_statement,
)
from longrunning.databases.postgres_watches import CopyProgress, IndexProgress
from longrunning.databases.servers import PostgresServer
from longrunning.databases.work import ProgressClock, Work

_INDEX_OF_TABLE = """
SELECT n.nspname, i.indisvalid
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = to_regclass(quote_ident(%s)) AND c.relname = %s
"""


class PostgresBackend:
    def __init__(self, server: PostgresServer) -> None:
        self._server = server

    @property
    def server(self) -> PostgresServer:
        return self._server

    # Reads.

    async def names(self) -> list[str]:
        prefix = self._server.database_prefix
        conn = await connect(self._server, None, "listing databases")
        try:
            cursor = await conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate"
                " AND left(datname, %s) = %s",
                (len(prefix), prefix),
            )
            rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise failure(self._server, exc, "listing databases") from exc
        finally:
            await conn.close()
        return sorted(str(name)[len(prefix) :] for (name,) in rows)

    async def describe(self, database: str) -> DatabaseInfo | None:
        row = await fetch_one(
            self._server,
            None,
            "SELECT pg_database_size(oid) FROM pg_database WHERE datname = %s"
            " AND NOT datistemplate",
            (self._server.database_name(database),),
            f"describing database {database!r}",
        )
        if row is None or row[0] is None:
            return None
        return DatabaseInfo(name=database, size_bytes=int(row[0]), created=None)

    async def files(self) -> list[FileInfo]:
        return await asyncio.to_thread(_files_in, self._server.files)

    def check_name(self, database: str) -> None:
        self._server.database_name(database)

    def check_alter(self, changes: JsonObject) -> None:
        postgres_alter.check_changes(changes)

    # Changes.

    async def create(self, work: Work, database: str) -> JsonObject:
        name = self._server.database_name(database)
        clock = ProgressClock(work)
        clock.report(0, 1, f"creating database {database!r}")
        await run_statement(
            work,
            self._server,
            None,
            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)),
            doing=f"creating database {database!r}",
            settle=lambda monitor: _database_exists(monitor, name),
        )
        clock.report(1, 1, f"database {database!r} created")
        return {}

    async def drop(self, work: Work, database: str) -> JsonObject:
        name = self._server.database_name(database)
        doing = f"dropping database {database!r}"
        clock = ProgressClock(work)
        clock.report(0, 1, doing)
        conn = await connect(self._server, None, doing)
        try:
            await conn.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )
        except psycopg.errors.InvalidCatalogName as exc:
            message = f"database {database!r} does not exist on server {self._server.name!r}"
            raise failure(self._server, restated(exc, message), doing) from exc
        except psycopg.Error as exc:
            raise failure(self._server, exc, doing) from exc
        finally:
            await conn.close()
        clock.report(1, 1, f"database {database!r} dropped")
        return {}

    async def copy(self, work: Work, source: str, database: str) -> JsonObject:
        name = self._server.database_name(database)
        source_name = self._server.database_name(source)
        doing = f"copying database {source!r} into {database!r}"
        clock = ProgressClock(work)
        clock.report(0, 1, f"starting to copy {source!r}")
        found = await fetch_one(
            self._server,
            None,
            "SELECT pg_current_wal_lsn()::text,"
            " (SELECT pg_database_size(oid) FROM pg_database WHERE datname = %s)",
            (source_name,),
            doing,
        )
        start_lsn, source_bytes = (str(found[0]), int(found[1] or 0)) if found else ("0/0", 0)
        await run_statement(
            work,
            self._server,
            None,
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source_name)
            ),
            doing=doing,
            watch=CopyProgress(clock, start_lsn, source_bytes, f"copying {source!r}"),
            settle=lambda monitor: _database_exists(monitor, name),
            explain=lambda exc: _source_busy(exc, source),
        )
        info = await self.describe(database)
        clock.report(1, 1, f"copied {source!r} into {database!r}")
        return {"sizeBytes": info.size_bytes if info else 0}

    async def alter(self, work: Work, database: str, changes: JsonObject) -> JsonObject:
        postgres_alter.check_changes(changes)
        await self._require(database)
        return await postgres_alter.alter(work, self._server, database, changes)

    async def create_index(self, work: Work, database: str, index: IndexSpec) -> JsonObject:
        doing = f"creating index {index.name!r} on {index.table!r} in database {database!r}"
        await self._require(database)
        # Settling after a failed build drops an INVALID index of this name: it must be ours.
        existing = await fetch_one(
            self._server, database, _INDEX_OF_TABLE, (index.table, index.name), doing
        )
        if existing is not None:
            state = "valid" if existing[1] else "INVALID: drop it first"
            already = psycopg.errors.DuplicateTable(
                f"index {index.name!r} already exists on table {index.table!r} ({state})"
            )
            raise failure(self._server, already, doing)
        statement = sql.SQL(
            "CREATE {unique}INDEX CONCURRENTLY {name} ON {table} ({columns})"
        ).format(
            unique=sql.SQL("UNIQUE " if index.unique else ""),
            name=sql.Identifier(index.name),
            table=sql.Identifier(index.table),
            columns=sql.SQL(", ").join(sql.Identifier(column) for column in index.columns),
        )
        clock = ProgressClock(work)
        clock.report(0, 100, f"starting CREATE INDEX CONCURRENTLY {index.name}")

        async def settle(monitor: Connection) -> bool:
            """A cancelled or failed concurrent build leaves its index behind, INVALID."""
            cursor = await monitor.execute(_INDEX_OF_TABLE, (index.table, index.name))
            found = await cursor.fetchone()
            if found is None:
                return False
            if found[1]:
                return True
            await monitor.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                    sql.Identifier(str(found[0]), index.name)
                )
            )
            return False

        await run_statement(
            work,
            self._server,
            database,
            statement,
            doing=doing,
            watch=IndexProgress(work, clock),
            settle=settle,
        )
        found = await fetch_one(
            self._server, database, _INDEX_OF_TABLE, (index.table, index.name), doing
        )
        valid = bool(found and found[1])
        clock.report(100, 100, f"index {index.name} is {'valid' if valid else 'INVALID'}")
        return {"index": index.name, "table": index.table, "valid": valid}

    # Dumps and restores: pg_dump and pg_restore, postgres_dump.py's.

    async def backup(self, work: Work, database: str, file: str) -> JsonObject:
        from longrunning.databases import postgres_dump

        return await postgres_dump.dump(work, self._server, database, file, title="BACKUP DATABASE")

    async def export(self, work: Work, database: str, file: str) -> JsonObject:
        from longrunning.databases import postgres_dump

        return await postgres_dump.dump(work, self._server, database, file, title="EXPORT DATABASE")

    async def restore(self, work: Work, file: str, database: str) -> JsonObject:
        from longrunning.databases import postgres_dump

        return await postgres_dump.load(
            work, self._server, file, database, title="DATABASE RESTORE"
        )

    async def import_(self, work: Work, file: str, database: str) -> JsonObject:
        from longrunning.databases import postgres_dump

        return await postgres_dump.load(work, self._server, file, database, title="IMPORT DATABASE")

    # Steps.

    async def _require(self, database: str) -> None:
        """Connecting to a missing database fails without a SQLSTATE, so look first."""
        if await self.describe(database) is None:
            missing = psycopg.errors.InvalidCatalogName(
                f"database {database!r} does not exist on server {self._server.name!r}"
            )
            raise failure(self._server, missing, f"opening database {database!r}")


async def _database_exists(monitor: Connection, name: str) -> bool:
    cursor = await monitor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return await cursor.fetchone() is not None


def _source_busy(exc: psycopg.Error, source: str) -> psycopg.Error | None:
    """PostgreSQL copies a database only while no other session is connected to it."""
    if not isinstance(exc, psycopg.errors.ObjectInUse):
        return None
    sessions = (exc.diag.message_detail or "").strip()
    return restated(
        exc,
        f"database {source!r} is in use: PostgreSQL copies a database only while no other "
        f"session is connected to it{' (' + sessions.rstrip('.') + ')' if sessions else ''}; "
        "close those sessions and copy again",
    )


def _files_in(directory: Path) -> list[FileInfo]:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat(follow_symlinks=False)
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(FileInfo(name=entry.name, size_bytes=stat.st_size, modified=modified))
    return sorted(found, key=lambda file: file.name)
