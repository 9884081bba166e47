"""The lifecycle rules, one by one, as pure functions (no store, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import Code, InvalidTransition, LeaseLost, NotCancellable
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.testing.factories import make_operation

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=5)
BOOM = Failure(code=Code.INTERNAL, message="boom")


def running(**overrides: object) -> Operation:
    pending = make_operation(now=T0, **overrides)  # type: ignore[arg-type]
    return lifecycle.claim(pending, owner="w", lease_until=T0 + timedelta(seconds=10), now=T0)


def test_claim_starts_a_pending_operation_under_a_new_epoch() -> None:
    op = running()
    assert (op.state, op.attempt, op.lease_owner, op.lease_epoch) == (State.RUNNING, 1, "w", 1)
    assert op.start_time == T0
    assert lifecycle.invariant_violations(op) == []


def test_progress_is_clamped_and_never_goes_backwards() -> None:
    op = lifecycle.report_progress(running(), Progress(percent=40, phase="a"), now=LATER)
    op = lifecycle.report_progress(op, Progress(percent=10), now=LATER)
    assert (op.progress.percent, op.progress.phase) == (40, "a")
    op = lifecycle.report_progress(op, Progress(percent=250), now=LATER)
    assert op.progress.percent == 100


def test_cancelling_a_finished_operation_returns_it_unchanged() -> None:
    done = lifecycle.succeed(running(), {"ok": True}, now=LATER)
    assert lifecycle.request_cancel(done, now=LATER) is done


def test_cancelling_a_pending_operation_cancels_it_at_once() -> None:
    op = lifecycle.request_cancel(make_operation(now=T0), now=LATER)
    assert (op.state, op.cancel_outcome) == (State.CANCELLED, CancelOutcome.NOT_STARTED)
    assert op.error is not None and op.error.code is Code.CANCELLED


def test_cancelling_a_running_operation_only_sets_the_flag() -> None:
    op = lifecycle.request_cancel(running(), now=LATER)
    assert (op.state, op.cancel_requested_at) == (State.RUNNING, LATER)


def test_cancelling_a_running_non_cancellable_operation_is_refused() -> None:
    with pytest.raises(NotCancellable):
        lifecycle.request_cancel(running(cancellable=False), now=LATER)


def test_completion_after_a_cancel_request_says_it_completed_first() -> None:
    requested = lifecycle.request_cancel(running(), now=LATER)
    done = lifecycle.succeed(requested, None, now=LATER)
    assert (done.state, done.cancel_outcome) == (
        State.SUCCEEDED,
        CancelOutcome.COMPLETED_BEFORE_CANCEL,
    )
    failed = lifecycle.fail(requested, BOOM, now=LATER)
    assert (failed.state, failed.cancel_outcome) == (
        State.FAILED,
        CancelOutcome.COMPLETED_BEFORE_CANCEL,
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda op: lifecycle.succeed(op, 1, now=LATER),
        lambda op: lifecycle.fail(op, BOOM, now=LATER),
        lambda op: lifecycle.report_progress(op, Progress(percent=1), now=LATER),
        lambda op: lifecycle.claim(op, owner="x", lease_until=LATER, now=LATER),
        lambda op: lifecycle.retry(op, not_before=LATER, now=LATER),
        lambda op: lifecycle.confirm_cancelled(op, CancelOutcome.INTERRUPTED, now=LATER),
    ],
)
def test_a_terminal_operation_never_changes(change: object) -> None:
    done = lifecycle.succeed(running(), "r", now=LATER)
    with pytest.raises(InvalidTransition):
        change(done)  # type: ignore[operator]


def test_fence_refuses_another_owner_and_an_older_epoch() -> None:
    op = running()
    lifecycle.check_fence(op, owner="w", epoch=1)
    with pytest.raises(LeaseLost):
        lifecycle.check_fence(op, owner="other", epoch=1)
    with pytest.raises(LeaseLost):
        lifecycle.check_fence(op, owner="w", epoch=0)


def test_handler_failures_retry_with_doubling_backoff_then_fail() -> None:
    op = running(max_attempts=3)
    first = lifecycle.handler_failed(op, BOOM, retryable=True, backoff_seconds=2, now=LATER)
    assert (first.state, first.not_before) == (State.PENDING, LATER + timedelta(seconds=2))
    second = lifecycle.claim(first, owner="w", lease_until=LATER, now=LATER)
    again = lifecycle.handler_failed(second, BOOM, retryable=True, backoff_seconds=2, now=LATER)
    assert again.not_before == LATER + timedelta(seconds=4)
    assert (
        lifecycle.handler_failed(op, BOOM, retryable=False, backoff_seconds=2, now=LATER).state
        is State.FAILED
    )
    last = running(max_attempts=1)
    assert (
        lifecycle.handler_failed(last, BOOM, retryable=True, backoff_seconds=2, now=LATER).state
        is State.FAILED
    )


def test_a_stopped_handler_ends_by_the_reason_it_was_stopped() -> None:
    how = CancelOutcome.STOPPED_COOPERATIVELY
    stop = lifecycle.handler_stopped
    cancelled = stop(
        lifecycle.request_cancel(running(), now=LATER),
        how,
        deadline_passed=True,
        shutting_down=True,
        now=LATER,
    )
    assert (cancelled.state, cancelled.cancel_outcome) == (State.CANCELLED, how)
    late = stop(running(), how, deadline_passed=True, shutting_down=False, now=LATER)
    assert late.error is not None and late.error.code is Code.DEADLINE_EXCEEDED
    assert late.cancel_outcome is how
    handed_back = stop(
        running(idempotent=True, max_attempts=2),
        how,
        deadline_passed=False,
        shutting_down=True,
        now=LATER,
    )
    assert handed_back.state is State.PENDING
    dropped = stop(running(), how, deadline_passed=False, shutting_down=True, now=LATER)
    assert dropped.error is not None and dropped.error.code is Code.UNAVAILABLE


def test_lost_worker_recovery_retries_only_idempotent_operations_with_attempts_left() -> None:
    assert (
        lifecycle.recover_expired_lease(running(idempotent=True, max_attempts=2), now=LATER).state
        is State.PENDING
    )
    lost = lifecycle.recover_expired_lease(running(idempotent=False, max_attempts=2), now=LATER)
    assert lost.error is not None and lost.error.code is Code.UNAVAILABLE
    cancelled = lifecycle.recover_expired_lease(
        lifecycle.request_cancel(running(), now=LATER), now=LATER
    )
    assert cancelled.cancel_outcome is CancelOutcome.WORKER_LOST


def test_invariant_check_catches_an_unsound_record() -> None:
    import dataclasses

    broken = dataclasses.replace(running(), state=State.SUCCEEDED)
    assert "terminal without end time" in lifecycle.invariant_violations(broken)
