"""PostgresStore's grouped replaces (ADR 0034) against a real server: concurrent replaces go as
one statement, a row that cannot be stored fails alone, and a caller that gives up does not
undo its write."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import (
    InvalidRequest,
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
)
from longrunning.core.operation import Operation, Progress, State
from longrunning.stores import PostgresStore
from longrunning.testing import make_operation
from tests.postgres_servers import fresh_database

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("longrunning_batches") as url:
        yield url


@pytest.fixture
async def store(database: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(database)
    await opened.open()
    yield opened
    await opened.close()


async def _running(store: PostgresStore, count: int) -> list[Operation]:
    ops = [await store.insert(make_operation(now=T0 + timedelta(seconds=i))) for i in range(count)]
    claimed = [
        await store.replace(
            lifecycle.claim(op, owner="w", lease_until=T0 + timedelta(hours=1), now=T0),
            expected_version=op.version,
        )
        for op in ops
    ]
    return claimed


def _succeeded(op: Operation) -> Operation:
    return lifecycle.succeed(op, {"n": op.id}, now=T0 + timedelta(minutes=1))


def _transactions(url: str, ids: list[str]) -> int:
    """How many transactions last wrote these rows (rows one statement wrote share its xmin)."""
    with psycopg.connect(url) as conn:
        query = "SELECT count(DISTINCT xmin::text) FROM operations WHERE id = ANY(%s)"
        row = conn.execute(query, (ids,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_concurrent_replaces_are_one_statement(store: PostgresStore, database: str) -> None:
    ops = await _running(store, 20)
    assert _transactions(database, [op.id for op in ops]) == 20

    stored = await asyncio.gather(
        *(store.replace(_succeeded(op), expected_version=op.version) for op in ops)
    )

    assert [op.version for op in stored] == [op.version + 1 for op in ops]
    assert _transactions(database, [op.id for op in ops]) == 1
    for op in await store.get_many([op.id for op in ops]):
        assert op.state is State.SUCCEEDED and op.result == {"n": op.id}


async def test_a_row_that_cannot_be_stored_fails_alone(store: PostgresStore) -> None:
    ok, stale, gone, clash, bad, unencodable = await _running(store, 6)
    await store.insert(make_operation(now=T0, request_id="taken", request_hash="h"))
    await store.delete(gone.id)
    writes = [
        (_succeeded(ok), ok.version),
        (_succeeded(stale), stale.version - 1),
        (_succeeded(gone), gone.version),
        (dataclasses.replace(clash, request_id="taken", request_hash="h"), clash.version),
        (dataclasses.replace(bad, progress=Progress(percent=5, phase="nul\x00")), bad.version),
        (
            dataclasses.replace(unencodable, progress=Progress(percent=5, phase="\ud800")),
            unencodable.version,
        ),
    ]

    outcomes = await asyncio.gather(
        *(store.replace(op, expected_version=v) for op, v in writes), return_exceptions=True
    )

    assert isinstance(outcomes[0], Operation) and outcomes[0].state is State.SUCCEEDED
    assert isinstance(outcomes[1], StoreConflict)
    assert isinstance(outcomes[2], OperationNotFound)
    assert isinstance(outcomes[3], OperationAlreadyExists)
    assert isinstance(outcomes[4], InvalidRequest)
    assert isinstance(outcomes[5], InvalidRequest)
    assert (await store.get(ok.id)).state is State.SUCCEEDED
    for op in (stale, clash, bad, unencodable):
        assert await store.get(op.id) == op  # unchanged


async def test_version_conflicts_in_a_group_fail_alone(store: PostgresStore, database: str) -> None:
    """No statement error here: the group's one UPDATE stores the rest, and says of each row
    it did not store whether it is gone or at another version."""
    ok, stale, gone, also_ok = await _running(store, 4)
    await store.delete(gone.id)
    writes = [(ok, ok.version), (stale, stale.version - 1), (gone, gone.version)]
    writes += [(also_ok, also_ok.version)]

    outcomes = await asyncio.gather(
        *(store.replace(_succeeded(op), expected_version=v) for op, v in writes),
        return_exceptions=True,
    )

    assert isinstance(outcomes[1], StoreConflict) and "not 1" in str(outcomes[1])
    assert isinstance(outcomes[2], OperationNotFound)
    assert [type(outcomes[0]), type(outcomes[3])] == [Operation, Operation]
    assert _transactions(database, [ok.id, also_ok.id]) == 1


async def test_two_replaces_of_one_operation_never_share_a_statement(
    store: PostgresStore,
) -> None:
    """Both expect the same version: exactly one wins, and the other is told it lost."""
    (op,) = await _running(store, 1)
    first = lifecycle.report_progress(op, Progress(percent=10), now=T0)
    second = _succeeded(op)

    outcomes = await asyncio.gather(
        store.replace(first, expected_version=op.version),
        store.replace(second, expected_version=op.version),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], Operation)
    assert isinstance(outcomes[1], StoreConflict)
    assert await store.get(op.id) == outcomes[0]


async def test_a_cancelled_caller_does_not_undo_its_replace(store: PostgresStore) -> None:
    (op,) = await _running(store, 1)
    write = asyncio.create_task(store.replace(_succeeded(op), expected_version=op.version))
    await asyncio.sleep(0)  # submitted: the group goes at the loop's next turn
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write

    async with asyncio.timeout(10):
        while (await store.get(op.id)).state is not State.SUCCEEDED:
            await asyncio.sleep(0.01)
    assert (await store.get(op.id)).version == op.version + 1
