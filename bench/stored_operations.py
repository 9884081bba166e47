"""Many stored operations, fast: rows in the store's own schema, written in bulk (W4, W5).

The stores have no batch insert, and starting a million operations through the API would take
the run's whole time, so rows go straight into the `operations` table: migrated first by
opening the store (`longrunning.app.opened_store`), then `executemany` in one SQLite transaction
or `COPY` into PostgreSQL. Every row is `stores._rows.to_row` of a real `Operation`, so columns,
JSON and timestamps are exactly what the store itself writes; only the id and the times vary
between rows of one template.

The mix (`mixed_operations`): 95 % done (90 % SUCCEEDED, 3 % FAILED, 2 % CANCELLED), 5 % not
done (4 % PENDING, 1 % RUNNING) spread evenly over the whole history, 8 kinds with a skew, a
`team` label (4 values) and an `env` label (2 values), one parent. Spreading the unfinished ones
over the history is the hard case for a filtered listing: a page must skip many done rows.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from longrunning.app import opened_store
from longrunning.core.errors import Code
from longrunning.core.operation import Failure, Operation, Progress, State
from longrunning.engine.service import DEFAULT_PARENT
from longrunning.stores._rows import COLUMNS, DATETIME, MICROS, TimeCodec, to_row

KINDS = tuple(f"bench.kind{i}" for i in range(8))
KIND_WEIGHTS = (30, 20, 15, 10, 10, 5, 5, 5)
TEAMS = ("alpha", "beta", "gamma", "delta")
STATE_WEIGHTS = {
    State.SUCCEEDED: 900,
    State.FAILED: 30,
    State.CANCELLED: 20,
    State.PENDING: 40,
    State.RUNNING: 10,
}

_ID = COLUMNS.index("id")
_VARYING = tuple(COLUMNS.index(c) for c in ("create_time", "update_time", "start_time", "end_time"))


def _template(state: State, kind: str, team: str, env: str, base: datetime) -> Operation:
    done = state.is_terminal
    started = state is not State.PENDING
    return Operation(
        id=str(uuid.UUID(int=0)),
        parent=DEFAULT_PARENT,
        kind=kind,
        title=None,
        state=state,
        create_time=base,
        update_time=base,
        request={"size_gb": 200, "disk": f"disks/{team}-{env}", "note": "a benchmark row"},
        labels={"team": team, "env": env},
        metadata={"step": 3, "of": 3} if done else {"step": 1, "of": 3},
        progress=Progress(percent=100.0 if done else (0.0 if not started else 33.0)),
        result={"ok": True, "bytes": 123456} if state is State.SUCCEEDED else None,
        error=Failure(code=Code.INTERNAL, message="disk vanished")
        if state is State.FAILED
        else None,
        start_time=base if started else None,
        end_time=base if done else None,
        attempt=1 if started else 0,
        max_attempts=3,
        idempotent=True,
        lease_owner="worker-bench" if state is State.RUNNING else None,
        lease_epoch=1 if started else 0,
        lease_expires_at=base + timedelta(days=3650) if state is State.RUNNING else None,
        version=4 if done else (2 if started else 1),
    )


def _uuid4(bits: int) -> str:
    """A version-4 UUID's text from 128 random bits, as str(uuid.uuid4()) spells it."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def operation_rows(
    count: int, *, times: TimeCodec, mixed: bool, seed: int = 7
) -> Iterator[tuple[Any, ...]]:
    """`count` rows, oldest first, one millisecond apart, ending now. With `mixed=False` every
    row is a SUCCEEDED `bench.noop` (W4's finished operations)."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(milliseconds=count)
    step = timedelta(milliseconds=1)
    templates: dict[tuple[State, str, str, str], list[Any]] = {}
    if mixed:
        states = rng.choices(list(STATE_WEIGHTS), list(STATE_WEIGHTS.values()), k=count)
        kinds = rng.choices(KINDS, KIND_WEIGHTS, k=count)
    encode = times.encode
    when = start
    for i in range(count):
        team = TEAMS[i % len(TEAMS)]
        if mixed:
            key = (states[i], kinds[i], team, "prod" if i % 3 else "dev")
        else:
            key = (State.SUCCEEDED, "bench.noop", team, "prod")
        template = templates.get(key)
        if template is None:
            template = list(to_row(_template(*key, base=start), times))
            templates[key] = template
        row = template.copy()
        row[_ID] = _uuid4(rng.getrandbits(128))
        stamp = encode(when)
        for index in _VARYING:
            if row[index] is not None:
                row[index] = stamp
        when += step
        yield tuple(row)


async def migrate(url: str) -> None:
    async with opened_store(url):
        pass


def insert_sqlite(path: str, rows: Iterator[tuple[Any, ...]]) -> list[str]:
    """Insert rows into an already migrated SQLite store in one transaction; their ids."""
    ids: list[str] = []

    def tracked() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            ids.append(row[_ID])
            yield row

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -262144")
        # Secondary indexes are dropped and made again from their own SQL after the load:
        # building an index from sorted rows beats a million index inserts, and the schema
        # ends exactly as the migrations left it.
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        placeholders = ", ".join("?" * len(COLUMNS))
        conn.executemany(
            f"INSERT INTO operations ({', '.join(COLUMNS)}) VALUES ({placeholders})", tracked()
        )
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return ids


def insert_postgres(url: str, rows: Iterator[tuple[Any, ...]]) -> list[str]:
    """COPY rows into an already migrated PostgreSQL store, then ANALYZE it (as autovacuum
    would soon after such a load); their ids. The change-notification trigger is skipped for
    this session only (`session_replication_role = replica`): no node is running to hear it."""
    ids: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        statement = f"COPY operations ({', '.join(COLUMNS)}) FROM STDIN"
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                ids.append(row[_ID])
                copy.write_row(row)
        conn.execute("SET session_replication_role = origin")
        conn.execute("VACUUM ANALYZE operations")
    return ids


async def seed(url: str, count: int, *, mixed: bool) -> list[str]:
    """Migrate the store at `url` and fill it with `count` operations; their ids. Blocking work
    runs in a thread."""
    import asyncio

    await migrate(url)
    if url.startswith("sqlite:"):
        path = "/" + url.removeprefix("sqlite:").lstrip("/")
        rows = operation_rows(count, times=MICROS, mixed=mixed)
        return await asyncio.to_thread(insert_sqlite, path, rows)
    rows = operation_rows(count, times=DATETIME, mixed=mixed)
    return await asyncio.to_thread(insert_postgres, url, rows)
