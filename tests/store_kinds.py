"""The store kinds every contract, property and engine test runs on, and how to get a fresh one.

PostgreSQL tests share one database per test session, created on first use (from the server that
LONGRUNNING_TEST_POSTGRES_URL names) and emptied before each store is handed out; conftest drops
it when the session ends. Without that variable they skip, which CI turns into a failure.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

from longrunning.core.ports import OperationStore
from longrunning.stores import MemoryStore, PostgresStore, SQLiteStore
from tests.postgres_servers import admin_url, create_database, drop_database, require_admin_url

STORE_KINDS = ["memory", "sqlite", "postgres"]

_session_database: tuple[str, str] | None = None  # (name, url)


def postgres_url() -> str:
    """The URL of this session's test database, created on first use; skips without a server."""
    global _session_database
    admin = require_admin_url()
    if _session_database is None:
        name = f"longrunning_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        _session_database = (name, create_database(admin, name))
    return _session_database[1]


def drop_session_database() -> None:
    global _session_database
    admin = admin_url()
    if _session_database is not None and admin is not None:
        drop_database(admin, _session_database[0])
    _session_database = None


async def empty_postgres_store() -> PostgresStore:
    """An opened PostgresStore on the session database, with no operations in it."""
    store = PostgresStore(postgres_url())
    await store.open()
    async with await psycopg.AsyncConnection.connect(store.conninfo, autocommit=True) as conn:
        await conn.execute("TRUNCATE operations")
    return store


async def fresh_store(kind: str, directory: Path) -> OperationStore:
    """An opened, empty store of `kind` (SQLite: a new file in `directory`)."""
    if kind == "postgres":
        return await empty_postgres_store()
    store: OperationStore = (
        MemoryStore() if kind == "memory" else SQLiteStore(directory / f"{uuid.uuid4().hex}.db")
    )
    await store.open()
    return store
