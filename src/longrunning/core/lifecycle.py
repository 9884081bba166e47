"""The lifecycle rules of an operation, as pure functions from one Operation to the next.

Every state change anywhere in longrunning goes through one of these functions; stores only
persist their results atomically. Terminal states never change. No I/O here.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from longrunning.core.errors import (
    Code,
    InvalidTransition,
    LeaseLost,
    NotCancellable,
    OperationAlreadyExists,
)
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State

CANCELLED_MESSAGE = "Operation was cancelled."


def _require(op: Operation, *states: State, action: str) -> None:
    if op.state not in states:
        raise InvalidTransition(f"cannot {action} operation {op.id}: it is {op.state.value}")


def check_same_request(new: Operation, stored: Operation) -> None:
    """Raise OperationAlreadyExists when `stored` holds `new`'s request id but was started with
    other parameters (a request id names one request, AIP-155)."""
    if stored.id != new.id and stored.request_hash != new.request_hash:
        raise OperationAlreadyExists(
            f"request id {new.request_id!r} was already used for operation {stored.name} "
            "with different parameters"
        )


def claim(op: Operation, *, owner: str, lease_until: datetime, now: datetime) -> Operation:
    """A worker takes a pending operation; the epoch grows so that older owners are fenced."""
    _require(op, State.PENDING, action="claim")
    if op.cancel_requested:
        raise InvalidTransition(f"cannot claim operation {op.id}: its cancel was requested")
    return dataclasses.replace(
        op,
        state=State.RUNNING,
        attempt=op.attempt + 1,
        start_time=op.start_time or now,
        lease_owner=owner,
        lease_epoch=op.lease_epoch + 1,
        lease_expires_at=lease_until,
        not_before=None,
        update_time=now,
    )


def check_fence(op: Operation, *, owner: str, epoch: int) -> None:
    """Refuse a worker's write unless it still holds the lease it claimed."""

    if op.state is not State.RUNNING or op.lease_owner != owner or op.lease_epoch != epoch:
        raise LeaseLost(f"worker {owner} no longer holds operation {op.id} (epoch {epoch})")


def renew_lease(op: Operation, *, lease_until: datetime) -> Operation:
    """Extend the lease. Not a visible change: `update_time` stays (it is the user's view)."""
    _require(op, State.RUNNING, action="renew the lease of")
    return dataclasses.replace(op, lease_expires_at=lease_until)


def report_progress(op: Operation, progress: Progress, *, now: datetime) -> Operation:
    """Record progress; the percentage is clamped to 0..100 and never goes backwards."""
    _require(op, State.RUNNING, action="report progress on")
    percent = max(op.progress.percent, min(100.0, max(0.0, progress.percent)))
    merged = Progress(
        percent=percent,
        phase=progress.phase if progress.phase is not None else op.progress.phase,
        eta=progress.eta if progress.eta is not None else op.progress.eta,
    )
    return dataclasses.replace(op, progress=merged, update_time=now)


def update_metadata(op: Operation, values: JsonObject, *, now: datetime) -> Operation:
    """Merge handler-provided keys into the operation's metadata (top-level keys replace)."""
    _require(op, State.RUNNING, action="update the metadata of")
    return dataclasses.replace(op, metadata={**op.metadata, **values}, update_time=now)


def _end(op: Operation, *, state: State, now: datetime, **changes: object) -> Operation:
    return dataclasses.replace(
        op,
        state=state,
        end_time=now,
        update_time=now,
        lease_owner=None,
        lease_expires_at=None,
        **changes,  # type: ignore[arg-type]
    )


def succeed(op: Operation, result: JsonValue, *, now: datetime) -> Operation:
    """The handler returned. If a cancel was pending, it lost the race: say so."""
    _require(op, State.RUNNING, action="complete")
    return _end(
        op,
        state=State.SUCCEEDED,
        now=now,
        result=result,
        progress=dataclasses.replace(op.progress, percent=100.0, eta=None),
        cancel_outcome=CancelOutcome.COMPLETED_BEFORE_CANCEL if op.cancel_requested else None,
    )


def fail(
    op: Operation, failure: Failure, *, now: datetime, outcome: CancelOutcome | None = None
) -> Operation:
    """The handler failed (or was stopped for its deadline, with `outcome` saying how)."""
    _require(op, State.RUNNING, action="fail")
    if outcome is None and op.cancel_requested:
        outcome = CancelOutcome.COMPLETED_BEFORE_CANCEL
    return _end(op, state=State.FAILED, now=now, error=failure, cancel_outcome=outcome)


def request_cancel(op: Operation, *, now: datetime) -> Operation:
    """Ask for cancellation. Phase one of the two-phase cancel.

    A finished operation is returned unchanged (a successful no-op). A pending one is cancelled
    at once, since no handler runs. A running one only gets its flag set: it becomes CANCELLED
    in `confirm_cancelled`, once its handler has really stopped.
    """
    if op.state.is_terminal or op.cancel_requested:
        return op
    if op.state is State.PENDING:
        return _end(
            op,
            state=State.CANCELLED,
            now=now,
            cancel_requested_at=now,
            cancel_outcome=CancelOutcome.NOT_STARTED,
            error=Failure(code=Code.CANCELLED, message=CANCELLED_MESSAGE),
        )
    if not op.cancellable:
        raise NotCancellable(
            f"operation {op.id} of kind {op.kind} cannot be cancelled once running"
        )
    return dataclasses.replace(op, cancel_requested_at=now, update_time=now)


def confirm_cancelled(op: Operation, outcome: CancelOutcome, *, now: datetime) -> Operation:
    """Phase two: the handler has stopped because of the cancel request."""
    _require(op, State.RUNNING, action="confirm the cancellation of")
    if not op.cancel_requested:
        raise InvalidTransition(f"operation {op.id} was not asked to cancel")
    return _end(
        op,
        state=State.CANCELLED,
        now=now,
        cancel_outcome=outcome,
        error=Failure(code=Code.CANCELLED, message=CANCELLED_MESSAGE),
    )


def retry(op: Operation, *, not_before: datetime, now: datetime) -> Operation:
    """Put a running operation back in the queue for another attempt."""
    _require(op, State.RUNNING, action="retry")
    return dataclasses.replace(
        op,
        state=State.PENDING,
        lease_owner=None,
        lease_expires_at=None,
        not_before=not_before,
        update_time=now,
    )


def can_retry(op: Operation) -> bool:
    return op.attempt < op.max_attempts and not op.cancel_requested


def handler_failed(
    op: Operation, failure: Failure, *, retryable: bool, backoff_seconds: float, now: datetime
) -> Operation:
    """The handler raised: retry after an exponential backoff if allowed and left, else fail."""
    if retryable and can_retry(op):
        delay = timedelta(seconds=backoff_seconds * 2 ** (op.attempt - 1))
        return retry(op, not_before=now + delay, now=now)
    return fail(op, failure, now=now)


def handler_stopped(
    op: Operation,
    how: CancelOutcome,
    *,
    deadline_passed: bool,
    shutting_down: bool,
    now: datetime,
) -> Operation:
    """The handler stopped because it was told to (`how` says how). What that makes of it:

    a requested cancel wins (CANCELLED); else a passed deadline (FAILED, DEADLINE_EXCEEDED);
    else a worker shutdown hands it back (retried if idempotent with attempts left, else FAILED,
    UNAVAILABLE); else the handler stopped itself (FAILED, CANCELLED code).
    """
    if op.cancel_requested:
        return confirm_cancelled(op, how, now=now)
    if deadline_passed:
        failure = Failure(code=Code.DEADLINE_EXCEEDED, message="deadline exceeded")
        return fail(op, failure, now=now, outcome=how)
    if shutting_down:
        if op.idempotent and can_retry(op):
            return retry(op, not_before=now, now=now)
        failure = Failure(code=Code.UNAVAILABLE, message="the worker shut down while it ran")
        return fail(op, failure, now=now)
    return fail(op, Failure(code=Code.CANCELLED, message="the handler cancelled itself"), now=now)


def recover_expired_lease(op: Operation, *, now: datetime) -> Operation:
    """The worker holding the lease is gone: retry, or fail with UNAVAILABLE, or end a cancel.

    Only valid once the lease has expired; the epoch stays, so the lost worker stays fenced off
    even if it wakes up.
    """
    _require(op, State.RUNNING, action="recover")
    if op.cancel_requested:
        return confirm_cancelled(op, CancelOutcome.WORKER_LOST, now=now)
    if op.idempotent and can_retry(op):
        # A lost worker is not the handler's failure: run it again at once, without backoff.
        return retry(op, not_before=now, now=now)
    return fail(
        op,
        Failure(
            code=Code.UNAVAILABLE,
            message=f"the worker running this operation was lost (attempt {op.attempt})",
        ),
        now=now,
    )


def expire_pending(op: Operation, *, now: datetime) -> Operation:
    """A pending operation passed its deadline before any worker took it."""
    _require(op, State.PENDING, action="expire")
    return _end(
        op,
        state=State.FAILED,
        now=now,
        error=Failure(code=Code.DEADLINE_EXCEEDED, message="deadline passed before it started"),
    )


def forget(op: Operation, *, now: datetime) -> Operation:
    """A client is no longer interested in a live operation: hide it, and let its work go on.

    Its request id is released, so that starting again with that id makes a new operation
    rather than returning one nobody can read. A finished operation is deleted instead.
    """
    _require(op, State.PENDING, State.RUNNING, action="forget")
    return dataclasses.replace(op, forgotten_at=op.forgotten_at or now, request_id=None)


def invariant_violations(op: Operation) -> list[str]:
    """Every rule a stored operation must satisfy; empty when it is sound (for tests and checks)."""
    problems: list[str] = []
    if not 0.0 <= op.progress.percent <= 100.0:
        problems.append("percent out of range")
    if op.state.is_terminal:
        if op.end_time is None:
            problems.append("terminal without end time")
        if op.lease_owner is not None:
            problems.append("terminal but still leased")
    elif op.end_time is not None:
        problems.append("end time on a live operation")
    if op.state is State.RUNNING and (op.lease_owner is None or op.lease_expires_at is None):
        problems.append("running without a lease")
    if op.state is State.CANCELLED and (
        op.cancel_outcome is None or op.error is None or op.error.code is not Code.CANCELLED
    ):
        problems.append("cancelled without outcome or CANCELLED error")
    if op.state is State.SUCCEEDED and op.error is not None:
        problems.append("succeeded with an error")
    if op.state is State.FAILED and op.error is None:
        problems.append("failed without an error")
    if op.cancel_outcome is not None and not op.state.is_terminal:
        problems.append("cancel outcome on a live operation")
    return problems
