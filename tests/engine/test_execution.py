"""The worker runs operations to a truthful end: success, failure, retries and the cancel ladder."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest

from longrunning.core.errors import Code, InvalidRequest, NotCancellable, StoreError
from longrunning.core.operation import CancelOutcome, Operation, State
from longrunning.core.ports import OperationStore
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from tests.acceptance.processes import running
from tests.engine import kinds
from tests.engine.conftest import FAST, WorkerFactory


async def start(service: OperationService, kind: str, **request: object) -> Operation:
    started = await service.start(StartRequest(kind=kind, request=dict(request)))  # type: ignore[arg-type]
    return started.operation


async def until_state(
    service: OperationService, op_id: str, state: State, timeout: float = 5.0
) -> Operation:
    async with asyncio.timeout(timeout):
        while (op := await service.get(op_id)).state is not state:
            await asyncio.sleep(0.01)
    return op


async def until_progress(service: OperationService, op_id: str, timeout: float = 15.0) -> None:
    """Wait until the handler has reported some progress (it is really running)."""
    async with asyncio.timeout(timeout):
        while (await service.get(op_id)).progress.percent <= 0:
            await asyncio.sleep(0.02)


async def test_demo_sleep_runs_to_success_with_full_progress(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "demo.sleep", duration_seconds=0.2, steps=4)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.progress.percent == 100.0
    assert done.progress.phase == "step 4 of 4"
    assert isinstance(done.result, dict) and done.result["steps"] == 4
    assert done.start_time is not None and done.end_time is not None
    assert done.attempt == 1 and done.cancel_outcome is None and done.error is None


async def test_cancel_of_running_operation_waits_for_the_handler_to_stop(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "demo.sleep", duration_seconds=30, steps=300)
    await until_state(service, op.id, State.RUNNING)
    requested = await service.cancel(op.id)
    assert requested.cancel_requested
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY
    assert done.error is not None and done.error.code is Code.CANCELLED


async def test_cancel_of_pending_operation_is_immediate(service: OperationService) -> None:
    op = await start(service, "demo.sleep", duration_seconds=1)
    cancelled = await service.cancel(op.id)
    assert cancelled.state is State.CANCELLED
    assert cancelled.cancel_outcome is CancelOutcome.NOT_STARTED


async def test_cancel_of_finished_operation_is_a_noop(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "demo.sleep", duration_seconds=0)
    done = await service.wait(op.id, timeout=5)
    again = await service.cancel(op.id)
    assert again.state is State.SUCCEEDED
    assert again.version == done.version
    assert again.cancel_requested_at is None


async def test_handler_ignoring_cancel_ends_succeeded_completed_before_cancel(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "demo.sleep", duration_seconds=0.6, steps=6, ignore_cancel=True)
    await until_state(service, op.id, State.RUNNING)
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.cancel_outcome is CancelOutcome.COMPLETED_BEFORE_CANCEL
    assert done.cancel_requested


async def test_async_handler_ignoring_the_token_is_interrupted_after_grace(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.async_stubborn", seconds=30)
    await until_state(service, op.id, State.RUNNING)
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.INTERRUPTED


async def test_blocking_handler_stops_at_its_checkpoint(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.blocking", seconds=30)
    await until_state(service, op.id, State.RUNNING)
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY


async def test_uninterruptible_handler_is_never_reported_stopped_while_it_runs(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.blocking_stubborn", seconds=1.5)
    await until_state(service, op.id, State.RUNNING)
    await service.cancel(op.id)
    await asyncio.sleep(0.4)  # well past every grace period of the ladder
    meanwhile = await service.get(op.id)
    assert meanwhile.state is State.RUNNING and meanwhile.cancel_requested
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.cancel_outcome is CancelOutcome.COMPLETED_BEFORE_CANCEL
    assert kinds.STEPS_AFTER_STOP[op.id] > 0  # it really kept working until it ended


async def test_cancel_of_running_uncancellable_operation_is_refused(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.uncancellable", seconds=1)
    await until_state(service, op.id, State.RUNNING)
    with pytest.raises(NotCancellable):
        await service.cancel(op.id)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED and not done.cancel_requested


async def test_deadline_stops_the_handler_and_fails_with_deadline_exceeded(
    service: OperationService, worker: Worker
) -> None:
    started = await service.start(
        StartRequest(kind="demo.sleep", request={"duration_seconds": 30}, timeout_seconds=0.3)
    )
    done = await service.wait(started.operation.id, timeout=5)
    assert done.state is State.FAILED
    assert done.error is not None and done.error.code is Code.DEADLINE_EXCEEDED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY


async def test_opt_in_retries_run_again_with_backoff(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.flaky", succeed_on=3)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.attempt == 3
    assert done.result == {"attempt": 3}


async def test_retries_stop_after_max_attempts(service: OperationService, worker: Worker) -> None:
    op = await start(service, "test.flaky", succeed_on=9)
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.FAILED
    assert done.attempt == 3
    assert done.error is not None and "attempt 3" in done.error.message


async def test_structured_handler_error_is_recorded_as_given(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.user_error")
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.FAILED
    assert done.error is not None
    assert (done.error.code, done.error.message, done.error.is_user_error) == (
        Code.ABORTED,
        "the table is locked",
        False,
    )


async def test_demo_fail_fails_with_the_requested_code(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "demo.fail", code="RESOURCE_EXHAUSTED", message="disk full")
    done = await service.wait(op.id, timeout=5)
    assert done.error is not None
    assert (done.error.code, done.error.message) == (Code.RESOURCE_EXHAUSTED, "disk full")


async def test_progress_storm_is_coalesced(service: OperationService, worker: Worker) -> None:
    op = await start(service, "test.chatty")
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    # 10,000 reports; a handful of writes (claim, a few coalesced flushes, the end).
    assert done.version < 40


async def test_worker_runs_at_most_its_concurrency(
    service: OperationService, worker: Worker
) -> None:
    kinds.PEAK_RUNNING[0] = 0
    ops = [await start(service, "test.tracked", seconds=0.15) for _ in range(10)]
    for op in ops:
        assert (await service.wait(op.id, timeout=10)).state is State.SUCCEEDED
    assert kinds.PEAK_RUNNING[0] == worker.config.concurrency


async def test_bad_start_requests_store_nothing(service: OperationService) -> None:
    with pytest.raises(InvalidRequest) as unknown:
        await start(service, "no.such.kind")
    assert unknown.value.reason == "UNKNOWN_KIND"
    with pytest.raises(InvalidRequest):
        await start(service, "demo.sleep", duration_seconds=-1)
    with pytest.raises(InvalidRequest):
        await service.start(StartRequest(kind="demo.sleep", parent="projects/p/locations"))
    with pytest.raises(InvalidRequest):
        await service.start(StartRequest(kind="demo.sleep", labels={"Bad Key": "x"}))
    from longrunning.core.listing import build_query

    assert (await service.list(build_query())).operations == []


async def test_process_isolated_handler_relays_progress_and_stops_cooperatively(
    service: OperationService, worker: Worker
) -> None:
    quick = await start(service, "test.process_cooperative", seconds=0.1)
    finished = await service.wait(quick.id, timeout=15)
    assert finished.state is State.SUCCEEDED
    assert isinstance(finished.result, dict)
    assert finished.result["pid"] != os.getpid()
    assert finished.metadata == {"child_pid": finished.result["pid"]}  # relayed from the child
    op = await start(service, "test.process_cooperative", seconds=60)
    await until_progress(service, op.id)
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=10)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY


async def test_stubborn_process_group_is_killed_grandchildren_included(
    service: OperationService, worker: Worker, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    op = await start(service, "test.process_stubborn", pid_file=str(pid_file))
    await until_progress(service, op.id)
    grandchild = int(pid_file.read_text())
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=10)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.KILLED
    await asyncio.sleep(0.1)
    assert not running(grandchild)


async def test_handler_metadata_is_merged_into_the_operation(
    service: OperationService, worker: Worker
) -> None:
    op = await start(service, "test.metadata")
    done = await service.wait(op.id, timeout=5)
    assert done.state is State.SUCCEEDED
    assert done.metadata == {"rows_total": 2000, "table": "orders", "source": "backup-7"}
    assert done.result is None


async def test_more_process_isolated_handlers_than_pool_threads_all_run_and_cancel(
    service: OperationService, start_worker: WorkerFactory
) -> None:
    config = dataclasses.replace(FAST, concurrency=8)
    async with start_worker(config=config):
        ops = [await start(service, "test.process_cooperative", seconds=60) for _ in range(8)]
        for op in ops:
            await until_progress(service, op.id, timeout=30)
        for op in ops:
            await service.cancel(op.id)
        for op in ops:
            done = await service.wait(op.id, timeout=10)
            assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY


async def test_a_handler_mistake_in_progress_fails_the_operation_saying_why(
    service: OperationService, worker: Worker
) -> None:
    done = await service.wait((await start(service, "test.naive_eta")).id, timeout=5)
    assert done.state is State.FAILED
    assert done.attempt == 1
    assert done.error is not None
    assert "timezone-aware" in done.error.message


class FlakyOutcomeStore:
    """A real store whose first terminal write fails as an unavailable database would."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self.failures = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        if op.done and self.failures == 0:
            self.failures += 1
            raise StoreError("database is locked")
        return await self.inner.replace(op, expected_version=expected_version)


async def test_an_outcome_write_that_fails_once_is_retried_not_lost(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    flaky = FlakyOutcomeStore(store)
    worker = Worker(flaky, registry, config=FAST, signals=service.signals)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    try:
        done = await service.wait((await start(service, "test.invoice")).id, timeout=5)
    finally:
        worker.stop()
        await running
    assert flaky.failures == 1
    assert (done.state, done.result, done.attempt) == (State.SUCCEEDED, {"invoice": 42}, 1)


class HeldOutcomeStore:
    """A real store whose terminal writes wait until `release` is set."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.held = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        if op.done:
            self.held += 1
            await self.release.wait()
        return await self.inner.replace(op, expected_version=expected_version)


async def test_a_slot_is_free_while_its_outcome_is_written_and_such_writes_are_bounded(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    """With one slot, the next operation runs while the first one's outcome is being written;
    a third waits, since one outcome at a time may be in writing per slot."""
    held = HeldOutcomeStore(store)
    config = dataclasses.replace(FAST, concurrency=1)
    worker = Worker(held, registry, config=config, signals=service.signals)  # type: ignore[arg-type]
    first, second, third = [await start(service, "test.invoice") for _ in range(3)]
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            # The first outcome is being written, and the second operation was claimed.
            while held.held < 1 or (await service.get(second.id)).state is State.PENDING:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # time enough for a third claim, were one allowed
        states = [(await service.get(op.id)).state for op in (first, second, third)]
        assert states == [State.RUNNING, State.RUNNING, State.PENDING]
        assert held.held == 1  # the second outcome waits for the first to be written
        held.release.set()
        for op in (first, second, third):
            assert (await service.wait(op.id, timeout=5)).state is State.SUCCEEDED
    finally:
        held.release.set()
        worker.stop()
        await running
