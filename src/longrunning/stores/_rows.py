"""Operation <-> SQL row mapping shared by the SQL stores, and the SQL each filter field reads.

Dialect-neutral: JSON is text and no driver is imported here. Timestamps are integer microseconds
unless the adapter passes its own `TimeCodec` (PostgreSQL keeps `timestamptz`). Statements,
placeholders and anything dialect-specific belong in the adapters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from longrunning.core.errors import Code
from longrunning.core.filtering import FilterValue
from longrunning.core.json_values import JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.timestamps import from_micros, to_micros

SqlValue = int | float | str | datetime | None
"""What a column holds or a statement binds (a bool binds as an integer, or as a boolean)."""


@dataclass(frozen=True, slots=True)
class TimeCodec:
    """How a dialect stores a timestamp, and reads one back (as an aware UTC datetime)."""

    encode: Callable[[datetime], SqlValue]
    decode: Callable[[Any], datetime]


MICROS = TimeCodec(encode=to_micros, decode=lambda value: from_micros(int(value)))
"""Integer microseconds since the epoch (SQLite)."""
DATETIME = TimeCodec(encode=lambda value: value, decode=lambda value: value.astimezone(UTC))
"""The driver's own timestamp type (PostgreSQL `timestamptz`)."""

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
    "forgotten_at",
    "title",
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


def to_param(value: FilterValue, times: TimeCodec = MICROS) -> SqlValue:
    """A filter value as the columns above store it."""
    if isinstance(value, datetime):
        return times.encode(value)
    if isinstance(value, State | CancelOutcome):
        return value.value
    return value


def _dumps(value: JsonValue | tuple[JsonValue, ...] | dict[str, str]) -> str:
    # Raw UTF-8 rather than \u escapes, so JSON functions see label text exactly as bound.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_row(op: Operation, times: TimeCodec = MICROS) -> tuple[SqlValue, ...]:
    error = op.error

    def _when(value: datetime | None) -> SqlValue:
        return None if value is None else times.encode(value)

    return (
        op.id,
        op.parent,
        op.kind,
        op.state.value,
        times.encode(op.create_time),
        times.encode(op.update_time),
        op.cancellable,
        _when(op.cancel_requested_at),
        None if op.cancel_outcome is None else op.cancel_outcome.value,
        op.progress.percent,
        op.progress.phase,
        _when(op.progress.eta),
        _dumps(op.metadata),
        _dumps(op.request),
        _dumps(op.result),
        None if error is None else int(error.code),
        None if error is None else error.message,
        None if error is None else _dumps(error.details),
        None if error is None else error.severity,
        None if error is None else error.is_user_error,
        _when(op.start_time),
        _when(op.end_time),
        op.attempt,
        op.max_attempts,
        op.idempotent,
        _dumps(op.labels),
        op.request_id,
        op.request_hash,
        op.target,
        op.queue,
        _when(op.deadline),
        _when(op.not_before),
        op.lease_owner,
        op.lease_epoch,
        _when(op.lease_expires_at),
        _when(op.forgotten_at),
        op.title,
        op.version,
    )


_STATES = {state.value: state for state in State}
_OUTCOMES = {outcome.value: outcome for outcome in CancelOutcome}
_decode_json = json.JSONDecoder().decode


def _loads(text: str) -> Any:
    # Most stored objects are empty; listing decodes four per row, so skip the parser for them.
    if text == "{}":
        return {}
    if text == "null":
        return None
    return _decode_json(text)


def from_row(row: Sequence[Any], times: TimeCodec = MICROS) -> Operation:
    # Positional, in COLUMNS order: this runs for every row of every page listed (W5).
    (
        op_id, parent, kind, state, create_time, update_time, cancellable, cancel_requested_at,
        cancel_outcome, progress_percent, progress_phase, progress_eta, metadata, request,
        result, error_code, error_message, error_details, error_severity, error_is_user_error,
        start_time, end_time, attempt, max_attempts, idempotent, labels, request_id,
        request_hash, target, queue, deadline, not_before, lease_owner, lease_epoch,
        lease_expires_at, forgotten_at, title, version,
    ) = row  # fmt: skip
    decode = times.decode
    error = None
    if error_code is not None:
        error = Failure(
            code=Code(error_code),
            message=error_message,
            details=tuple(_loads(error_details)),
            severity=error_severity,
            is_user_error=bool(error_is_user_error),
        )
    return Operation(
        id=op_id,
        parent=parent,
        kind=kind,
        state=_STATES[state],
        create_time=decode(create_time),
        update_time=decode(update_time),
        cancellable=bool(cancellable),
        cancel_requested_at=None if cancel_requested_at is None else decode(cancel_requested_at),
        cancel_outcome=None if cancel_outcome is None else _OUTCOMES[cancel_outcome],
        progress=Progress(
            percent=float(progress_percent),
            phase=progress_phase,
            eta=None if progress_eta is None else decode(progress_eta),
        ),
        metadata=_loads(metadata),
        request=_loads(request),
        result=_loads(result),
        error=error,
        start_time=None if start_time is None else decode(start_time),
        end_time=None if end_time is None else decode(end_time),
        attempt=attempt,
        max_attempts=max_attempts,
        idempotent=bool(idempotent),
        labels=_loads(labels),
        request_id=request_id,
        request_hash=request_hash,
        target=target,
        queue=queue,
        deadline=None if deadline is None else decode(deadline),
        not_before=None if not_before is None else decode(not_before),
        lease_owner=lease_owner,
        lease_epoch=lease_epoch,
        lease_expires_at=None if lease_expires_at is None else decode(lease_expires_at),
        forgotten_at=None if forgotten_at is None else decode(forgotten_at),
        title=title,
        version=version,
    )
