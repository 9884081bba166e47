"""SQLite connections for a file that several processes share: opening them with the pragmas
that make sharing safe, running statements and IMMEDIATE transactions on them, and migrating the
schema through them. No operation semantics here: those live in `stores.sqlite`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from longrunning.core.errors import StoreError
from longrunning.core.timestamps import format_timestamp
from longrunning.stores._rows import SqlValue
from longrunning.stores.migrate import Migration

BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another connection's write lock before failing."""
MIN_SQLITE_VERSION = (3, 37, 0)
"""STRICT tables; JSON functions, RETURNING and row values are older."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
Row = Sequence[Any]
Params = Sequence[SqlValue]

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT"
)

Work = Callable[[aiosqlite.Connection], Awaitable[tuple[_T, bool]]]
"""A write transaction's body: its result, and whether it changed anything."""


async def run(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[Row]:
    return list(await conn.execute_fetchall(sql, params))


async def transaction(conn: aiosqlite.Connection, work: Work[_T]) -> tuple[_T, bool]:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    # writes can fail with SQLITE_BUSY without waiting when another process wrote meanwhile.
    await run(conn, "BEGIN IMMEDIATE")
    try:
        result = await work(conn)
        await run(conn, "COMMIT")
    except BaseException:
        try:
            await conn.rollback()
        except sqlite3.Error:
            _log.exception("rollback failed")
        raise
    return result


async def connect(path: Path, *, writer: bool) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module opens no transactions of its own.
    pending = aiosqlite.connect(path, isolation_level=None)
    try:
        conn = await pending
    except BaseException:
        # When sqlite3.connect fails, aiosqlite (0.22) stops its worker thread without waiting;
        # the thread may then report to an event loop that has closed. Wait for it to end.
        await asyncio.to_thread(pending._thread.join, 5)
        raise
    try:
        await run(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await run(conn, "PRAGMA foreign_keys = ON")
        # FULL syncs the WAL at every commit: an acknowledged write survives power loss.
        await run(conn, "PRAGMA synchronous = FULL")
        if writer:
            await _use_wal(conn, path)
        else:
            await run(conn, "PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _use_wal(conn: aiosqlite.Connection, path: Path) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = (await run(conn, "PRAGMA journal_mode = WAL"))[0][0]
            break
        except sqlite3.OperationalError as exc:
            # While other connections set up the same new file, the switch can fail with
            # SQLITE_BUSY at once: SQLite skips the busy handler there to avoid deadlocks.
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
    if str(mode).lower() != "wal":
        raise StoreError(f"SQLite cannot use WAL for {path} (journal mode {mode})")


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (SQLite runs one `execute` at a time)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    leftover = "".join(
        line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--")
    )
    if leftover:
        raise StoreError(f"migration ends with an incomplete statement: {leftover[:80]!r}")
    return statements


class SQLiteSchema:
    """Runs migrations on the writer connection (see `stores.migrate`)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def applied_versions(self) -> set[int]:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        if not await run(self._conn, sql):
            return set()
        return {
            int(row[0]) for row in await run(self._conn, "SELECT version FROM schema_migrations")
        }

    async def apply_migration(self, migration: Migration) -> bool:
        async def work(conn: aiosqlite.Connection) -> tuple[bool, bool]:
            await run(conn, _MIGRATIONS_TABLE)
            sql = "SELECT 1 FROM schema_migrations WHERE version = ?"
            if await run(conn, sql, (migration.version,)):
                return False, False
            for statement in _statements(migration.sql):
                await run(conn, statement)
            await run(
                conn,
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, format_timestamp(datetime.now(UTC))),
            )
            _log.info("applied SQLite migration %s", migration.label)
            return True, True

        ran, _ = await transaction(self._conn, work)
        return ran
