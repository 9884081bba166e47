"""Leases, fencing and recovery; idempotent starts; conflicts per target; retention; shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import Code, LeaseLost, OperationAlreadyExists, TargetBusy
from longrunning.core.operation import CancelOutcome, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.engine.config import EngineConfig, SystemClock
from longrunning.engine.execution import Execution
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.recovery import LeaseReaper
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from tests.engine.conftest import FAST, WorkerFactory
from tests.engine.test_execution import start, until_state


async def claim_by(store: OperationStore, owner: str, lease_seconds: float) -> Operation:
    now = SystemClock().now()
    op = await store.claim(
        kinds=["demo.sleep", "test.tracked"],
        queues=["default"],
        now=now,
        claim=lambda o: lifecycle.claim(
            o, owner=owner, lease_until=now + timedelta(seconds=lease_seconds), now=now
        ),
    )
    assert op is not None
    return op


async def test_expired_lease_of_idempotent_kind_is_retried_by_another_worker(
    service: OperationService, store: OperationStore, start_worker: WorkerFactory
) -> None:
    op = await start(service, "demo.sleep", duration_seconds=0.1)
    lost = await claim_by(store, "vanished-worker", lease_seconds=0.2)
    assert lost.id == op.id and lost.lease_epoch == 1
    async with start_worker():  # its reaper sees the expired lease, its worker re-runs it
        done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.attempt == 2 and done.lease_epoch == 2


async def test_expired_lease_of_non_idempotent_kind_fails_unavailable(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    op = await start(service, "test.tracked")
    await claim_by(store, "vanished-worker", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    assert await LeaseReaper(store, config=FAST).recover_once() == 1
    done = await service.get(op.id)
    assert done.state is State.FAILED
    assert done.error is not None and done.error.code is Code.UNAVAILABLE


async def test_expired_lease_with_cancel_requested_ends_cancelled_worker_lost(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    op = await start(service, "test.tracked")
    await claim_by(store, "vanished-worker", lease_seconds=0.05)
    await service.cancel(op.id)
    await asyncio.sleep(0.1)
    await LeaseReaper(store, config=FAST).recover_once()
    done = await service.get(op.id)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.WORKER_LOST


def zombie(claimed: Operation, registry: HandlerRegistry, store: OperationStore) -> Execution:
    """An execution still holding `claimed`'s lease in its memory, as a stalled worker would."""
    return Execution(
        claimed,
        registry.get(claimed.kind),
        store=store,
        clock=SystemClock(),
        config=FAST,
        executor=None,  # type: ignore[arg-type]  # never runs a handler
    )


async def test_zombie_write_after_recovery_is_fenced_off(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    op = await start(service, "demo.sleep")
    zombie_view = await claim_by(store, "zombie", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    await LeaseReaper(store, config=FAST).recover_once()  # back to PENDING (idempotent)
    fresh = await claim_by(store, "new-owner", lease_seconds=10)
    assert fresh.lease_epoch == zombie_view.lease_epoch + 1
    with pytest.raises(LeaseLost):
        await zombie(zombie_view, registry, store)._write(
            lambda o: lifecycle.succeed(o, "stale", now=o.update_time)
        )
    current = await service.get(op.id)
    assert current.state is State.RUNNING and current.lease_owner == "new-owner"


async def test_a_stale_claim_of_the_same_worker_is_fenced_by_its_epoch(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    await start(service, "demo.sleep")
    first = await claim_by(store, "same-worker", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    await LeaseReaper(store, config=FAST).recover_once()  # idempotent: back to PENDING
    second = await claim_by(store, "same-worker", lease_seconds=10)
    assert (second.lease_owner, second.lease_epoch) == ("same-worker", first.lease_epoch + 1)
    stale = zombie(first, registry, store)
    with pytest.raises(LeaseLost):
        await stale._write(lambda o: lifecycle.succeed(o, "stale", now=o.update_time))
    assert (await service.get(first.id)).state is State.RUNNING


async def test_a_worker_cannot_write_to_an_operation_that_ended_meanwhile(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    await start(service, "test.tracked")
    claimed = await claim_by(store, "slow-worker", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    await LeaseReaper(store, config=FAST).recover_once()  # not idempotent: FAILED
    ended = await service.get(claimed.id)
    assert ended.state is State.FAILED
    late = zombie(claimed, registry, store)
    for change in (
        lambda o: lifecycle.succeed(o, "late", now=o.update_time),
        lambda o: lifecycle.report_progress(o, Progress(percent=99), now=o.update_time),
    ):
        with pytest.raises(LeaseLost):
            await late._write(change)
    assert await service.get(claimed.id) == ended  # not one field changed
    assert (await service.cancel(claimed.id)) == ended  # and a cancel is a no-op


async def test_same_request_id_and_parameters_returns_the_same_operation(
    service: OperationService,
) -> None:
    request = StartRequest(kind="demo.sleep", request={"duration_seconds": 1}, request_id="r-1")
    first = await service.start(request)
    second = await service.start(request)
    assert first.created and not second.created
    assert second.operation.id == first.operation.id
    with pytest.raises(OperationAlreadyExists):
        await service.start(dataclasses.replace(request, request={"duration_seconds": 2}))


async def test_reject_policy_refuses_a_second_operation_on_the_target(
    service: OperationService,
) -> None:
    await service.start(StartRequest(kind="test.exclusive", target="db/1"))
    with pytest.raises(TargetBusy):
        await service.start(StartRequest(kind="test.exclusive", target="db/1"))
    other = await service.start(StartRequest(kind="test.exclusive", target="db/2"))
    assert other.created


async def test_queue_policy_runs_operations_on_one_target_one_at_a_time(
    service: OperationService, start_worker: WorkerFactory
) -> None:
    from tests.engine import kinds

    kinds.PEAK_RUNNING[0] = 0
    ops = [await start(service, "test.queued", db="one", seconds=0.1) for _ in range(4)]
    async with start_worker():
        for op in ops:
            assert (await service.wait(op.id, timeout=5)).state is State.SUCCEEDED
    assert kinds.PEAK_RUNNING[0] == 1
    ends = {(await service.get(op.id)).end_time for op in ops}
    assert len(ends) == 4


async def test_finished_operations_are_purged_after_retention(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    old = await start(service, "demo.sleep")
    await service.cancel(old.id)
    young = await start(service, "demo.sleep")
    await asyncio.sleep(0.05)
    await service.cancel(young.id)
    live = await start(service, "demo.sleep")
    cutoff = (await service.get(young.id)).end_time
    assert cutoff is not None
    retention = SystemClock().now() - cutoff + timedelta(milliseconds=1)
    config = dataclasses.replace(FAST, retention=retention)
    assert await LeaseReaper(store, config=config).purge_once() == 1
    with pytest.raises(Exception, match="operation"):
        await service.get(old.id)
    assert (await service.get(young.id)).state is State.CANCELLED
    assert (await service.get(live.id)).state is State.PENDING


async def test_shutdown_hands_back_an_interrupted_idempotent_operation(
    service: OperationService, start_worker: WorkerFactory
) -> None:
    config = dataclasses.replace(FAST, shutdown_grace_seconds=0.1)
    async with start_worker(config=config):
        op = await start(service, "demo.sleep", duration_seconds=30)
        await until_state(service, op.id, State.RUNNING)
    back = await service.get(op.id)
    assert back.state is State.PENDING
    assert back.lease_owner is None and back.attempt == 1


async def test_deleting_a_live_operation_is_refused(service: OperationService) -> None:
    from longrunning.core.errors import FailedPrecondition

    op = await start(service, "demo.sleep")
    with pytest.raises(FailedPrecondition):
        await service.delete(op.id)
    await service.cancel(op.id)
    await service.delete(op.id)
    with pytest.raises(Exception, match="operation"):
        await service.get(op.id)


def test_config_heartbeat_defaults_to_a_third_of_the_lease() -> None:
    assert EngineConfig(lease_seconds=9).heartbeat_interval == 3


async def test_a_reclaimed_operation_stays_tracked_while_its_fenced_run_finishes(
    service: OperationService, store: OperationStore, worker: Worker
) -> None:
    op = await start(service, "test.blocking_idempotent")
    running = await until_state(service, op.id, State.RUNNING)
    # Its lease is lost while the thread runs on (as after a long stall): recovery re-queues it,
    # and this same worker claims it again while the first run has not ended.
    expired = dataclasses.replace(running, lease_expires_at=running.create_time)
    await store.replace(
        lifecycle.recover_expired_lease(expired, now=SystemClock().now()),
        expected_version=running.version,
    )
    async with asyncio.timeout(5):
        while (again := await service.get(op.id)).attempt < 2 or again.state is not State.RUNNING:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.6)  # the first run ends meanwhile; it must not untrack the second
    assert worker.executions[op.id].epoch == again.lease_epoch
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert (done.attempt, done.result) == (2, 2)  # the fenced first run recorded nothing
