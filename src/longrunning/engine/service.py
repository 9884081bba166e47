"""OperationService: start, get, list, cancel, delete, wait and watch. The one API every face calls.

It validates input, applies `core.lifecycle` and persists through the store port. It never runs
handlers (workers do) and never imports a store adapter or a wire format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from longrunning.core import lifecycle
from longrunning.core.errors import (
    FailedPrecondition,
    InvalidRequest,
    LongrunningError,
    OperationNotFound,
    StoreConflict,
)
from longrunning.core.json_values import JsonObject, check_json_object, check_text
from longrunning.core.listing import OperationQuery, Page
from longrunning.core.operation import Operation, State
from longrunning.core.ports import Clock, NewOperation, OperationStore
from longrunning.engine.config import SystemClock
from longrunning.engine.kinds import ConflictPolicy, HandlerRegistry
from longrunning.engine.signals import CancelSignals

DEFAULT_PARENT = "projects/local/locations/local"
MAX_WAIT_SECONDS = 300.0
MAX_BATCH_START = 1000
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}"
_PARENT = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:~-]{1,128}")
_CAS_ATTEMPTS = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRequest:
    kind: str
    parent: str = DEFAULT_PARENT
    request: JsonObject = field(default_factory=dict)
    request_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    queue: str = "default"
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Started:
    operation: Operation
    created: bool
    """False when the request id matched an earlier start: the same operation is returned."""


def check_operation_id(op_id: str) -> str:
    """Operation ids are canonical lowercase UUIDs; anything else is rejected before the store."""
    try:
        canonical = str(uuid.UUID(op_id))
    except ValueError:
        canonical = ""
    if canonical != op_id:
        shown = op_id if len(op_id) <= 80 else op_id[:77] + "..."
        raise InvalidRequest(
            f"operation id {shown!r} is not a lowercase UUID", reason="INVALID_OPERATION_ID"
        )
    return op_id


def check_queue(queue: str) -> str:
    if not _LABEL_KEY.fullmatch(queue):
        raise InvalidRequest(
            f"queue name {queue[:100]!r} is not valid: 1 to 63 of [a-z0-9_.-], starting a-z",
            reason="INVALID_QUEUE",
        )
    return queue


def check_parent(parent: str) -> str:
    if len(parent) > 1024 or not _PARENT.fullmatch(parent):
        raise InvalidRequest(
            f"parent {parent[:100]!r} is not a resource name like projects/p/locations/l",
            reason="INVALID_PARENT",
        )
    segments = parent.split("/")
    if len(segments) % 2:
        raise InvalidRequest(
            f"parent {parent!r} must be collection/id pairs (an even number of segments)",
            reason="INVALID_PARENT",
        )
    return parent


def _check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    if len(labels) > 64:
        raise InvalidRequest("at most 64 labels", reason="INVALID_LABELS")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
            raise InvalidRequest(
                f"label key {key!r} must match [a-z][a-z0-9_.-]{{0,62}}", reason="INVALID_LABELS"
            )
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidRequest(
                f"label {key!r} must be a string of at most 256 characters",
                reason="INVALID_LABELS",
            )
        check_text(value, what=f"label {key!r}")
    return dict(labels)


def _fingerprint(start: StartRequest, target: str | None, timeout: float | None) -> str:
    body = json.dumps(
        [start.kind, start.request, dict(start.labels), target, start.queue, timeout],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _started(new: Operation, stored: Operation) -> Started:
    lifecycle.check_same_request(new, stored)
    return Started(stored, created=stored.id == new.id)


def _visible(op: Operation) -> Operation:
    """The operation without what changes on every lease renewal, which watchers need not see."""
    return dataclasses.replace(op, version=0, lease_expires_at=None)


class OperationService:
    def __init__(
        self,
        store: OperationStore,
        registry: HandlerRegistry,
        *,
        clock: Clock | None = None,
        signals: CancelSignals | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self.signals = signals or CancelSignals()

    async def start(self, start: StartRequest) -> Started:
        """Store a new PENDING operation (or return the one its request id already made)."""
        new = self._new_operation(start)
        stored = await self.store.insert(new.op, exclusive_target=new.exclusive_target)
        return _started(new.op, stored)

    async def start_many(self, starts: Sequence[StartRequest]) -> list[Started]:
        """Start every request, all or none, in one store transaction (ADR 0027). A request
        that is not valid fails the whole batch, its message naming its position."""
        if not 1 <= len(starts) <= MAX_BATCH_START:
            raise InvalidRequest(
                f"a batch holds 1 to {MAX_BATCH_START} requests, not {len(starts)}",
                reason="INVALID_BATCH_SIZE",
            )
        new: list[NewOperation] = []
        for position, start in enumerate(starts):
            try:
                new.append(self._new_operation(start))
            except LongrunningError as exc:
                exc.message = f"requests[{position}]: {exc.message}"
                exc.args = (exc.message,)
                exc.metadata.setdefault("position", str(position))
                raise
        stored = await self.store.insert_many(new)
        return [_started(n.op, s) for n, s in zip(new, stored, strict=True)]

    def _new_operation(self, start: StartRequest) -> NewOperation:
        """Check a start request and build its PENDING operation (not stored yet)."""
        kind = self.registry.get(start.kind)
        parent = check_parent(start.parent)
        request = check_json_object(start.request, what="request")
        labels = _check_labels(start.labels)
        if start.request_id is not None and not _REQUEST_ID.fullmatch(start.request_id):
            raise InvalidRequest(
                "request id must be 1 to 128 characters of [A-Za-z0-9._:~-]",
                reason="INVALID_REQUEST_ID",
            )
        check_queue(start.queue)
        if kind.validate is not None:
            kind.validate(request)
        target = (
            start.target
            if start.target is not None
            else (kind.target(request) if kind.target is not None else None)
        )
        timeout = (
            start.timeout_seconds if start.timeout_seconds is not None else kind.timeout_seconds
        )
        if timeout is not None and not 0 < timeout <= 366 * 86400:
            raise InvalidRequest(
                "timeout must be positive and at most a year", reason="INVALID_TIMEOUT"
            )
        now = self.clock.now()
        op = Operation(
            id=str(uuid.uuid4()),
            parent=parent,
            kind=kind.name,
            title=kind.title,
            state=State.PENDING,
            create_time=now,
            update_time=now,
            cancellable=kind.cancellable,
            request=request,
            labels=labels,
            request_id=start.request_id,
            request_hash=_fingerprint(start, target, timeout),
            target=target,
            queue=start.queue,
            max_attempts=kind.max_attempts,
            idempotent=kind.idempotent,
            deadline=now + timedelta(seconds=timeout) if timeout is not None else None,
        )
        return NewOperation(op, exclusive_target=kind.conflict is ConflictPolicy.REJECT)

    async def ping(self) -> None:
        """Raise StoreError unless the store answers (for readiness probes)."""
        await self.store.ping()

    async def get(self, op_id: str) -> Operation:
        return await self._readable(check_operation_id(op_id))

    async def _readable(self, op_id: str) -> Operation:
        """The stored operation, unless a client forgot it (then it is gone for every reader)."""
        op = await self.store.get(op_id)
        if op.forgotten_at is not None:
            raise OperationNotFound(f"operation {op_id} not found")
        return op

    async def list(self, query: OperationQuery) -> Page:
        if query.parent is not None:
            check_parent(query.parent)
        return await self.store.list_page(query)

    async def cancel(self, op_id: str) -> Operation:
        """Request cancellation (phase one). Returns at once; `wait` tells the outcome.

        A finished operation is returned unchanged; a pending one is CANCELLED at once; a
        running one keeps running until its handler has stopped.
        """
        op_id = check_operation_id(op_id)
        for _ in range(_CAS_ATTEMPTS):
            op = await self._readable(op_id)
            changed = lifecycle.request_cancel(op, now=self.clock.now())
            if changed is op:
                return op
            try:
                stored = await self.store.replace(changed, expected_version=op.version)
            except StoreConflict:
                continue
            self.signals.publish(op_id)
            return stored
        raise StoreConflict(f"operation {op_id} kept changing; try again")

    async def delete(self, op_id: str) -> None:
        """Forget a finished operation. A live one must be cancelled first."""
        op = await self.get(op_id)
        if not op.done:
            raise FailedPrecondition(
                f"operation {op.id} is {op.state.value}; cancel it and wait before deleting",
                reason="OPERATION_NOT_DONE",
            )
        await self.store.delete(op.id)

    async def forget(self, op_id: str) -> None:
        """Google's DeleteOperation: the client is no longer interested. A finished operation is
        deleted; a live one is hidden from every read while its work goes on (it is not
        cancelled, its target stays held, its lease is still recovered), and purged once it ends.
        """
        op_id = check_operation_id(op_id)
        for _ in range(_CAS_ATTEMPTS):
            op = await self._readable(op_id)
            try:
                if op.done:
                    await self.store.delete(op.id)
                else:
                    forgotten = lifecycle.forget(op, now=self.clock.now())
                    await self.store.replace(forgotten, expected_version=op.version)
                return
            except StoreConflict:  # e.g. it finished meanwhile: then the next round deletes it
                continue
        raise StoreConflict(f"operation {op_id} kept changing; try again")

    async def wait(self, op_id: str, timeout: float) -> Operation:
        """Return the operation once it is done, or as it is when `timeout` seconds pass."""
        op_id = check_operation_id(op_id)
        timeout = min(max(timeout, 0.0), MAX_WAIT_SECONDS)
        async for op in self.watch(op_id, timeout=timeout):
            if op.done:
                return op
        return await self._readable(op_id)

    async def watch(self, op_id: str, *, timeout: float | None = None) -> AsyncIterator[Operation]:
        """Yield the operation now and after every change, until it is done or `timeout` passes."""
        op_id = check_operation_id(op_id)
        loop_time = time.monotonic()
        deadline = None if timeout is None else loop_time + timeout
        last: Operation | None = None
        while True:
            seen = self.store.change_count()
            op = await self._readable(op_id)
            if last is None or _visible(op) != _visible(last):
                yield op
            last = op
            if op.done:
                return
            remaining = 30.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            await self.store.wait_for_change(seen, min(remaining, 30.0))
