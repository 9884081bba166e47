"""PostgreSQL sessions for the backend: connecting, errors as failures, and the cancel ladder.

`run_statement` runs one long statement (CREATE DATABASE, VACUUM FULL, CREATE INDEX
CONCURRENTLY) in a session of its own while a second session watches it: it polls progress and,
once the operation must stop, climbs the ladder pg_cancel_backend → pg_terminate_backend after
the server's grace → settle (remove what is half-made) → `work.checkpoint()`. Every connection
is closed and every task awaited on the way out. What a statement does and how its progress
reads are the callers' (postgres_backend.py, postgres_alter.py, postgres_watches.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeAlias

import psycopg
from psycopg.abc import Params, QueryNoTemplate
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from longrunning.databases.errors import from_postgres
from longrunning.databases.servers import PostgresServer
from longrunning.databases.work import Work
from longrunning.engine.context import OperationFailed

Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]
Watch: TypeAlias = Callable[[Connection, int], Awaitable[None]]
"""Called with the watching session and the working session's pid at every poll."""
Explain: TypeAlias = Callable[[psycopg.Error], "psycopg.Error | None"]
"""Restates a statement's error for people (`restated`), or None to keep it as it is."""
Settle: TypeAlias = Callable[[Connection], Awaitable[bool]]
"""After a statement ended without success: True if its work turned out complete after all
(the session died after its commit), else remove whatever it left half-made and say False."""

POLL_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 10
_GIVE_UP_SECONDS = 10.0
"""After pg_terminate_backend, how long to wait for the session to end before abandoning it."""
_SETTLE_TIMEOUT_SECONDS = 30.0
_APPLICATION = "longrunning"
# Errors that name something that already exists: the object is someone else's, never ours to
# settle (removing it would destroy another's database or index).
_DUPLICATE = {"42P04", "42P07", "42710"}
_CANCELLED = "57014"
# The session ended under the statement: whether it committed is unknown until looked at.
_SESSION_ENDED = {"57P01", "57P02", "57P03"}


def conninfo(server: PostgresServer, database: str | None = None) -> str:
    """The maintenance database (`database` None) or a managed database of the server."""
    given = conninfo_to_dict(server.dsn)
    extra: dict[str, Any] = {}
    if database is not None:
        extra["dbname"] = server.database_name(database)
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in given:
        extra["application_name"] = _APPLICATION
    return make_conninfo(server.dsn, **extra)


async def connect(server: PostgresServer, database: str | None, doing: str) -> Connection:
    try:
        return await psycopg.AsyncConnection.connect(conninfo(server, database), autocommit=True)
    except psycopg.Error as exc:
        # A connection error's text is libpq's; the chain is dropped so that nothing of the DSN
        # travels further than the scrubbed message.
        raise failure(server, exc, doing) from None


def restated(exc: psycopg.Error, message: str) -> psycopg.Error:
    """An error of the same SQLSTATE with a message for people (unprefixed names, advice)."""
    return psycopg.errors.lookup(exc.sqlstate or "08006")(message)


def failure(server: PostgresServer, exc: psycopg.Error, doing: str) -> OperationFailed:
    """A structured failure; a lost or refused connection is UNAVAILABLE (SQLSTATE 08006)."""
    if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        text = _scrubbed(server, " ".join(str(exc).split()))
        exc = psycopg.errors.lookup("08006")(
            f"PostgreSQL server {server.name!r} is not reachable: {text}"
        )
    return from_postgres(exc, doing)


def _scrubbed(server: PostgresServer, text: str) -> str:
    password = conninfo_to_dict(server.dsn).get("password")
    return text.replace(str(password), "***") if password else text


async def fetch_one(
    server: PostgresServer, database: str | None, query: QueryNoTemplate, params: Params, doing: str
) -> TupleRow | None:
    """The first row of a short query, in a session of its own."""
    conn = await connect(server, database, doing)
    try:
        cursor = await conn.execute(query, params)
        return await cursor.fetchone() if cursor.description else None
    except psycopg.Error as exc:
        raise failure(server, exc, doing) from exc
    finally:
        await conn.close()


async def run_statement(
    work: Work,
    server: PostgresServer,
    database: str | None,
    statement: QueryNoTemplate,
    *,
    doing: str,
    watch: Watch | None = None,
    settle: Settle | None = None,
    explain: Explain | None = None,
) -> None:
    """Run `statement` in database `database` (None: the maintenance database) until it ends.

    Returns when it succeeded (also when a cancel came too late to stop it); raises what
    `work.checkpoint()` raises when our cancel ended it, else a structured OperationFailed.
    """
    work.checkpoint()
    async with AsyncExitStack() as stack:
        monitor = await connect(server, database, doing)
        stack.push_async_callback(monitor.close)
        session = await connect(server, database, doing)
        stack.push_async_callback(session.close)
        pid = session.info.backend_pid
        running = asyncio.create_task(session.execute(statement))
        try:
            asked = await _supervise(work, server, monitor, pid, running, watch)
        except BaseException as exc:
            # Our own failure (the watch's query) or the task being cancelled from outside:
            # the statement must not go on without us, nor leave anything half-made.
            await _stop(running, session)
            if settle is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(settle(monitor), _SETTLE_TIMEOUT_SECONDS)
            if isinstance(exc, psycopg.Error):
                raise failure(server, exc, f"watching {doing}") from exc
            raise
        if not running.done():  # terminated, yet the session never ended
            await _stop(running, session)
            error: BaseException | None = psycopg.OperationalError("the session did not end")
        else:
            error = running.exception()
        if error is None:
            return
        if not isinstance(error, psycopg.Error):
            raise error
        if await _settled(work, server, monitor, error, asked, doing, settle):
            return
        raise failure(server, (explain and explain(error)) or error, doing) from error


async def _settled(
    work: Work,
    server: PostgresServer,
    monitor: Connection,
    error: psycopg.Error,
    asked: bool,
    doing: str,
    settle: Settle | None,
) -> bool:
    """After the statement failed: True if its work turned out complete; raise the
    cancellation if our cancel ended it; False for the caller to report the failure."""
    state = error.sqlstate
    if state in _DUPLICATE:
        return False
    unknown_outcome = state is None or state.startswith("08") or state in _SESSION_ENDED
    ours = asked and (state == _CANCELLED or unknown_outcome)
    completed = False
    if settle is not None:
        try:
            completed = await asyncio.wait_for(settle(monitor), _SETTLE_TIMEOUT_SECONDS)
        except (psycopg.Error, TimeoutError) as exc:
            if ours:
                # Reporting CANCELLED would claim nothing is left behind, which is not known.
                if isinstance(exc, psycopg.Error):
                    raise failure(server, exc, f"cleaning up after {doing}") from exc
                raise OperationFailed(
                    f"cleaning up after {doing} did not finish in {_SETTLE_TIMEOUT_SECONDS:g} s"
                ) from exc
    if completed and unknown_outcome:
        return True
    if ours:
        work.checkpoint()
    return False


async def _supervise(
    work: Work,
    server: PostgresServer,
    monitor: Connection,
    pid: int,
    running: asyncio.Task[Any],
    watch: Watch | None,
) -> bool:
    """Wait for the statement, watching it; climb the cancel ladder once the work must stop.
    True once pg_cancel_backend was sent."""
    asked_at: float | None = None
    terminated_at: float | None = None
    while not running.done():
        await asyncio.wait({running}, timeout=POLL_SECONDS)
        if running.done():
            break
        now = time.monotonic()
        if not work.cancel_requested:
            if watch is not None:
                await watch(monitor, pid)
        elif asked_at is None:
            await monitor.execute("SELECT pg_cancel_backend(%s)", (pid,))
            asked_at = now
        elif terminated_at is None:
            if now - asked_at >= server.cancel_grace_seconds:
                await monitor.execute("SELECT pg_terminate_backend(%s)", (pid,))
                terminated_at = now
        elif now - terminated_at >= _GIVE_UP_SECONDS:
            break
    return asked_at is not None


async def _stop(running: asyncio.Task[Any], session: Connection) -> None:
    """End the statement's task; psycopg cancels the query of a cancelled execute itself and
    closes a session that does not answer."""
    if not running.done():
        running.cancel()
        await asyncio.wait({running}, timeout=_GIVE_UP_SECONDS)
    if not running.done():
        await session.close()
        await asyncio.wait({running}, timeout=_GIVE_UP_SECONDS)
    if running.done() and not running.cancelled():
        running.exception()  # retrieved: it is what our caller reports, or moot
