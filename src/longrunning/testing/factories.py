"""Builders for Operation values in tests: sensible defaults, any field overridable.

Pure construction: no store, no clock state, no lifecycle checks (build invalid ones on purpose).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import TypedDict, Unpack

from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State

DEFAULT_PARENT = "projects/test/locations/local"
DEFAULT_KIND = "demo.sleep"


class OperationFields(TypedDict, total=False):
    """Every field of `Operation`, each optional: what `make_operation` accepts as overrides."""

    id: str
    parent: str
    kind: str
    state: State
    create_time: datetime
    update_time: datetime
    cancellable: bool
    cancel_requested_at: datetime | None
    cancel_outcome: CancelOutcome | None
    progress: Progress
    metadata: JsonObject
    request: JsonObject
    result: JsonValue
    error: Failure | None
    start_time: datetime | None
    end_time: datetime | None
    attempt: int
    max_attempts: int
    idempotent: bool
    labels: dict[str, str]
    request_id: str | None
    request_hash: str | None
    target: str | None
    queue: str
    deadline: datetime | None
    not_before: datetime | None
    lease_owner: str | None
    lease_epoch: int
    lease_expires_at: datetime | None
    forgotten_at: datetime | None
    title: str | None
    version: int


def make_operation(
    *, now: datetime | None = None, **overrides: Unpack[OperationFields]
) -> Operation:
    """A PENDING `demo.sleep` operation under `DEFAULT_PARENT` with a fresh UUID4 id, created
    and updated at `now` (default: the current UTC time), with `overrides` applied."""
    at = now if now is not None else datetime.now(UTC)
    base = Operation(
        id=str(uuid.uuid4()),
        parent=DEFAULT_PARENT,
        kind=DEFAULT_KIND,
        state=State.PENDING,
        create_time=at,
        update_time=at,
    )
    return dataclasses.replace(base, **overrides)
