"""Random interleavings of start, claim, progress, cancel, completion, crash and recovery, on every
store, against the lifecycle invariants: terminal states never change, progress never goes back,
fencing refuses every write of a worker that lost its lease, CANCELLED only after a stop."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from longrunning.core import lifecycle
from longrunning.core.errors import (
    Code,
    InvalidTransition,
    LeaseLost,
    NotCancellable,
    StoreConflict,
)
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.testing.factories import make_operation
from tests.store_kinds import fresh_store

_T = TypeVar("_T")

LEASE = timedelta(seconds=10)
WORKERS = ("w1", "w2", "w3")


class LifecycleMachine(RuleBasedStateMachine):
    store_scheme: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.mkdtemp(prefix="lro-machine-")
        self.store: OperationStore = self.run(fresh_store(self.store_scheme, Path(self.tmp)))
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.ids: list[str] = []
        self.held: dict[str, tuple[str, int]] = {}  # op id -> (worker, epoch) it believes it holds
        self.claims: list[
            tuple[str, str, int]
        ] = []  # every claim ever made: (op id, worker, epoch)
        self.crashed: set[str] = set()
        self.terminal: dict[str, Operation] = {}
        self.max_percent: dict[str, float] = {}
        self.max_epoch: dict[str, int] = {}
        self.cancel_seen: set[str] = set()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    async def fenced(
        self,
        op_id: str,
        change: Callable[[Operation], Operation],
        claim: tuple[str, int] | None = None,
    ) -> bool:
        """A worker's write, exactly as the engine does it: read, check the fence, CAS."""
        worker, epoch = claim or self.held[op_id]
        for _ in range(5):
            op = await self.store.get(op_id)
            try:
                lifecycle.check_fence(op, owner=worker, epoch=epoch)
            except LeaseLost:
                return False
            try:
                await self.store.replace(change(op), expected_version=op.version)
            except StoreConflict:
                continue
            return True
        return False

    @rule(cancellable=st.booleans(), idempotent=st.booleans())
    def start(self, cancellable: bool, idempotent: bool) -> None:
        op = make_operation(
            cancellable=cancellable,
            idempotent=idempotent,
            max_attempts=3,
            now=self.tick(),
            kind="demo.sleep",
        )
        self.run(self.store.insert(op))
        self.ids.append(op.id)

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        if worker in self.crashed:
            return
        now = self.tick()
        claimed = self.run(
            self.store.claim(
                kinds=["demo.sleep"],
                queues=["default"],
                now=now,
                claim=lambda o: lifecycle.claim(o, owner=worker, lease_until=now + LEASE, now=now),
            )
        )
        if claimed is not None:
            assert isinstance(claimed, Operation)
            assert claimed.lease_epoch > self.max_epoch.get(claimed.id, 0)
            self.held[claimed.id] = (worker, claimed.lease_epoch)
            self.claims.append((claimed.id, worker, claimed.lease_epoch))

    def _held(self) -> list[str]:
        # In start order, never sorted: ids are random, and a draw by position must pick the same
        # operation when hypothesis replays the steps, or it reports a flaky strategy.
        return [i for i in self.ids if i in self.held]

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), percent=st.floats(min_value=-10, max_value=110, allow_nan=False))
    def progress(self, data: st.DataObject, percent: float) -> None:
        op_id = data.draw(st.sampled_from(self._held()))
        now = self.tick(0.1)
        self.run(
            self.fenced(
                op_id, lambda o: lifecycle.report_progress(o, Progress(percent=percent), now=now)
            )
        )

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), succeed=st.booleans())
    def complete(self, data: st.DataObject, succeed: bool) -> None:
        op_id = data.draw(st.sampled_from(self._held()))
        now = self.tick()
        failure = Failure(code=Code.INTERNAL, message="boom")
        change = (
            (lambda o: lifecycle.succeed(o, {"ok": True}, now=now))
            if succeed
            else (lambda o: lifecycle.fail(o, failure, now=now))
        )
        self.run(self.fenced(op_id, change))

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def request_cancel(self, data: st.DataObject) -> None:
        op_id = data.draw(st.sampled_from(self.ids))
        now = self.tick(0.1)
        for _ in range(5):
            op = self.run(self.store.get(op_id))
            assert isinstance(op, Operation)
            try:
                changed = lifecycle.request_cancel(op, now=now)
            except NotCancellable:
                assert op.state is State.RUNNING
                assert not op.cancellable
                return
            if changed is op:
                return
            try:
                self.run(self.store.replace(changed, expected_version=op.version))
            except StoreConflict:
                continue
            self.cancel_seen.add(op_id)
            return

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def handler_stops_for_cancel(self, data: st.DataObject) -> None:
        op_id = data.draw(st.sampled_from(self._held()))
        now = self.tick()

        def stop(o: Operation) -> Operation:
            if not o.cancel_requested:
                raise InvalidTransition("no cancel requested")
            return lifecycle.confirm_cancelled(o, CancelOutcome.STOPPED_COOPERATIVELY, now=now)

        with contextlib.suppress(InvalidTransition):
            self.run(self.fenced(op_id, stop))

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data())
    def stale_claim_write_is_refused(self, data: st.DataObject) -> None:
        """Any claim but the operation's newest one (same worker or not) can no longer write."""
        op_id, worker, epoch = data.draw(st.sampled_from(self.claims))
        current = self.run(self.store.get(op_id))
        assert isinstance(current, Operation)
        is_current = (
            current.state is State.RUNNING
            and current.lease_owner == worker
            and current.lease_epoch == epoch
        )
        now = self.tick(0.1)
        wrote = self.run(
            self.fenced(
                op_id,
                lambda o: lifecycle.report_progress(o, Progress(percent=1.0), now=now),
                claim=(worker, epoch),
            )
        )
        assert wrote == is_current

    @rule(worker=st.sampled_from(WORKERS))
    def crash(self, worker: str) -> None:
        self.crashed.add(worker)

    @rule()
    def reaper_pass(self) -> None:
        now = self.tick(LEASE.total_seconds() + 1)  # every lease taken so far has expired
        expired = self.run(self.store.expired_leases(now=now, limit=100))
        assert isinstance(expired, list)
        for op in expired:
            assert op.lease_expires_at is not None and op.lease_expires_at < now
            changed = lifecycle.recover_expired_lease(op, now=now)
            with contextlib.suppress(StoreConflict):
                self.run(self.store.replace(changed, expected_version=op.version))

    @invariant()
    def operations_are_sound(self) -> None:
        for op_id in self.ids:
            op = self.run(self.store.get(op_id))
            assert isinstance(op, Operation)
            assert lifecycle.invariant_violations(op) == [], op
            if op_id in self.terminal:
                assert op == self.terminal[op_id], "a terminal operation changed"
            elif op.done:
                self.terminal[op_id] = op
            assert op.progress.percent >= self.max_percent.get(op_id, 0.0)
            self.max_percent[op_id] = op.progress.percent
            assert op.lease_epoch >= self.max_epoch.get(op_id, 0)
            self.max_epoch[op_id] = op.lease_epoch
            if op.state is State.CANCELLED:
                assert op_id in self.cancel_seen


class MemoryMachine(LifecycleMachine):
    store_scheme = "memory"


class SQLiteMachine(LifecycleMachine):
    store_scheme = "sqlite"


class PostgresMachine(LifecycleMachine):
    store_scheme = "postgres"


TestLifecycleOnMemoryStore = MemoryMachine.TestCase
TestLifecycleOnMemoryStore.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestLifecycleOnSQLiteStore = SQLiteMachine.TestCase
TestLifecycleOnSQLiteStore.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None
)
TestLifecycleOnPostgresStore = PostgresMachine.TestCase
TestLifecycleOnPostgresStore.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None
)
