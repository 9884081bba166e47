"""PostgreSQL connections for the operations store: the pool and how its connections are set up,
what a driver error means to the caller, and migrating the schema. No operation semantics here:
those live in `stores.postgres`.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import TextLoader

from longrunning.core.errors import InvalidRequest, StoreError
from longrunning.stores.migrate import Migration

MIN_SERVER_VERSION = 120000
"""PostgreSQL 12: SKIP LOCKED, EXECUTE FUNCTION triggers and jsonb are older."""
CONNECT_TIMEOUT_SECONDS = 5
"""Unless the URL says otherwise: how long a connection attempt may take."""
APPLICATION_NAME = "longrunning"
"""What pg_stat_activity shows for our sessions, unless the URL names one."""
RECONNECT_GIVE_UP_SECONDS = 3.0
"""How long one pool slot retries (after 1 s, then 2 s) before it is dropped and regrown."""
IDLE_CHECK_SECONDS = 10.0
"""A pooled connection idle this long gets a round trip before it is handed out."""

_MIGRATION_LOCK = 0x6C726D69  # "lrmi": serializes concurrent migrators across every node
_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
)

_log = logging.getLogger("longrunning.stores.postgres")


def connection_settings(url: str) -> str:
    """The conninfo the store connects with: `url` plus our defaults for what it leaves unset."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _first_line(exc).replace(url, "the URL")  # libpq quotes it, password and all
        raise InvalidRequest(
            f"invalid PostgreSQL URL: {reason}", reason="INVALID_STORE_URL"
        ) from None
    defaults: dict[str, str | int] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "application_name": APPLICATION_NAME,
        # A server that vanishes without closing the connection (a network partition, a host
        # lost) must not hang requests and the listener until the kernel's two-hour default.
        "keepalives_idle": 15,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }
    return make_conninfo(url, **{k: v for k, v in defaults.items() if k not in given})


def describe(conninfo: str) -> str:
    """Where a conninfo points, without its password, for messages and logs."""
    parts = conninfo_to_dict(conninfo)
    host, port = parts.get("host", "localhost"), parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname', '')}"


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Set up a new connection: JSON comes back as text, as `_rows.from_row` expects from every
    SQL store (and `json` keeps its text verbatim)."""
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_loader("jsonb", TextLoader)


class PoolBackends:
    """This pool's open connections: their server processes by pid (a change notification sent
    by one of them reports a write this process already counted), and when each came back to
    the pool (to decide whether it needs checking before it goes out again)."""

    def __init__(self) -> None:
        self._by_pid: weakref.WeakValueDictionary[int, psycopg.AsyncConnection[Any]] = (
            weakref.WeakValueDictionary()
        )
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def add(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await configure(conn)
        self._by_pid[conn.info.backend_pid] = conn

    async def returned(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Before a checkout: a round trip (which raises if the connection is dead) only when
        the connection looks suspect. An idle connection's socket has nothing to read unless
        its backend went away: a terminated backend sends its FATAL and the server closes the
        socket, also on a restart or a crash. So a readable socket, or a long idle spell (a
        silent network), gets the check; the rest go out at once, without the round trip that
        cost ~12 % of the event loop per statement (bench/findings.md)."""
        idle = time.monotonic() - self._returned.get(conn, 0.0)
        try:
            suspect = idle > IDLE_CHECK_SECONDS or bool(
                select.select([conn.fileno()], [], [], 0)[0]
            )
        except (OSError, ValueError, psycopg.Error):
            suspect = True  # no socket to look at: let the round trip decide
        if suspect:
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)

    def __contains__(self, pid: object) -> bool:
        # A closed connection's pid may be reused by another node's backend: only open ones.
        conn = self._by_pid.get(pid) if isinstance(pid, int) else None
        return conn is not None and not conn.closed


def new_pool(
    conninfo: str, *, max_size: int, acquire_timeout: float, backends: PoolBackends
) -> psycopg_pool.AsyncConnectionPool:
    return psycopg_pool.AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=backends.add,
        reset=backends.returned,
        # So that after a server restart no request is handed a dead connection: requests fail
        # only while the server is really away (see PoolBackends.check for when it costs a
        # round trip).
        check=backends.check,
        timeout=acquire_timeout,
        # psycopg_pool doubles the delay between reconnection attempts without bound, so after
        # an outage of T seconds the pool could wait about T more before its next attempt. A
        # short give-up instead drops the slot, and the next request grows the pool again with
        # an immediate attempt: a node is back within a couple of seconds of its server.
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
        name="longrunning",
        open=False,
    )


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Raise driver and pool errors as the store's: bad values as InvalidRequest, everything
    else (the server away, a dropped connection, an exhausted pool) as StoreError/UNAVAILABLE."""
    try:
        yield
    except psycopg.DataError as exc:
        raise InvalidRequest(
            f"a value cannot be stored: {_first_line(exc)}", reason="INVALID_TEXT"
        ) from exc
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise StoreError(f"PostgreSQL {action}: {_first_line(exc)}") from exc
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"text is not valid Unicode: {exc.reason}", reason="INVALID_TEXT"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


async def check_server(conn: psycopg.AsyncConnection[Any]) -> None:
    """Refuse servers that would not keep operations exactly: too old, or not storing UTF-8."""
    if conn.info.server_version < MIN_SERVER_VERSION:
        raise StoreError(
            f"PostgreSQL {conn.info.server_version} is too old; 12 or newer needed",
            reason="STORE_UNSUPPORTED",
        )
    encoding = (await (await conn.execute("SHOW server_encoding")).fetchone() or ("",))[0]
    if str(encoding).upper() not in ("UTF8", "UTF-8"):
        raise StoreError(
            f"the database encoding is {encoding}, not UTF8; create it with ENCODING 'UTF8'",
            reason="STORE_UNSUPPORTED",
        )


class PostgresSchema:
    """Runs migrations through the pool (see `stores.migrate`), one node at a time."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self._pool = pool

    async def applied_versions(self) -> set[int]:
        async with self._pool.connection() as conn:
            found = await (await conn.execute("SELECT to_regclass('schema_migrations')")).fetchone()
            if found is None or found[0] is None:
                return set()
            rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
            return {int(row[0]) for row in rows}

    async def apply_migration(self, migration: Migration) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            # Nodes starting together all try to migrate: the first does it, the rest wait
            # here and then find it recorded.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(_MIGRATIONS_TABLE)
            done = await conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            )
            if await done.fetchone() is not None:
                return False
            await conn.execute(migration.sql.encode())  # a script: several statements, no params
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, datetime.now(UTC)),
            )
        _log.info("applied PostgreSQL migration %s", migration.label)
        return True
