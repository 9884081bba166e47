"""One claimed operation on a worker: runs its handler, coalesces its progress, climbs the cancel
ladder, and writes its end. Every write is fenced by the lease epoch of the claim.

The ladder: the cancellation token (`checkpoint()` raises); after the kind's cooperative grace,
cancellation of the handler's asyncio task, or for a process-isolated handler SIGTERM to its
process group and SIGKILL after the kill grace. A plain handler in a thread cannot be
interrupted, so it is waited for: an operation is never reported stopped while it still runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor
from enum import Enum
from typing import cast

from longrunning.core import lifecycle
from longrunning.core.errors import (
    Code,
    LeaseLost,
    LongrunningError,
    OperationNotFound,
    StoreConflict,
    StoreError,
)
from longrunning.core.json_values import JsonObject, JsonValue, check_json, storable_text
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress
from longrunning.core.ports import Clock, OperationStore
from longrunning.engine.config import EngineConfig
from longrunning.engine.context import OperationCancelled, OperationContext, OperationFailed
from longrunning.engine.isolation import ProcessKilled, ProcessRun
from longrunning.engine.kinds import BlockingHandler, OperationKind

log = logging.getLogger("longrunning.worker")

_CAS_ATTEMPTS = 50
Outcome = Callable[[Operation], Operation]
"""How the handler ended, as a transition of the freshest stored operation."""


class StopReason(Enum):
    CANCEL = "cancel"
    DEADLINE = "deadline"
    SHUTDOWN = "shutdown"
    LEASE_LOST = "lease lost"


class Execution:
    def __init__(
        self,
        op: Operation,
        kind: OperationKind,
        *,
        store: OperationStore,
        clock: Clock,
        config: EngineConfig,
        executor: Executor,
    ) -> None:
        assert op.lease_owner is not None
        self.op = op
        self.kind = kind
        self.owner = op.lease_owner
        self.epoch = op.lease_epoch
        self._store = store
        self._clock = clock
        self._config = config
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self.context = OperationContext(
            op, loop=self._loop, on_progress=self._on_progress, on_metadata=self._on_metadata
        )
        self.stop_reason: StopReason | None = None
        self._interrupted = False
        self._handler_task: asyncio.Task[JsonValue] | None = None
        self._process: ProcessRun | None = None
        self._escalation: asyncio.TimerHandle | None = None
        self._pending_progress: Progress | None = None
        self._pending_metadata: JsonObject = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._last_progress_write = 0.0
        self._flush_scheduled = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._write_lock = asyncio.Lock()

    @property
    def op_id(self) -> str:
        return self.op.id

    async def run(self) -> None:
        """Run the handler to its end and record the outcome. Never raises for handler errors."""
        outcome = await self.run_handler()
        if outcome is not None:
            await self.record(outcome)

    async def run_handler(self) -> Outcome | None:
        """Run the handler to its end; return the outcome to record, or None when this claim
        lost its lease (the new owner records it). Never raises for handler errors."""
        self._handler_task = asyncio.create_task(self._invoke(), name=f"op-{self.op.id}")
        outcome: Outcome
        try:
            result = await self._handler_task
            checked = check_json(result, what="the handler's result")
            outcome = self._succeeded(checked)
        except OperationCancelled:
            outcome = self._stopped(CancelOutcome.STOPPED_COOPERATIVELY)
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            outcome = self._stopped(CancelOutcome.INTERRUPTED)
        except ProcessKilled:
            outcome = self._stopped(CancelOutcome.KILLED)
        except OperationFailed as exc:
            outcome = self._failed(exc.failure, retryable=exc.retryable)
        except LongrunningError as exc:
            failure = Failure(code=exc.code, message=storable_text(exc.message), is_user_error=True)
            outcome = self._failed(failure, retryable=False)
        except Exception as exc:
            log.exception("operation %s (%s) raised", self.op.id, self.kind.name)
            message = storable_text(f"{type(exc).__name__}: {exc}")
            failure = Failure(code=Code.UNKNOWN, message=message)
            outcome = self._failed(failure, retryable=True)
        finally:
            if self._escalation is not None:
                self._escalation.cancel()
            # Progress still pending goes with the outcome; a flush timer left running would
            # start a write after the execution, perhaps after its worker, has ended.
            if self._flush_timer is not None:
                self._flush_timer.cancel()
        if self.stop_reason is StopReason.LEASE_LOST:
            log.warning("operation %s: lease lost; its new owner records the outcome", self.op.id)
            return None
        return outcome

    async def record(self, outcome: Outcome) -> None:
        """Write the outcome, retrying while the store is unavailable: the execution stays
        registered meanwhile, so its lease keeps being renewed and nobody runs it again."""
        delay, fell_back = 0.05, False
        while True:
            try:
                await self._write(outcome, flush_pending=True)
                return
            except (LeaseLost, OperationNotFound):
                log.warning("operation %s: lease lost before its outcome was written", self.op.id)
                return
            except StoreError as exc:  # includes StoreConflict after many attempts
                log.warning("operation %s: outcome not written yet (%s); retrying", self.op.id, exc)
            except Exception:
                # A value the store cannot keep (a bug in the handler's progress or result):
                # record the failure itself rather than nothing; once.
                log.exception("operation %s: its outcome cannot be stored", self.op.id)
                if fell_back:
                    return
                fell_back = True
                self._pending_progress, self._pending_metadata = None, {}
                failure = Failure(
                    code=Code.INTERNAL, message="the handler's outcome could not be stored"
                )
                outcome = self._failed(failure, retryable=False)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _invoke(self) -> JsonValue:
        handler = self.kind.handler
        if self.kind.process_isolated:
            self._process = ProcessRun(
                handler,
                self.op,
                on_progress=self._on_progress,
                on_metadata=self._on_metadata,
                kill_grace=self.kind.kill_grace_seconds,
            )
            if self.stop_reason is not None:
                self._process.request_stop()
            return await self._process.run()
        if self.kind.blocking:
            blocking = cast(BlockingHandler, handler)
            return await self._loop.run_in_executor(self._executor, blocking, self.context)
        result = handler(self.context)
        assert asyncio.iscoroutine(result) or isinstance(result, asyncio.Future)
        return await result  # type: ignore[no-any-return]

    # The outcome, as a transition of the freshest stored operation.

    def _succeeded(self, result: JsonValue) -> Outcome:
        # Even past a cancel request or the deadline: it finished, and the truth is recorded
        # (lifecycle marks a pending cancel as COMPLETED_BEFORE_CANCEL).
        return lambda op: lifecycle.succeed(op, result, now=self._clock.now())

    def _stopped(self, how: CancelOutcome) -> Outcome:
        return lambda op: lifecycle.handler_stopped(
            op,
            how,
            deadline_passed=self.stop_reason is StopReason.DEADLINE,
            shutting_down=self.stop_reason is StopReason.SHUTDOWN,
            now=self._clock.now(),
        )

    def _failed(self, failure: Failure, *, retryable: bool) -> Outcome:
        return lambda op: lifecycle.handler_failed(
            op,
            failure,
            retryable=retryable,
            backoff_seconds=self.kind.retry_backoff_seconds,
            now=self._clock.now(),
        )

    # The cancel ladder.

    def stop(self, reason: StopReason) -> None:
        """Ask the handler to stop; escalate to task cancellation after the grace period."""
        if self.stop_reason is not None and reason is not StopReason.LEASE_LOST:
            return
        self.stop_reason = reason
        self.context.request_stop()
        if self._process is not None:
            self._process.request_stop()
        if reason in (StopReason.LEASE_LOST, StopReason.SHUTDOWN):
            self._interrupt()
        elif self._escalation is None:
            self._escalation = self._loop.call_later(
                self.kind.cooperative_grace_seconds, self._interrupt
            )

    def _interrupt(self) -> None:
        task = self._handler_task
        if task is None or task.done():
            return
        if self._process is not None:
            self._process.signal_group(signal.SIGTERM)
            self._loop.call_later(self.kind.kill_grace_seconds, self._kill)
        elif not self.kind.blocking:
            self._interrupted = True
            task.cancel()

    def _kill(self) -> None:
        if self._process is not None and self._handler_task and not self._handler_task.done():
            self._process.signal_group(signal.SIGKILL)

    def observe(self, fresh: Operation) -> None:
        """React to a freshly read copy of the operation: fenced off, cancelled, or overdue."""
        if fresh.lease_owner != self.owner or fresh.lease_epoch != self.epoch or fresh.done:
            self.stop(StopReason.LEASE_LOST)
            return
        if fresh.version > self.op.version:
            self.op = fresh
        if fresh.cancel_requested:
            self.stop(StopReason.CANCEL)
        elif fresh.deadline is not None and self._clock.now() >= fresh.deadline:
            self.stop(StopReason.DEADLINE)

    # Fenced writes.

    async def _write(
        self, change: Callable[[Operation], Operation], *, flush_pending: bool = False
    ) -> Operation:
        """A fenced write: re-read on conflict, and refuse unless this claim still holds."""
        async with self._write_lock:
            op = self.op
            progress = self._pending_progress if flush_pending else None
            metadata = dict(self._pending_metadata) if flush_pending else {}
            for _ in range(_CAS_ATTEMPTS):
                lifecycle.check_fence(op, owner=self.owner, epoch=self.epoch)
                new = op
                if progress is not None:
                    new = lifecycle.report_progress(new, progress, now=self._clock.now())
                if metadata:
                    new = lifecycle.update_metadata(new, metadata, now=self._clock.now())
                new = change(new)
                try:
                    self.op = await self._store.replace(new, expected_version=op.version)
                except StoreConflict:
                    op = await self._store.get(op.id)
                    continue
                if progress is not None and self._pending_progress is progress:
                    self._pending_progress = None
                for key, value in metadata.items():
                    if self._pending_metadata.get(key) is value:
                        del self._pending_metadata[key]
                return self.op
            raise StoreConflict(f"operation {op.id} kept changing under its worker")

    # Coalesced progress and metadata: at most one write per progress interval.

    def _on_progress(self, progress: Progress) -> None:
        pending = self._pending_progress
        if pending is not None:
            progress = Progress(
                percent=max(pending.percent, progress.percent),
                phase=progress.phase if progress.phase is not None else pending.phase,
                eta=progress.eta if progress.eta is not None else pending.eta,
            )
        self._pending_progress = progress
        self._schedule_flush()

    def _on_metadata(self, values: JsonObject) -> None:
        self._pending_metadata.update(values)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        wait = self._last_progress_write + self._config.progress_interval_seconds - time.monotonic()
        self._flush_timer = self._loop.call_later(max(wait, 0.0), self._start_flush)

    def _start_flush(self) -> None:
        task = self._loop.create_task(self._flush())
        self._flushes.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        self._flush_scheduled = False
        self._last_progress_write = time.monotonic()
        nothing = self._pending_progress is None and not self._pending_metadata
        if nothing or self.op.done:
            return
        try:
            await self._write(lambda op: op, flush_pending=True)
        except (LeaseLost, OperationNotFound):
            if not self.op.done:  # the outcome may have been written meanwhile: not a loss
                self.stop(StopReason.LEASE_LOST)
        except LongrunningError as exc:
            log.warning("operation %s: progress not written (%s)", self.op.id, exc)
