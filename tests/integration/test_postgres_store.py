"""PostgresStore against real servers, beyond the shared contract: bloat under steady progress
writes, check-only start-up for a role that may not change the schema, and surviving dropped
connections and a server restart (a private server, so the shared one is never disturbed)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import StoreError
from longrunning.core.json_values import JsonObject
from longrunning.core.operation import CancelOutcome, Operation, Progress, State
from longrunning.core.ports import NewOperation
from longrunning.engine.config import EngineConfig
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from longrunning.stores import PostgresStore
from longrunning.stores.postgres_claims import _CLAIMABLE_MANY, claim_batch
from longrunning.stores.postgres_connections import PoolBackends, configure
from longrunning.testing import make_operation
from tests.postgres_servers import PrivateCluster, fresh_database, require_admin_url

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def database() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    with fresh_database("longrunning_it") as url:
        yield url


@pytest.fixture
async def store(database: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(database)
    await opened.open()
    yield opened
    await opened.close()


async def _running(
    store: PostgresStore, count: int, request: JsonObject | None = None
) -> list[Operation]:
    ops = []
    for i in range(count):
        op = await store.insert(
            make_operation(now=T0 + timedelta(seconds=i), request=request or {})
        )
        claimed = lifecycle.claim(op, owner="w", lease_until=T0 + timedelta(hours=1), now=T0)
        ops.append(await store.replace(claimed, expected_version=op.version))
    return ops


def _sizes(url: str) -> tuple[int, int, int]:
    """Heap, all indexes, and TOAST bytes of the operations table."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_relation_size('operations'), pg_indexes_size('operations'),"
            " COALESCE(pg_total_relation_size(reltoastrelid), 0)"
            " FROM pg_class WHERE oid = 'operations'::regclass"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def test_steady_progress_writes_do_not_bloat_the_table(
    store: PostgresStore, database: str
) -> None:
    # 40 running operations, one with a large incompressible request (stored out of line in
    # TOAST), each written 250 times as a worker does: progress, metadata, lease renewals.
    big: JsonObject = {"blob": os.urandom(12_000).hex()}
    ops = await _running(store, 39) + await _running(store, 1, request=big)
    heap, indexes, toast = _sizes(database)
    for step in range(1, 251):
        at = T0 + timedelta(seconds=step)
        changed = [
            lifecycle.report_progress(op, Progress(percent=step * 0.4), now=at) for op in ops
        ]
        if step % 10 == 0:
            changed = [dataclasses.replace(op, metadata={"rows": step}) for op in changed]
        ops = list(
            await asyncio.gather(
                *(store.replace(op, expected_version=op.version) for op in changed)
            )
        )
        if step % 25 == 0:
            until = at + timedelta(hours=1)
            renewed = await store.apply_many(
                [op.id for op in ops], functools.partial(lifecycle.renew_lease, lease_until=until)
            )
            order = [op.id for op in ops]
            ops = sorted(renewed, key=lambda o: order.index(o.id))
    heap_after, indexes_after, toast_after = _sizes(database)
    # 10,000 row versions of ~0.5 kB would need ~5 MB if each stayed until VACUUM, and every
    # index would grow by 10,000 entries. HOT updates pruned within their page need neither.
    assert heap_after <= max(4 * heap, 128 * 1024), (heap, heap_after)
    assert indexes_after <= indexes + 8 * 8192 * 11, (indexes, indexes_after)
    assert toast_after == toast, (toast, toast_after)  # the big request was never rewritten
    assert (await store.get(ops[-1].id)).request == big


async def test_a_role_that_may_not_change_the_schema_starts_check_only(database: str) -> None:
    checked = PostgresStore(database, migrate=False)
    with pytest.raises(StoreError, match="missing migrations 0001_initial") as caught:
        await checked.open()
    assert caught.value.reason == "SCHEMA_OUT_OF_DATE"

    migrated = PostgresStore(database)
    await migrated.open()
    await migrated.close()

    role = f"lr_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON operations TO {role}")
        conn.execute(f"GRANT SELECT ON schema_migrations TO {role}")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    try:
        app = PostgresStore(database.replace("postgres@", f"{role}@"), migrate=False)
        await app.open()
        try:
            op = await app.insert(make_operation(now=T0))
            assert (await app.get(op.id)).version == 1
        finally:
            await app.close()
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


async def test_dropped_connections_are_replaced_and_the_listener_comes_back(
    store: PostgresStore, database: str
) -> None:
    op = await store.insert(make_operation(now=T0))
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        # Requests go on, on fresh connections: none fails for the dropped ones.
        assert (await store.get(op.id)).id == op.id
        # And a change by another node still wakes a waiter, once the listener is back.
        await _until(lambda: store._listener.listening.is_set(), 10)
        seen = store.change_count()
        admin.execute("UPDATE operations SET kind = 'other' WHERE id = %s", (op.id,))
        assert await store.wait_for_change(seen, 5) > seen


async def test_a_pooled_connection_whose_backend_went_away_fails_its_check(database: str) -> None:
    backends = PoolBackends()
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await backends.add(conn)
        await backends.returned(conn)
        await backends.check(conn)  # alive and just returned: handed out as is
        assert conn.info.backend_pid in backends
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        await _until(lambda: not _backend_alive(database, conn.info.backend_pid), 5)
        await asyncio.sleep(0.1)  # its FATAL and the server's FIN reach our socket
        with pytest.raises(psycopg.OperationalError):
            await backends.check(conn)
        assert conn.info.backend_pid not in backends


def _backend_alive(database: str, pid: int) -> bool:
    with psycopg.connect(database, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        found = row.fetchone()
    return found is not None and found[0] > 0


@pytest.mark.slow
async def test_a_server_restart_fails_requests_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    require_admin_url()  # a PostgreSQL installation is needed
    with PrivateCluster(tmp_path) as cluster:
        store = PostgresStore(cluster.url, acquire_timeout=2.0)
        await store.open()
        try:
            kept = await store.insert(make_operation(now=T0))
            cluster.stop()
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                await store.insert(make_operation(now=T0))
            assert caught.value.code.name == "UNAVAILABLE"
            assert time.monotonic() - started < 15
            cluster.start()
            deadline = time.monotonic() + 30
            while True:  # it reconnects by itself
                try:
                    assert await store.get(kept.id) == kept
                    break
                except StoreError:
                    assert time.monotonic() < deadline, "the store did not reconnect"
                    await asyncio.sleep(0.2)
            await _until(lambda: store._listener.listening.is_set(), 15)
            seen = store.change_count()
            other = PostgresStore(cluster.url)
            await other.open()
            await other.insert(make_operation(now=T0))
            await other.close()
            assert await store.wait_for_change(seen, 5) > seen
        finally:
            await store.close()


async def _until(condition: object, timeout: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_work_and_cancels_reach_a_worker_on_another_node_by_notification(
    store: PostgresStore, database: str
) -> None:
    # Polling (5 s) and heartbeats (lease/3 = 20 s) are far slower than what is asserted: only
    # the NOTIFY path can meet these times.
    config = EngineConfig(poll_seconds=5.0, lease_seconds=60.0)
    registry = HandlerRegistry(DEMO_KINDS)
    api = OperationService(store, registry)
    worker_store = PostgresStore(database)
    await worker_store.open()
    worker = Worker(worker_store, registry, config=config)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)  # the worker is idle, waiting
        sent = time.monotonic()
        started = await api.start(
            StartRequest(kind="demo.sleep", request={"duration_seconds": 60, "steps": 600})
        )
        op_id = started.operation.id
        await _until_state(api, op_id, State.RUNNING, timeout=2)
        claimed_after = time.monotonic() - sent
        sent = time.monotonic()
        await api.cancel(op_id)
        done = await api.wait(op_id, timeout=5)
        cancelled_after = time.monotonic() - sent
    finally:
        worker.stop()
        await asyncio.wait_for(running, timeout=15)
        await worker_store.close()
    assert claimed_after < 1.0, claimed_after
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY
    assert cancelled_after < 1.0, cancelled_after


async def test_own_writes_wake_waiters_once_and_other_nodes_writes_still_do(
    store: PostgresStore, database: str
) -> None:
    await _until(lambda: store._listener.listening.is_set(), 10)
    seen = store.change_count()
    await store.insert(make_operation(now=T0))
    assert store.change_count() == seen + 1  # counted at commit, by this process
    # The trigger's notification of that same commit comes back on the listener: not counted
    # again, or every waiter would re-read once more for nothing.
    await asyncio.sleep(0.3)
    assert store.change_count() == seen + 1
    other = PostgresStore(database)
    await other.open()
    try:
        await other.insert(make_operation(now=T0))
        assert await store.wait_for_change(seen + 1, 5) > seen + 1
    finally:
        await other.close()


async def _until_state(api: OperationService, op_id: str, state: State, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await api.get(op_id)).state is not state:
        assert time.monotonic() < deadline, f"not {state} after {timeout} s"
        await asyncio.sleep(0.01)


async def test_claims_walk_the_pending_index_on_a_table_never_analyzed(
    store: PostgresStore, database: str
) -> None:
    """Before autovacuum analyzes a freshly filled table the planner would sort every pending row
    for each claim; a claim transaction forbids the sort, so it walks operations_pending."""
    ops = [make_operation(now=T0 + timedelta(seconds=i)) for i in range(3000)]
    await store.insert_many([NewOperation(op) for op in ops])

    async def take(ops: list[Operation]) -> list[Operation]:
        return ops  # a dry run: nothing is written

    kinds, queues, now = ["demo.sleep"], ["default"], T0 + timedelta(days=1)
    async with await psycopg.AsyncConnection.connect(database) as conn:
        await configure(conn)
        async with conn.transaction():
            taken = await claim_batch(conn, kinds, queues, now, take, limit=5)
            assert [op.id for op in taken] == [op.id for op in ops[:5]]
            query = ("EXPLAIN " + _CLAIMABLE_MANY).encode()
            cursor = await conn.execute(query, (kinds, queues, [], now, 5))
            plan = "\n".join(row[0] for row in await cursor.fetchall())
    assert "operations_pending" in plan and "Sort" not in plan, plan
