"""The Operation record and its value types. Pure data: no I/O, no asyncio, no third-party imports.

Transitions between states live in `core.lifecycle`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject, JsonValue


class State(StrEnum):
    """Where an operation is in its life. Only the last three are terminal."""

    PENDING = "PENDING"
    """Stored, waiting for a worker."""
    RUNNING = "RUNNING"
    """A worker holds its lease and runs its handler."""
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    """Cancelled, and its handler is proven stopped (or never started)."""

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})


class CancelOutcome(StrEnum):
    """How an operation whose cancel was requested (or whose deadline passed) actually ended."""

    NOT_STARTED = "NOT_STARTED"
    """Cancelled while pending: no handler ever ran."""
    STOPPED_COOPERATIVELY = "STOPPED_COOPERATIVELY"
    """The handler saw the cancellation token (at `checkpoint()`) and stopped."""
    INTERRUPTED = "INTERRUPTED"
    """The handler's asyncio task was cancelled and it stopped."""
    KILLED = "KILLED"
    """The handler's process group was signalled and reaped."""
    WORKER_LOST = "WORKER_LOST"
    """The worker vanished; its lease expired and was fenced, so nothing runs any more."""
    COMPLETED_BEFORE_CANCEL = "COMPLETED_BEFORE_CANCEL"
    """The handler finished (succeeded or failed) before the cancel took effect."""


DEFAULT_SEVERITY = 16
"""Azure SQL's severity for ordinary errors; user errors and system errors alike."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    percent: float = 0.0
    """0 to 100; never goes backwards within one operation."""
    phase: str | None = None
    """Free text naming the current step, e.g. "copying pages"."""
    eta: datetime | None = None
    """Estimated completion time, if the handler can tell."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A structured error, shaped after `google.rpc.Status` plus Azure's severity and user flag."""

    code: Code
    message: str
    details: tuple[JsonValue, ...] = ()
    severity: int = DEFAULT_SEVERITY
    is_user_error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    id: str
    """A UUID, unique across every parent."""
    parent: str
    """The scope the operation lives under, e.g. `projects/p/locations/l`."""
    kind: str
    """The registered handler kind, e.g. `demo.sleep`: the stable name of what it does."""
    state: State
    create_time: datetime
    update_time: datetime
    cancellable: bool = True
    """Whether a running operation of this kind may be cancelled (Azure's `isCancellable`)."""
    cancel_requested_at: datetime | None = None
    cancel_outcome: CancelOutcome | None = None
    progress: Progress = field(default_factory=Progress)
    metadata: JsonObject = field(default_factory=dict)
    request: JsonObject = field(default_factory=dict)
    result: JsonValue = None
    error: Failure | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    attempt: int = 0
    """How many times a worker has claimed it."""
    max_attempts: int = 1
    idempotent: bool = False
    """Safe to run again from the start after its worker was lost (from its kind, at start)."""
    labels: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None
    """The client's idempotency key, unique within the parent."""
    request_hash: str | None = None
    """Fingerprint of the starting parameters, to tell a retry from a reuse of the request id."""
    target: str | None = None
    """The resource it works on; at most one operation runs per target."""
    queue: str = "default"
    deadline: datetime | None = None
    not_before: datetime | None = None
    """Not claimable before this time (retry backoff)."""
    lease_owner: str | None = None
    lease_epoch: int = 0
    """Fencing token: grows by one at every claim, so a stale worker's writes are refused."""
    lease_expires_at: datetime | None = None
    title: str | None = None
    """What it does, for people, e.g. `CREATE DATABASE` (Azure's operationFriendlyName); from
    its kind at start. None on operations stored before titles existed: show the kind then."""
    forgotten_at: datetime | None = None
    """When a client deleted it while it still ran (Google's DeleteOperation): no read shows it
    any more, its work goes on, and it is purged once it ends."""
    version: int = 0
    """Compare-and-set token: grows by one at every stored change."""

    @property
    def name(self) -> str:
        return f"{self.parent}/operations/{self.id}"

    @property
    def display_title(self) -> str:
        return self.title or self.kind

    @property
    def done(self) -> bool:
        return self.state.is_terminal

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None
