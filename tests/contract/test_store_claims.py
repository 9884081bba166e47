"""The OperationStore contract for workers and the reaper, run on every store: claiming the
oldest claimable operation (or a batch of them), expired leases, overdue pending operations and
purging."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Unpack

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import Code, InvalidTransition, OperationNotFound
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import Failure, Operation, State
from longrunning.core.ports import Claim, OperationStore
from longrunning.testing import OperationFields, make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
LEASE = timedelta(minutes=5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def take(owner: str = "w1", now: datetime = NOW) -> Claim:
    return lambda op: lifecycle.claim(op, owner=owner, lease_until=now + LEASE, now=now)


async def claim_one(
    store: OperationStore,
    *,
    kinds: tuple[str, ...] = ("demo.sleep",),
    queues: tuple[str, ...] = ("default",),
    now: datetime = NOW,
    owner: str = "w1",
) -> Operation | None:
    return await store.claim(kinds=kinds, queues=queues, now=now, claim=take(owner, now))


def running(
    seconds: float, *, lease_until: datetime, **overrides: Unpack[OperationFields]
) -> Operation:
    fields: OperationFields = {
        "state": State.RUNNING,
        "start_time": at(seconds),
        "lease_owner": "w0",
        "lease_epoch": 1,
        "lease_expires_at": lease_until,
        "attempt": 1,
    }
    fields.update(overrides)
    return make_operation(now=at(seconds), **fields)


def finished(seconds: float, state: State = State.SUCCEEDED) -> Operation:
    error = None if state is State.SUCCEEDED else Failure(code=Code.INTERNAL, message="x")
    return make_operation(now=at(0), state=state, end_time=at(seconds), error=error)


async def test_claim_applies_the_transition_and_bumps_the_version(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0))
    claimed = await claim_one(store)
    assert claimed == dataclasses.replace(take()(op), version=2)
    assert await store.get(op.id) == claimed


async def test_claim_takes_the_oldest_first_with_ids_breaking_ties(store: OperationStore) -> None:
    inserted = [
        await store.insert(make_operation(id=op_id, now=at(seconds)))
        for op_id, seconds in [("c", 2), ("b", 1), ("z", 0), ("a", 1)]
    ]
    order = [(await claim_one(store)) for _ in inserted]
    assert [op.id if op else None for op in order] == ["z", "a", "b", "c"]


async def test_claim_returns_none_when_nothing_is_claimable(store: OperationStore) -> None:
    assert await claim_one(store) is None
    await store.insert(finished(1))
    assert await claim_one(store) is None


async def test_claim_only_takes_the_given_kinds_and_queues(store: OperationStore) -> None:
    await store.insert(make_operation(now=at(0), kind="other.kind"))
    await store.insert(make_operation(now=at(1), queue="slow"))
    wanted = await store.insert(make_operation(now=at(2), kind="demo.copy", queue="fast"))
    assert await claim_one(store, kinds=("demo.copy", "demo.sleep"), queues=("fast",)) == (
        dataclasses.replace(take()(wanted), version=2)
    )
    assert await claim_one(store, kinds=(), queues=("slow",)) is None
    assert await claim_one(store, kinds=("demo.sleep",), queues=()) is None


async def test_claim_waits_for_not_before(store: OperationStore) -> None:
    later = await store.insert(make_operation(now=at(0), not_before=NOW + timedelta(seconds=1)))
    due = await store.insert(make_operation(now=at(1), not_before=NOW))
    first = await claim_one(store)
    assert first is not None and first.id == due.id
    assert await claim_one(store) is None
    second = await claim_one(store, now=NOW + timedelta(seconds=1))
    assert second is not None and second.id == later.id


async def test_claim_skips_operations_whose_cancel_was_requested(store: OperationStore) -> None:
    await store.insert(make_operation(now=at(0), cancel_requested_at=at(1)))
    fresh = await store.insert(make_operation(now=at(1)))
    claimed = await claim_one(store)
    assert claimed is not None and claimed.id == fresh.id
    assert await claim_one(store) is None


async def test_claim_skips_targets_with_a_running_operation(store: OperationStore) -> None:
    await store.insert(running(0, lease_until=NOW + LEASE, target="db/1"))
    await store.insert(make_operation(now=at(1), target="db/1"))
    free = await store.insert(make_operation(now=at(2), target="db/2"))
    claimed = await claim_one(store)
    assert claimed is not None and claimed.id == free.id
    assert await claim_one(store) is None


async def test_pending_operations_on_one_target_run_one_at_a_time(store: OperationStore) -> None:
    first = await store.insert(make_operation(now=at(0), target="db/1"))
    second = await store.insert(make_operation(now=at(1), target="db/1"))
    claimed = await claim_one(store)
    assert claimed is not None and claimed.id == first.id
    assert await claim_one(store) is None
    done = lifecycle.succeed(claimed, None, now=NOW)
    await store.replace(done, expected_version=claimed.version)
    claimed = await claim_one(store)
    assert claimed is not None and claimed.id == second.id


async def test_a_failing_claim_transition_changes_nothing(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0))

    def refuse(candidate: Operation) -> Operation:
        raise InvalidTransition(f"not {candidate.id}")

    with pytest.raises(InvalidTransition):
        await store.claim(kinds=["demo.sleep"], queues=["default"], now=NOW, claim=refuse)
    assert await store.get(op.id) == op
    assert await claim_one(store) is not None


async def test_concurrent_claimers_never_take_the_same_operation(store: OperationStore) -> None:
    ops = [await store.insert(make_operation(now=at(i))) for i in range(12)]
    results = await asyncio.gather(*(claim_one(store, owner=f"w{i}") for i in range(30)))
    claimed = [op for op in results if op is not None]
    assert sorted(op.id for op in claimed) == sorted(op.id for op in ops)
    for op in claimed:
        assert await store.get(op.id) == op


async def test_expired_leases_lists_running_operations_past_their_lease(
    store: OperationStore,
) -> None:
    late = await store.insert(running(0, lease_until=NOW - timedelta(seconds=2)))
    later = await store.insert(running(1, lease_until=NOW - timedelta(seconds=1)))
    await store.insert(running(2, lease_until=NOW))
    await store.insert(running(3, lease_until=NOW + timedelta(seconds=1)))
    await store.insert(make_operation(now=at(4), lease_expires_at=NOW - LEASE))
    await store.insert(finished(5))
    assert await store.expired_leases(now=NOW, limit=10) == [late, later]
    assert await store.expired_leases(now=NOW, limit=1) == [late]
    assert await store.expired_leases(now=NOW, limit=0) == []


async def test_expired_leases_orders_by_expiry_then_id(store: OperationStore) -> None:
    expiry = NOW - timedelta(seconds=1)
    b = await store.insert(running(0, lease_until=expiry, id="b"))
    a = await store.insert(running(1, lease_until=expiry, id="a"))
    c = await store.insert(running(2, lease_until=expiry - timedelta(seconds=1), id="c"))
    assert await store.expired_leases(now=NOW, limit=10) == [c, a, b]


async def test_overdue_pending_lists_pending_operations_past_their_deadline(
    store: OperationStore,
) -> None:
    later = await store.insert(make_operation(now=at(0), deadline=NOW - timedelta(seconds=1)))
    early = await store.insert(make_operation(now=at(1), deadline=NOW - timedelta(seconds=2)))
    await store.insert(make_operation(now=at(2), deadline=NOW))
    await store.insert(make_operation(now=at(3)))
    await store.insert(running(4, lease_until=NOW + LEASE, deadline=NOW - LEASE))
    assert await store.overdue_pending(now=NOW, limit=10) == [early, later]
    assert await store.overdue_pending(now=NOW, limit=1) == [early]


async def test_purge_deletes_only_finished_operations_that_ended_before(
    store: OperationStore,
) -> None:
    old = [
        await store.insert(finished(10, State.SUCCEEDED)),
        await store.insert(finished(11, State.FAILED)),
        await store.insert(finished(12, State.CANCELLED)),
    ]
    recent = await store.insert(finished(20))
    at_cutoff = await store.insert(finished(15))
    live = [
        await store.insert(make_operation(now=at(0))),
        await store.insert(running(0, lease_until=NOW)),
    ]
    assert await store.purge_finished(ended_before=at(15), limit=100) == 3
    for op in old:
        with pytest.raises(OperationNotFound):
            await store.get(op.id)
    for op in [recent, at_cutoff, *live]:
        assert await store.get(op.id) == op


async def test_purge_takes_the_oldest_first_up_to_the_limit(store: OperationStore) -> None:
    newer = await store.insert(finished(12))
    oldest = await store.insert(finished(10))
    middle = await store.insert(finished(11))
    assert await store.purge_finished(ended_before=at(100), limit=2) == 2
    assert await store.get(newer.id) == newer
    for gone in (oldest, middle):
        with pytest.raises(OperationNotFound):
            await store.get(gone.id)
    assert await store.purge_finished(ended_before=at(100), limit=0) == 0
    assert await store.purge_finished(ended_before=at(100), limit=5) == 1


async def test_forgotten_operations_are_never_listed_and_purged_once_they_end(
    store: OperationStore,
) -> None:
    live = await store.insert(running(0, lease_until=NOW, request_id="r-1"))
    hidden = await store.replace(lifecycle.forget(live, now=NOW), expected_version=live.version)
    ended_recently = await store.insert(finished(50))
    forgotten_ended = await store.insert(dataclasses.replace(finished(60), forgotten_at=at(1)))
    # The store still serves it to workers and the reaper, but no listing shows it.
    assert await store.get(live.id) == hidden and hidden.forgotten_at == NOW
    assert hidden.request_id is None  # released: a new start with it makes a new operation
    again = await store.insert(make_operation(parent=live.parent, request_id="r-1", now=at(2)))
    assert again.id != live.id
    listed = await store.list_page(OperationQuery(page_size=10))
    assert [op.id for op in listed.operations] == [again.id, ended_recently.id]  # newest first
    # Forgotten and finished goes first, whatever its end time; forgotten but live stays.
    assert await store.purge_finished(ended_before=at(0), limit=10) == 1
    with pytest.raises(OperationNotFound):
        await store.get(forgotten_ended.id)
    assert await store.get(live.id) == hidden
    assert await store.get(ended_recently.id) == ended_recently


async def claim_some(
    store: OperationStore,
    *,
    limit: int,
    kinds: tuple[str, ...] = ("demo.sleep",),
    queues: tuple[str, ...] = ("default",),
    now: datetime = NOW,
    owner: str = "w1",
) -> list[Operation]:
    return await store.claim_many(
        kinds=kinds, queues=queues, now=now, claim=take(owner, now), limit=limit
    )


async def test_claim_many_takes_up_to_the_limit_oldest_first(store: OperationStore) -> None:
    inserted = {
        op_id: await store.insert(make_operation(id=op_id, now=at(seconds)))
        for op_id, seconds in [("c", 2), ("b", 1), ("z", 0), ("a", 1), ("d", 3)]
    }
    seen = store.change_count()
    first = await claim_some(store, limit=3)
    assert first == [dataclasses.replace(take()(inserted[i]), version=2) for i in "zab"]
    assert store.change_count() > seen
    for op in first:
        assert await store.get(op.id) == op
    rest = await claim_some(store, limit=5)
    assert [op.id for op in rest] == ["c", "d"]
    assert all(op.state is State.RUNNING and op.lease_owner == "w1" for op in rest)
    assert await claim_some(store, limit=5) == []


async def test_claim_many_with_no_limit_claims_nothing(store: OperationStore) -> None:
    op = await store.insert(make_operation(now=T0))
    assert await claim_some(store, limit=0) == []
    assert await claim_some(store, limit=-1) == []
    assert await store.get(op.id) == op


async def test_claim_many_takes_one_operation_per_target(store: OperationStore) -> None:
    older = await store.insert(make_operation(now=at(0), target="t"))
    newer = await store.insert(make_operation(now=at(1), target="t"))
    free = await store.insert(make_operation(now=at(2)))
    claimed = await claim_some(store, limit=5)
    assert [op.id for op in claimed] == [older.id, free.id]
    assert await claim_some(store, limit=5) == []  # "t" is busy while `older` runs
    assert await store.get(newer.id) == newer


async def test_claim_many_claims_every_target_in_the_end(store: OperationStore) -> None:
    ops = [await store.insert(make_operation(now=at(i), target=f"t{i % 3}")) for i in range(3)]
    ops += [await store.insert(make_operation(now=at(3 + i))) for i in range(2)]
    claimed: list[Operation] = []
    for _ in range(len(ops)):
        batch = await claim_some(store, limit=5)
        targets = [op.target for op in batch if op.target is not None]
        assert len(targets) == len(set(targets))
        claimed += batch
    assert sorted(op.id for op in claimed) == sorted(op.id for op in ops)


async def test_claim_many_picks_what_claim_would(store: OperationStore) -> None:
    def fast(seconds: float, **overrides: Unpack[OperationFields]) -> Operation:
        fields: OperationFields = {"queue": "fast"}
        fields.update(overrides)
        return make_operation(now=at(seconds), **fields)

    await store.insert(fast(0, kind="other.kind"))
    await store.insert(fast(1, queue="slow"))
    await store.insert(fast(2, not_before=NOW + timedelta(seconds=1)))
    await store.insert(fast(3, cancel_requested_at=at(3)))
    await store.insert(running(4, lease_until=NOW + LEASE, target="db/1"))
    await store.insert(fast(5, target="db/1"))
    wanted = [
        await store.insert(fast(6, kind="demo.copy")),
        await store.insert(fast(7, not_before=NOW)),
    ]
    kinds = ("demo.copy", "demo.sleep")
    assert await claim_some(store, limit=10, kinds=(), queues=("fast",)) == []
    assert await claim_some(store, limit=10, kinds=kinds, queues=()) == []
    claimed = await claim_some(store, limit=10, kinds=kinds, queues=("fast",))
    assert claimed == [dataclasses.replace(take()(op), version=2) for op in wanted]


async def test_a_failing_claim_transition_claims_nothing_of_the_batch(
    store: OperationStore,
) -> None:
    first = await store.insert(make_operation(now=at(0)))
    second = await store.insert(make_operation(now=at(1)))

    def refuse_the_second(candidate: Operation) -> Operation:
        if candidate.id == second.id:
            raise InvalidTransition(f"not {candidate.id}")
        return take()(candidate)

    with pytest.raises(InvalidTransition):
        await store.claim_many(
            kinds=["demo.sleep"], queues=["default"], now=NOW, claim=refuse_the_second, limit=2
        )
    assert await store.get(first.id) == first
    assert await store.get(second.id) == second


async def test_concurrent_claim_many_never_takes_an_operation_twice(
    store: OperationStore,
) -> None:
    ops = [await store.insert(make_operation(now=at(i))) for i in range(12)]
    claimed: list[Operation] = []
    for _ in range(len(ops)):
        batches = await asyncio.gather(
            *(claim_some(store, limit=5, owner=f"w{i}") for i in range(4))
        )
        if not any(batches):
            break
        claimed += [op for batch in batches for op in batch]
    assert sorted(op.id for op in claimed) == sorted(op.id for op in ops)  # each exactly once
    for op in claimed:
        assert await store.get(op.id) == op
