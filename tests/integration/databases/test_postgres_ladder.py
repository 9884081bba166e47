"""The cancel ladder of postgres_sessions.run_statement beyond what PostgresBackend's tests
reach: a statement that ignores pg_cancel_backend is ended by pg_terminate_backend after the
server's grace, and a task cancelled from outside stops its statement. Either way the settle
step runs and no session is left behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import sql

from longrunning.databases.postgres_backend import PostgresBackend
from longrunning.databases.postgres_sessions import Connection, run_statement
from longrunning.databases.servers import PostgresServer
from longrunning.engine.context import OperationCancelled
from tests.integration.databases.managed_postgres import (
    WAIT_SECONDS,
    managed_server,
    no_sessions_left,
    poll_until,
    run_sql,
)
from tests.recording_work import RecordingWork


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with managed_server(tmp_path_factory.mktemp("pg-files")) as managed:
        yield managed


# The ladder's last rungs, on a statement that swallows pg_cancel_backend (PL/pgSQL may trap
# query_canceled) and ends by itself after at most 100 x 0.1 s.
STUBBORN = sql.SQL(
    "DO $$ BEGIN FOR i IN 1..100 LOOP"
    " BEGIN PERFORM pg_sleep(0.1); EXCEPTION WHEN query_canceled THEN NULL; END;"
    " END LOOP; END $$"
)


async def test_a_statement_that_ignores_the_cancel_is_terminated_after_the_grace(
    server: PostgresServer,
) -> None:
    await PostgresBackend(server).create(RecordingWork(), "ladder")
    settled: list[str] = []

    async def settle(monitor: Connection) -> bool:
        settled.append("settled")
        return False

    work = RecordingWork()
    task = asyncio.create_task(
        run_statement(work, server, "ladder", STUBBORN, doing="sleeping", settle=settle)
    )
    await poll_until(lambda: stubborn_sessions(server) == [(1,)], "the statement to start")
    work.cancel()
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        await asyncio.wait_for(task, WAIT_SECONDS)
    # Cancelled at the next poll (0.2 s), terminated after the grace (2 s) at a poll.
    assert 2.0 <= time.monotonic() - started < 4.0
    assert settled == ["settled"]
    await no_sessions_left(server)


async def test_a_task_cancelled_from_outside_stops_its_statement(
    server: PostgresServer,
) -> None:
    await PostgresBackend(server).create(RecordingWork(), "outside")
    settled: list[str] = []

    async def settle(monitor: Connection) -> bool:
        settled.append("settled")
        return False

    sleeping = sql.SQL("SELECT pg_sleep(20)")
    task = asyncio.create_task(
        run_statement(RecordingWork(), server, "outside", sleeping, doing="sleeping", settle=settle)
    )
    await poll_until(lambda: sleeping_sessions(server) == [(1,)], "the statement to start")
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_SECONDS)
    assert time.monotonic() - started < 3.0
    assert settled == ["settled"]
    await no_sessions_left(server)


def stubborn_sessions(server: PostgresServer) -> list[Any]:
    return run_sql(
        server,
        None,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN FOR%'"
        f" AND {_ours(server)}",
    )


def sleeping_sessions(server: PostgresServer) -> list[Any]:
    return run_sql(
        server,
        None,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'"
        f" AND state = 'active' AND {_ours(server)}",
    )


def _ours(server: PostgresServer) -> str:
    """Only this test session's databases: another suite may share the cluster."""
    return f"starts_with(datname, '{server.database_prefix}')"
