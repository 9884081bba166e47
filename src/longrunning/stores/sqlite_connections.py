"""SQLite connections for a file that several processes share: opening the reader (aiosqlite)
and the writer (plain sqlite3, driven by `stores.sqlite_writer`) with the pragmas that make
sharing safe, running statements on them, and migrating the schema through the writer. No
operation semantics here: those live in `stores.sqlite`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from longrunning.core.errors import StoreError
from longrunning.core.timestamps import format_timestamp
from longrunning.stores._rows import SqlValue
from longrunning.stores.migrate import Migration
from longrunning.stores.sqlite_writer import GroupCommitWriter

BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another connection's write lock before failing."""
MIN_SQLITE_VERSION = (3, 37, 0)
"""STRICT tables; JSON functions, RETURNING and row values are older."""

_log = logging.getLogger(__name__)
Row = Sequence[Any]
Params = Sequence[SqlValue]

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT"
)


async def run(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[Row]:
    """A statement on the reader connection."""
    return list(await conn.execute_fetchall(sql, params))


def run_sync(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[Row]:
    """A statement on the writer connection, in the writer's thread."""
    return conn.execute(sql, params).fetchall()


async def connect_reader(path: Path) -> aiosqlite.Connection:
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
        await run(conn, "PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


POINT_READ_BUSY_MS = 20
"""How long a read on the event loop's thread may wait for the file before going elsewhere."""


def connect_point_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection for reads by primary key on the event loop's thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        run_sync(conn, f"PRAGMA busy_timeout = {POINT_READ_BUSY_MS}")
        run_sync(conn, "PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_writer(path: Path) -> sqlite3.Connection:
    """Blocking: call it in a thread. The connection may then move to the writer's thread."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        run_sync(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        run_sync(conn, "PRAGMA foreign_keys = ON")
        # FULL syncs the WAL at every commit: an acknowledged write survives power loss.
        run_sync(conn, "PRAGMA synchronous = FULL")
        _use_wal(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = run_sync(conn, "PRAGMA journal_mode = WAL")[0][0]
            break
        except sqlite3.OperationalError as exc:
            # While other connections set up the same new file, the switch can fail with
            # SQLITE_BUSY at once: SQLite skips the busy handler there to avoid deadlocks.
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
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
    """Runs migrations through the store's writer (see `stores.migrate`)."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self._writer = writer

    async def applied_versions(self) -> set[int]:
        def read(conn: sqlite3.Connection) -> tuple[set[int], bool]:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            if not run_sync(conn, sql):
                return set(), False
            rows = run_sync(conn, "SELECT version FROM schema_migrations")
            return {int(row[0]) for row in rows}, False

        return await self._writer.write(read)

    async def apply_migration(self, migration: Migration) -> bool:
        def work(conn: sqlite3.Connection) -> tuple[bool, bool]:
            run_sync(conn, _MIGRATIONS_TABLE)
            sql = "SELECT 1 FROM schema_migrations WHERE version = ?"
            if run_sync(conn, sql, (migration.version,)):
                return False, False
            for statement in _statements(migration.sql):
                run_sync(conn, statement)
            run_sync(
                conn,
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, format_timestamp(datetime.now(UTC))),
            )
            _log.info("applied SQLite migration %s", migration.label)
            return True, True

        return await self._writer.write(work)
