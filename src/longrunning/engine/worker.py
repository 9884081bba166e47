"""Worker: claims operations under leases, runs each as an Execution, renews the leases, and
passes cancel requests and deadlines down to the executions.

Cancel requests reach it two ways: at once from the service of the same process (CancelSignals),
and otherwise from the store (re-read after a change notification, and at every heartbeat).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from longrunning.core import lifecycle
from longrunning.core.errors import LeaseLost, LongrunningError
from longrunning.core.operation import Operation
from longrunning.core.ports import Clock, OperationStore
from longrunning.engine.config import EngineConfig, SystemClock
from longrunning.engine.execution import Execution, StopReason
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.signals import CancelSignals

log = logging.getLogger("longrunning.worker")

CLAIM_BATCH = 64
"""Operations claimed in one store transaction at most: bounds how long a claim holds locks."""
CANCEL_PROBE_SECONDS = 0.01
"""How often at most a busy store is probed for cancels of running operations."""
_RECANCEL_SECONDS = 0.5
"""How long a stop waits for the supervisor to end before cancelling it again."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(
        self,
        store: OperationStore,
        registry: HandlerRegistry,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        signals: CancelSignals | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.config = config or EngineConfig()
        self.clock = clock or SystemClock()
        self.signals = signals or CancelSignals()
        self.worker_id = worker_id or new_worker_id()
        self.executions: dict[str, Execution] = {}
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._recording = asyncio.Semaphore(self.config.concurrency)
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="longrunning-handler"
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Claim and run operations until `stop()`; then let running ones finish or hand back."""
        supervisor = asyncio.create_task(self._supervise(), name="worker-supervisor")
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            # Cancelled until it ends: on Python 3.11 a cancel that meets a store wait just
            # ending can be lost (`asyncio.wait_for` returns the result instead), and the
            # supervisor would then run on and hang the stop. Not `suppress(CancelledError)`
            # around an await of it: that would swallow a cancel aimed at run() too.
            while not supervisor.done():
                supervisor.cancel()
                await asyncio.wait({supervisor}, timeout=_RECANCEL_SECONDS)
            self._executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _claim_loop(self) -> None:
        kinds = self.registry.names()
        while not self._stopping.is_set():
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                break
            # Claim for every free slot at once: one store transaction instead of one each.
            taken = 1
            while taken < CLAIM_BATCH and not self._slots.locked():
                await self._slots.acquire()  # a free slot: returns at once
                taken += 1
            seen = self.store.change_count()
            try:
                ops = await self._claim(kinds, taken)
            except LongrunningError as exc:
                log.warning("claim failed (%s); retrying", exc)
                ops = []
            for _ in range(taken - len(ops)):
                self._slots.release()
            if not ops:
                await self._wait(seen, self.config.poll_seconds)
                continue
            for op in ops:
                self._launch(op)

    async def _claim(self, kinds: list[str], limit: int) -> list[Operation]:
        now = self.clock.now()
        claim = functools.partial(
            lifecycle.claim,
            owner=self.worker_id,
            lease_until=now + timedelta(seconds=self.config.lease_seconds),
            now=now,
        )
        return await self.store.claim_many(
            kinds=kinds, queues=self.config.queues, now=now, claim=claim, limit=limit
        )

    def _launch(self, op: Operation) -> None:
        execution = Execution(
            op,
            self.registry.get(op.kind),
            store=self.store,
            clock=self.clock,
            config=self.config,
            executor=self._executor,
        )
        older = self.executions.get(op.id)
        if older is not None:
            # We re-claimed an operation whose earlier run here lost its lease but has not ended
            # (an uninterruptible handler). It stays fenced and keeps its slot until it ends;
            # from now on only the new claim is tracked, renewed and told about cancels.
            older.stop(StopReason.LEASE_LOST)
        self.executions[op.id] = execution
        listener = functools.partial(execution.stop, StopReason.CANCEL)
        self.signals.subscribe(op.id, listener)
        deadline_timer = None
        if op.deadline is not None:
            delay = (op.deadline - self.clock.now()).total_seconds()
            deadline_timer = asyncio.get_running_loop().call_later(
                max(delay, 0.0), execution.stop, StopReason.DEADLINE
            )
        task = asyncio.create_task(
            self._run_execution(execution, listener, deadline_timer), name=f"execution-{op.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_execution(
        self,
        execution: Execution,
        listener: Callable[[], None],
        deadline_timer: asyncio.TimerHandle | None,
    ) -> None:
        holds_slot = True
        try:
            outcome = await execution.run_handler()
            if outcome is not None:
                # The handler is done: its slot goes to the next claim while the outcome is
                # written, so that claim and these writes share round trips and commits. The
                # execution stays registered (its lease renewed) until the outcome is stored;
                # at most `concurrency` outcomes are being written at once.
                await self._recording.acquire()
                try:
                    self._slots.release()
                    holds_slot = False
                    await execution.record(outcome)
                finally:
                    self._recording.release()
        except Exception:
            log.exception("execution of %s failed unexpectedly", execution.op_id)
        finally:
            if deadline_timer is not None:
                deadline_timer.cancel()
            self.signals.unsubscribe(execution.op_id, listener)
            if self.executions.get(execution.op_id) is execution:
                del self.executions[execution.op_id]
            if holds_slot:
                self._slots.release()

    async def _supervise(self) -> None:
        """Renew leases every heartbeat. Between heartbeats, after every store change: re-read
        the running operations (at most every `cancel_check_seconds`, for cancels, deadlines
        and fencing from other nodes), and in between only probe them for cancel requests,
        which costs one read that decodes nothing (at most every CANCEL_PROBE_SECONDS)."""
        next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        last_refresh = 0.0
        while True:
            seen = self.store.change_count()
            now = time.monotonic()
            try:
                if now >= next_heartbeat:
                    next_heartbeat = now + self.config.heartbeat_interval
                    await self._renew_leases()
                elif now - last_refresh >= self.config.cancel_check_seconds:
                    last_refresh = now
                    await self._refresh()
                else:
                    await self._probe_cancels()
                timeout = max(next_heartbeat - time.monotonic(), 0.0)
                await self.store.wait_for_change(seen, timeout)
            except Exception:
                # Leases must keep being renewed: a dead supervisor would let every running
                # operation be recovered and run twice. Log, and go on.
                log.exception("worker supervisor pass failed; retrying")
                await asyncio.sleep(self.config.cancel_check_seconds)
            # A change after a quiet spell is looked at at once; a busy store is looked at
            # every CANCEL_PROBE_SECONDS at most.
            interval = min(CANCEL_PROBE_SECONDS, self.config.cancel_check_seconds)
            rest = now + interval - time.monotonic()
            if rest > 0:
                await asyncio.sleep(rest)

    async def _renew_leases(self) -> None:
        """Renew every lease this worker holds, in one store write, each fenced by its epoch."""
        executions = dict(self.executions)
        if not executions:
            return
        until = self.clock.now() + timedelta(seconds=self.config.lease_seconds)

        def renew(op: Operation) -> Operation | None:
            held = executions[op.id]
            try:
                lifecycle.check_fence(op, owner=held.owner, epoch=held.epoch)
            except LeaseLost:
                return None  # fenced off: `observe` below stops its handler
            return lifecycle.renew_lease(op, lease_until=until)

        self._observe(executions, await self.store.apply_many(executions, renew))

    async def _refresh(self) -> None:
        """Re-read every running operation in one read, to see cancels from other processes."""
        executions = dict(self.executions)
        if executions:
            self._observe(executions, await self.store.get_many(executions))

    async def _probe_cancels(self) -> None:
        """Look for cancel requests among running operations not already stopping; re-read
        and stop only those."""
        executions = {k: e for k, e in self.executions.items() if e.stop_reason is None}
        if not executions:
            return
        hits = await self.store.cancel_requested(executions)
        if hits:
            wanted = {op_id: executions[op_id] for op_id in hits}
            self._observe(wanted, await self.store.get_many(wanted))

    def _observe(self, executions: dict[str, Execution], fresh: list[Operation]) -> None:
        found = {op.id: op for op in fresh}
        for op_id, execution in executions.items():
            op = found.get(op_id)
            if op is None:
                execution.stop(StopReason.LEASE_LOST)  # deleted under it
            else:
                execution.observe(op)

    async def _wait(self, seen: int, timeout: float) -> None:
        change = asyncio.ensure_future(self.store.wait_for_change(seen, timeout))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({change, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for future in (change, stopping):
            future.cancel()

    async def _drain(self) -> None:
        """Give running operations the shutdown grace, then interrupt them and record how they
        ended. Handlers that cannot be interrupted (plain functions in threads) are waited for,
        leases renewed meanwhile, so their outcome is recorded, not guessed; a second signal to
        the process exits at once and leaves their leases to expire."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(
            set(self._tasks), timeout=self.config.shutdown_grace_seconds
        )
        if not pending:
            return
        for execution in list(self.executions.values()):
            execution.stop(StopReason.SHUTDOWN)
        _, pending = await asyncio.wait(pending, timeout=self.config.shutdown_grace_seconds)
        if pending:
            log.warning(
                "waiting for %d handler(s) that cannot be interrupted: %s "
                "(signal again to exit now; their leases then expire and they are recovered)",
                len(pending),
                ", ".join(sorted(self.executions)),
            )
            await asyncio.wait(pending)
