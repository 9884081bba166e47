"""The OperationStore contract, run on every store: insert, get, replace, delete, change waits.

Claims and maintenance queries are in test_store_claims.py, listing in test_store_listing.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import (
    Code,
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
    TargetBusy,
)
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.ports import Claim, OperationStore
from longrunning.testing import OperationFields, make_operation

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def everything_set(outcome: CancelOutcome | None = CancelOutcome.INTERRUPTED) -> Operation:
    """An operation with every field away from its default, in awkward values."""
    return make_operation(
        id="0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        parent="projects/ünïcødé/locations/東京",
        kind="demo.copy",
        state=State.CANCELLED,
        create_time=datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
        update_time=at(0.000001),
        cancellable=False,
        cancel_requested_at=at(1.5),
        cancel_outcome=outcome,
        progress=Progress(percent=33.333333333333336, phase="copying “pages” 😀", eta=at(99)),
        metadata={"nested": {"list": [1, 2.5, None, True, "x"], "empty": {}}, "big": 2**70},
        request={"source": "a", "copies": [], "flag": False, "text": ""},
        result={"rows": 12, "where": ["ü", {"deep": [[[]]]}]},
        error=Failure(
            code=Code.CANCELLED,
            message="Operation was cancelled.\nsecond line",
            details=({"@type": "type.example/Info", "n": [1, {"a": None}]}, "text", 3),
            severity=20,
            is_user_error=True,
        ),
        start_time=at(1),
        end_time=at(2),
        attempt=3,
        max_attempts=5,
        labels={"env": "prod", "emoji": "😀", "empty": ""},
        request_id="req-ü-1",
        request_hash="sha256:abc",
        target="db/ünïcødé",
        queue="bulk",
        deadline=at(3600),
        not_before=at(10),
        lease_owner="worker-1",
        lease_epoch=7,
        lease_expires_at=at(30),
        forgotten_at=at(4.000001),
        version=99,
    )


async def test_insert_stores_version_one_and_get_returns_it(store: OperationStore) -> None:
    op = make_operation(now=T0, version=41)
    stored = await store.insert(op)
    assert stored == dataclasses.replace(op, version=1)
    assert await store.get(op.id) == stored


async def test_get_of_unknown_id_raises_not_found(store: OperationStore) -> None:
    with pytest.raises(OperationNotFound):
        await store.get("no-such-operation")


@pytest.mark.parametrize("outcome", [None, *CancelOutcome])
async def test_every_field_round_trips_exactly(
    store: OperationStore, outcome: CancelOutcome | None
) -> None:
    op = everything_set(outcome)
    await store.insert(op)
    assert await store.get(op.id) == dataclasses.replace(op, version=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"result": None},
        {"result": {}},
        {"result": []},
        {"result": ""},
        {"result": 0},
        {"result": False},
        {"metadata": {}, "request": {}, "labels": {}},
        {"progress": Progress(percent=0.0, phase="", eta=None)},
        {"request_id": "", "target": "", "lease_owner": ""},
        {"error": Failure(code=Code.OK, message="")},
    ],
    ids=repr,
)
async def test_none_and_empty_values_stay_distinct(
    store: OperationStore, overrides: OperationFields
) -> None:
    op = make_operation(now=T0, **overrides)
    await store.insert(op)
    assert await store.get(op.id) == dataclasses.replace(op, version=1)


async def test_insert_with_a_known_request_id_returns_the_existing_operation(
    store: OperationStore,
) -> None:
    first = await store.insert(make_operation(now=T0, request_id="r1", request_hash="h1"))
    retry = make_operation(now=at(1), request_id="r1", request_hash="h2")
    assert await store.insert(retry) == first
    with pytest.raises(OperationNotFound):
        await store.get(retry.id)
    page = await store.list_page(_everything())
    assert [op.id for op in page.operations] == [first.id]


async def test_request_ids_are_scoped_to_the_parent(store: OperationStore) -> None:
    a = await store.insert(make_operation(now=T0, parent="projects/a", request_id="r1"))
    b = await store.insert(make_operation(now=T0, parent="projects/b", request_id="r1"))
    assert a.id != b.id
    assert await store.get(b.id) == b


async def test_operations_without_request_id_are_never_deduplicated(
    store: OperationStore,
) -> None:
    a = await store.insert(make_operation(now=T0))
    b = await store.insert(make_operation(now=T0))
    assert {(await store.get(a.id)).id, (await store.get(b.id)).id} == {a.id, b.id}


async def test_insert_of_an_existing_id_raises_already_exists(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0))
    with pytest.raises(OperationAlreadyExists):
        await store.insert(make_operation(id=op.id, now=at(1), kind="other"))
    assert await store.get(op.id) == op


@pytest.mark.parametrize("holder_state", [State.PENDING, State.RUNNING])
async def test_exclusive_insert_on_an_active_target_raises_target_busy(
    store: OperationStore, holder_state: State
) -> None:
    await store.insert(make_operation(now=T0, target="db/1", state=holder_state))
    newcomer = make_operation(now=at(1), target="db/1")
    with pytest.raises(TargetBusy):
        await store.insert(newcomer, exclusive_target=True)
    with pytest.raises(OperationNotFound):
        await store.get(newcomer.id)


@pytest.mark.parametrize("holder_state", [State.SUCCEEDED, State.FAILED, State.CANCELLED])
async def test_exclusive_insert_ignores_finished_operations_on_the_target(
    store: OperationStore, holder_state: State
) -> None:
    await store.insert(make_operation(now=T0, target="db/1", state=holder_state))
    stored = await store.insert(make_operation(now=at(1), target="db/1"), exclusive_target=True)
    assert stored.version == 1


async def test_exclusive_insert_allows_other_targets_and_no_target(store: OperationStore) -> None:
    await store.insert(make_operation(now=T0, target="db/1"))
    await store.insert(make_operation(now=T0, target="db/2"), exclusive_target=True)
    await store.insert(make_operation(now=T0), exclusive_target=True)
    await store.insert(make_operation(now=T0), exclusive_target=True)


async def test_non_exclusive_insert_shares_a_busy_target(store: OperationStore) -> None:
    await store.insert(make_operation(now=T0, target="db/1"))
    assert (await store.insert(make_operation(now=T0, target="db/1"))).version == 1


async def test_exclusive_retry_with_the_same_request_id_returns_the_existing_one(
    store: OperationStore,
) -> None:
    first = await store.insert(make_operation(now=T0, target="db/1", request_id="r"))
    again = make_operation(now=at(1), target="db/1", request_id="r")
    assert await store.insert(again, exclusive_target=True) == first


async def test_replace_bumps_the_version_and_stores_every_field(store: OperationStore) -> None:
    stored = await store.insert(make_operation(now=T0))
    changed = dataclasses.replace(everything_set(), id=stored.id, version=stored.version)
    replaced = await store.replace(changed, expected_version=1)
    assert replaced == dataclasses.replace(changed, version=2)
    assert await store.get(stored.id) == replaced


async def test_replace_with_a_stale_version_raises_conflict(store: OperationStore) -> None:
    stored = await store.insert(make_operation(now=T0))
    first = await store.replace(dataclasses.replace(stored, kind="one"), expected_version=1)
    with pytest.raises(StoreConflict):
        await store.replace(dataclasses.replace(stored, kind="two"), expected_version=1)
    assert await store.get(stored.id) == first


async def test_replace_of_a_missing_operation_raises_not_found(store: OperationStore) -> None:
    with pytest.raises(OperationNotFound):
        await store.replace(make_operation(now=T0), expected_version=1)


async def test_replace_onto_another_operations_request_id_raises_already_exists(
    store: OperationStore,
) -> None:
    await store.insert(make_operation(now=T0, request_id="taken"))
    other = await store.insert(make_operation(now=T0, request_id="mine"))
    with pytest.raises(OperationAlreadyExists):
        await store.replace(dataclasses.replace(other, request_id="taken"), expected_version=1)
    assert await store.get(other.id) == other


async def test_replace_keeps_the_request_id_claimed_until_it_changes(
    store: OperationStore,
) -> None:
    op = await store.insert(make_operation(now=T0, request_id="r"))
    op = await store.replace(dataclasses.replace(op, kind="k"), expected_version=1)
    assert await store.insert(make_operation(now=at(1), request_id="r")) == op
    await store.replace(dataclasses.replace(op, request_id="s"), expected_version=2)
    fresh = await store.insert(make_operation(now=at(2), request_id="r"))
    assert fresh.id != op.id


async def test_concurrent_replaces_of_one_version_let_exactly_one_win(
    store: OperationStore,
) -> None:
    stored = await store.insert(make_operation(now=T0))
    attempts = [
        store.replace(dataclasses.replace(stored, kind=f"k{i}"), expected_version=1)
        for i in range(10)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, Operation)]
    assert len(winners) == 1
    assert all(isinstance(r, StoreConflict) for r in results if r not in winners)
    assert await store.get(stored.id) == winners[0]


async def test_delete_forgets_the_operation_and_its_request_id(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0, request_id="r"))
    await store.delete(op.id)
    with pytest.raises(OperationNotFound):
        await store.get(op.id)
    with pytest.raises(OperationNotFound):
        await store.replace(op, expected_version=1)
    assert (await store.insert(make_operation(now=at(1), request_id="r"))).id != op.id


async def test_delete_of_a_missing_operation_raises_not_found(store: OperationStore) -> None:
    with pytest.raises(OperationNotFound):
        await store.delete("no-such-operation")


async def test_ping_answers_on_an_open_store(store: OperationStore) -> None:
    await store.ping()


async def test_wait_for_change_times_out_without_writes(store: OperationStore) -> None:
    seen = store.change_count()
    started = time.monotonic()
    assert await store.wait_for_change(seen, 0.1) == seen
    assert time.monotonic() - started >= 0.09


async def test_wait_for_change_returns_at_once_when_already_changed(
    store: OperationStore,
) -> None:
    seen = store.change_count()
    await store.insert(make_operation(now=T0))
    assert await store.wait_for_change(seen, 30) > seen


async def test_every_waiter_wakes_on_a_write(store: OperationStore) -> None:
    seen = store.change_count()
    waiters = [asyncio.create_task(store.wait_for_change(seen, 10)) for _ in range(20)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    started = time.monotonic()
    await store.insert(make_operation(now=T0))
    counts = await asyncio.gather(*waiters)
    assert all(count > seen for count in counts)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("write", ["insert", "replace", "delete", "claim", "purge"])
async def test_each_kind_of_write_counts_as_a_change(store: OperationStore, write: str) -> None:
    op = await store.insert(make_operation(now=T0, state=State.SUCCEEDED, end_time=T0))
    pending = await store.insert(make_operation(now=T0))
    seen = store.change_count()
    if write == "insert":
        await store.insert(make_operation(now=T0))
    elif write == "replace":
        await store.replace(op, expected_version=1)
    elif write == "delete":
        await store.delete(op.id)
    elif write == "claim":
        claimed = await store.claim(
            kinds=[pending.kind], queues=[pending.queue], now=at(1), claim=_claim_at(at(1))
        )
        assert claimed is not None
    else:
        assert await store.purge_finished(ended_before=at(1), limit=10) == 1
    assert store.change_count() > seen


async def test_writes_that_change_nothing_wake_nobody(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0, request_id="r"))
    await store.wait_for_change(store.change_count(), 0.3)  # let any echo of that write arrive
    seen = store.change_count()
    await store.insert(make_operation(now=T0, request_id="r"))
    none = await store.claim(kinds=["nothing"], queues=["default"], now=at(1), claim=_claim_at(T0))
    assert none is None
    assert await store.purge_finished(ended_before=at(1), limit=10) == 0
    with pytest.raises(StoreConflict):
        await store.replace(op, expected_version=7)
    assert await store.wait_for_change(seen, 0.1) == seen


def _claim_at(now: datetime) -> Claim:
    return lambda op: lifecycle.claim(
        op, owner="w", lease_until=now + timedelta(minutes=1), now=now
    )


def _everything() -> OperationQuery:
    return OperationQuery(page_size=100)
