"""The OperationStore contract for batches, run on every store: `get_many` and `apply_many`,
which let a worker renew all its leases in one write and re-read all its operations in one read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import LeaseLost
from longrunning.core.operation import Operation
from longrunning.core.ports import OperationStore
from longrunning.testing import make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MISSING = "00000000-0000-4000-8000-000000000000"


async def running(store: OperationStore, owner: str = "w1") -> Operation:
    op = await store.insert(make_operation(now=T0))
    return await store.replace(
        lifecycle.claim(op, owner=owner, lease_until=T0 + timedelta(seconds=10), now=T0),
        expected_version=op.version,
    )


async def test_get_many_returns_the_existing_ones_once_each(store: OperationStore) -> None:
    a, b = await running(store), await running(store)
    found = await store.get_many([a.id, MISSING, b.id, a.id])
    assert sorted(op.id for op in found) == sorted([a.id, b.id])
    assert {op.id: op for op in found} == {a.id: a, b.id: b}
    assert await store.get_many([]) == []


async def test_apply_many_renews_only_the_leases_still_held(store: OperationStore) -> None:
    mine, theirs = await running(store, "w1"), await running(store, "w2")
    until = T0 + timedelta(minutes=1)

    def renew(op: Operation) -> Operation | None:
        try:
            lifecycle.check_fence(op, owner="w1", epoch=1)
        except LeaseLost:
            return None
        return lifecycle.renew_lease(op, lease_until=until)

    seen = await store.apply_many([mine.id, theirs.id, MISSING], renew)
    now = {op.id: op for op in seen}
    assert set(now) == {mine.id, theirs.id}
    assert (now[mine.id].lease_expires_at, now[mine.id].version) == (until, mine.version + 1)
    assert now[theirs.id] == theirs  # untouched, version and all
    assert await store.get(mine.id) == now[mine.id]
    assert await store.get(theirs.id) == theirs


async def test_apply_many_stores_nothing_if_the_change_raises(store: OperationStore) -> None:
    first, second = await running(store), await running(store)

    def renew_then_fail(op: Operation) -> Operation | None:
        if op.id == second.id:
            raise RuntimeError("boom")
        return lifecycle.renew_lease(op, lease_until=T0 + timedelta(minutes=1))

    with pytest.raises(RuntimeError):
        await store.apply_many([first.id, second.id], renew_then_fail)
    assert await store.get(first.id) == first
    assert await store.get(second.id) == second


async def test_apply_many_is_a_change_that_wakes_waiters(store: OperationStore) -> None:
    op = await running(store)
    seen = store.change_count()
    await store.apply_many([op.id], lambda o: lifecycle.renew_lease(o, lease_until=T0))
    assert await store.wait_for_change(seen, 1.0) > seen


async def test_cancel_requested_names_only_existing_operations_with_a_cancel(
    store: OperationStore,
) -> None:
    quiet, asked = await running(store), await running(store)
    assert await store.cancel_requested([quiet.id, asked.id]) == set()
    await store.replace(lifecycle.request_cancel(asked, now=T0), expected_version=asked.version)
    assert await store.cancel_requested([quiet.id, asked.id, MISSING, asked.id]) == {asked.id}
    assert await store.cancel_requested([]) == set()
