"""A PostgresServer for backend tests on the shared PostgreSQL server, and what tests check there.

`managed_server` names the server's databases with a prefix unique to the run (`lr_t{hex}_`) and
its sessions with an application_name of their own, and drops every database with that prefix
afterwards; so tests running beside others on the same server see only what is theirs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from longrunning.core.errors import Code
from longrunning.databases.servers import PostgresServer
from longrunning.engine.context import OperationFailed
from tests.postgres_servers import require_admin_url

WAIT_SECONDS = 30.0


@contextmanager
def managed_server(files: Path, *, cancel_grace_seconds: float = 2.0) -> Iterator[PostgresServer]:
    admin = require_admin_url()
    run = uuid.uuid4().hex[:10]
    prefix = f"lr_t{run}_"
    yield PostgresServer(
        name="pg",
        dsn=make_conninfo(admin, application_name=f"lr_test_{run}"),
        files=files,
        database_prefix=prefix,
        cancel_grace_seconds=cancel_grace_seconds,
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
        for (name,) in rows:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def url(server: PostgresServer, database: str) -> str:
    return make_conninfo(server.dsn, dbname=server.database_name(database))


def run_sql(server: PostgresServer, database: str | None, *statements: str) -> list[Any]:
    """Run statements (in the maintenance database for None); the last one's rows, if any."""
    target = server.dsn if database is None else url(server, database)
    rows: list[Any] = []
    with psycopg.connect(target, autocommit=True, application_name="lr_test_checks") as conn:
        for statement in statements:
            cursor = conn.execute(statement.encode())
            rows = cursor.fetchall() if cursor.description else []
    return rows


async def poll_until(check: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def no_sessions_left(server: PostgresServer) -> None:
    """Every session the backend opened is closed (a closed session leaves shortly after)."""
    application = psycopg.conninfo.conninfo_to_dict(server.dsn)["application_name"]

    def sessions() -> list[Any]:
        return run_sql(
            server,
            None,
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'",
        )

    await poll_until(lambda: sessions() == [(0,)], "the backend's sessions to end", 5)


def failed(excinfo: pytest.ExceptionInfo[OperationFailed]) -> tuple[Code, bool, str]:
    failure = excinfo.value.failure
    return failure.code, failure.is_user_error, failure.message
