"""Operation <-> SQL row mapping shared by the SQL stores, and the SQL each filter field reads.

Dialect-neutral: timestamps are integer microseconds, JSON is text, no driver is imported here.
Statements, placeholders and anything dialect-specific belong in the adapters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from longrunning.core.errors import Code
from longrunning.core.filtering import FilterValue
from longrunning.core.json_values import JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.timestamps import from_micros, to_micros

SqlValue = int | float | str | None
"""What a column holds or a statement binds (a bool binds as an integer)."""

COLUMNS: tuple[str, ...] = (
    "id",
    "parent",
    "kind",
    "state",
    "create_time",
    "update_time",
    "cancellable",
    "cancel_requested_at",
    "cancel_outcome",
    "progress_percent",
    "progress_phase",
    "progress_eta",
    "metadata",
    "request",
    "result",
    "error_code",
    "error_message",
    "error_details",
    "error_severity",
    "error_is_user_error",
    "start_time",
    "end_time",
    "attempt",
    "max_attempts",
    "idempotent",
    "labels",
    "request_id",
    "request_hash",
    "target",
    "queue",
    "deadline",
    "not_before",
    "lease_owner",
    "lease_epoch",
    "lease_expires_at",
    "version",
)
"""Every column of the operations table, in the order `to_row` and `from_row` use."""

SELECT_COLUMNS = ", ".join(COLUMNS)

TERMINAL_STATES = "(" + ", ".join(f"'{s.value}'" for s in State if s.is_terminal) + ")"
"""A literal list, so that partial indexes on terminal rows match the queries that use them."""

ACTIVE_STATES = f"('{State.PENDING.value}', '{State.RUNNING.value}')"

FIELD_EXPRESSIONS: Mapping[str, str] = {
    "name": "(parent || '/operations/' || id)",
    "parent": "parent",
    "kind": "kind",
    "target": "target",
    "queue": "queue",
    "request_id": "request_id",
    "state": "state",
    "cancel_outcome": "cancel_outcome",
    "done": f"(state IN {TERMINAL_STATES})",
    "cancel_requested": "(cancel_requested_at IS NOT NULL)",
    "cancellable": "cancellable",
    "create_time": "create_time",
    "update_time": "update_time",
    "start_time": "start_time",
    "end_time": "end_time",
    "attempt": "attempt",
    "percent": "progress_percent",
    "error.code": "error_code",
}
"""The SQL value each filter field (except `labels`) compares, as `core.filtering.field_value`."""


def to_param(value: FilterValue) -> SqlValue:
    """A filter value as the columns above store it."""
    if isinstance(value, datetime):
        return to_micros(value)
    if isinstance(value, State | CancelOutcome):
        return value.value
    return value


def _micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _time(value: Any) -> datetime | None:
    return None if value is None else from_micros(int(value))


def _dumps(value: JsonValue | tuple[JsonValue, ...] | dict[str, str]) -> str:
    # Raw UTF-8 rather than \u escapes, so JSON functions see label text exactly as bound.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_row(op: Operation) -> tuple[SqlValue, ...]:
    error = op.error
    return (
        op.id,
        op.parent,
        op.kind,
        op.state.value,
        to_micros(op.create_time),
        to_micros(op.update_time),
        op.cancellable,
        _micros(op.cancel_requested_at),
        None if op.cancel_outcome is None else op.cancel_outcome.value,
        op.progress.percent,
        op.progress.phase,
        _micros(op.progress.eta),
        _dumps(op.metadata),
        _dumps(op.request),
        _dumps(op.result),
        None if error is None else int(error.code),
        None if error is None else error.message,
        None if error is None else _dumps(error.details),
        None if error is None else error.severity,
        None if error is None else error.is_user_error,
        _micros(op.start_time),
        _micros(op.end_time),
        op.attempt,
        op.max_attempts,
        op.idempotent,
        _dumps(op.labels),
        op.request_id,
        op.request_hash,
        op.target,
        op.queue,
        _micros(op.deadline),
        _micros(op.not_before),
        op.lease_owner,
        op.lease_epoch,
        _micros(op.lease_expires_at),
        op.version,
    )


def from_row(row: Sequence[Any]) -> Operation:
    v = dict(zip(COLUMNS, row, strict=True))
    error = None
    if v["error_code"] is not None:
        error = Failure(
            code=Code(v["error_code"]),
            message=v["error_message"],
            details=tuple(json.loads(v["error_details"])),
            severity=v["error_severity"],
            is_user_error=bool(v["error_is_user_error"]),
        )
    create_time = _time(v["create_time"])
    update_time = _time(v["update_time"])
    assert create_time is not None and update_time is not None
    return Operation(
        id=v["id"],
        parent=v["parent"],
        kind=v["kind"],
        state=State(v["state"]),
        create_time=create_time,
        update_time=update_time,
        cancellable=bool(v["cancellable"]),
        cancel_requested_at=_time(v["cancel_requested_at"]),
        cancel_outcome=None if v["cancel_outcome"] is None else CancelOutcome(v["cancel_outcome"]),
        progress=Progress(
            percent=float(v["progress_percent"]),
            phase=v["progress_phase"],
            eta=_time(v["progress_eta"]),
        ),
        metadata=json.loads(v["metadata"]),
        request=json.loads(v["request"]),
        result=json.loads(v["result"]),
        error=error,
        start_time=_time(v["start_time"]),
        end_time=_time(v["end_time"]),
        attempt=v["attempt"],
        max_attempts=v["max_attempts"],
        idempotent=bool(v["idempotent"]),
        labels=json.loads(v["labels"]),
        request_id=v["request_id"],
        request_hash=v["request_hash"],
        target=v["target"],
        queue=v["queue"],
        deadline=_time(v["deadline"]),
        not_before=_time(v["not_before"]),
        lease_owner=v["lease_owner"],
        lease_epoch=v["lease_epoch"],
        lease_expires_at=_time(v["lease_expires_at"]),
        version=v["version"],
    )
