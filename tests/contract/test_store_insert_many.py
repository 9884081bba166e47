"""The OperationStore contract for `insert_many`, run on every store: a batch is stored exactly as
one `insert` after another would store it, in one transaction, all or nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from longrunning.core.errors import OperationAlreadyExists, OperationNotFound, TargetBusy
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import Operation
from longrunning.core.ports import NewOperation, OperationStore
from longrunning.testing import make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def listed_ids(store: OperationStore) -> list[str]:
    page = await store.list_page(OperationQuery(page_size=100, newest_first=False))
    return [op.id for op in page.operations]


async def test_insert_many_stores_each_in_order_at_version_one(store: OperationStore) -> None:
    ops = [make_operation(now=at(i), version=7, target=f"db/{i}") for i in range(3)]
    seen = store.change_count()
    stored = await store.insert_many([NewOperation(op, exclusive_target=True) for op in ops])
    assert stored == [dataclasses.replace(op, version=1) for op in ops]
    for op in stored:
        assert await store.get(op.id) == op
    assert await listed_ids(store) == [op.id for op in ops]
    assert store.change_count() > seen


async def test_insert_many_returns_the_holder_of_a_known_request_id(
    store: OperationStore,
) -> None:
    held = await store.insert(make_operation(now=T0, request_id="r1", request_hash="h1"))
    retry = make_operation(now=at(1), request_id="r1", request_hash="h1")
    fresh = make_operation(now=at(2), request_id="r2")
    stored = await store.insert_many([NewOperation(retry), NewOperation(fresh)])
    assert stored == [held, dataclasses.replace(fresh, version=1)]
    with pytest.raises(OperationNotFound):
        await store.get(retry.id)
    assert await listed_ids(store) == [held.id, fresh.id]


async def test_insert_many_reusing_a_request_id_with_other_parameters_stores_nothing(
    store: OperationStore,
) -> None:
    held = await store.insert(make_operation(now=T0, request_id="r1", request_hash="h1"))
    fresh = make_operation(now=at(1), request_id="r2", request_hash="h3")
    reuse = make_operation(now=at(2), request_id="r1", request_hash="h2")
    with pytest.raises(OperationAlreadyExists, match="'r1'"):
        await store.insert_many([NewOperation(fresh), NewOperation(reuse)])
    twice = [
        make_operation(now=at(3), request_id="r9", request_hash="a"),
        make_operation(now=at(4), request_id="r9", request_hash="b"),
    ]
    with pytest.raises(OperationAlreadyExists, match="'r9'"):
        await store.insert_many([NewOperation(op) for op in twice])
    assert await listed_ids(store) == [held.id]


async def test_insert_many_dedupes_a_request_id_within_the_batch(store: OperationStore) -> None:
    first = make_operation(now=T0, request_id="r1")
    again = make_operation(now=at(1), request_id="r1")
    other_parent = make_operation(now=at(2), parent="projects/other", request_id="r1")
    stored = await store.insert_many([NewOperation(o) for o in (first, again, other_parent)])
    assert stored == [
        dataclasses.replace(first, version=1),
        dataclasses.replace(first, version=1),
        dataclasses.replace(other_parent, version=1),
    ]
    with pytest.raises(OperationNotFound):
        await store.get(again.id)


async def assert_nothing_stored(store: OperationStore, ops: list[Operation]) -> None:
    for op in ops:
        with pytest.raises(OperationNotFound):
            await store.get(op.id)


async def test_insert_many_with_a_taken_id_stores_nothing(store: OperationStore) -> None:
    existing = await store.insert(make_operation(now=T0))
    before, after = make_operation(now=at(1)), make_operation(now=at(2))
    with pytest.raises(OperationAlreadyExists):
        await store.insert_many(
            [
                NewOperation(before),
                NewOperation(dataclasses.replace(existing, title="x")),
                NewOperation(after),
            ]
        )
    await assert_nothing_stored(store, [before, after])
    assert await store.get(existing.id) == existing
    assert await listed_ids(store) == [existing.id]


async def test_insert_many_repeating_an_id_in_the_batch_stores_nothing(
    store: OperationStore,
) -> None:
    op = make_operation(now=T0)
    with pytest.raises(OperationAlreadyExists):
        await store.insert_many([NewOperation(op), NewOperation(op)])
    await assert_nothing_stored(store, [op])


async def test_insert_many_on_a_busy_target_stores_nothing(store: OperationStore) -> None:
    holder = await store.insert(make_operation(now=T0, target="db/1"))
    free = make_operation(now=at(1), target="db/2", request_id="r1")
    busy = make_operation(now=at(2), target="db/1")
    with pytest.raises(TargetBusy):
        await store.insert_many(
            [NewOperation(free, exclusive_target=True), NewOperation(busy, exclusive_target=True)]
        )
    await assert_nothing_stored(store, [free, busy])
    assert await listed_ids(store) == [holder.id]
    # Its request id was not kept either: the same start makes a new operation now.
    retry = make_operation(now=at(3), request_id="r1")
    assert await store.insert_many([NewOperation(retry)]) == [dataclasses.replace(retry, version=1)]


async def test_insert_many_makes_a_target_busy_for_the_rest_of_the_batch(
    store: OperationStore,
) -> None:
    first = make_operation(now=T0, target="db/1")
    second = make_operation(now=at(1), target="db/1")
    with pytest.raises(TargetBusy):
        await store.insert_many(
            [
                NewOperation(first, exclusive_target=True),
                NewOperation(second, exclusive_target=True),
            ]
        )
    await assert_nothing_stored(store, [first, second])
    both = await store.insert_many([NewOperation(first), NewOperation(second)])
    assert [op.id for op in both] == [first.id, second.id]


async def test_insert_many_of_nothing_stores_nothing(store: OperationStore) -> None:
    assert await store.insert_many([]) == []
    assert await listed_ids(store) == []
