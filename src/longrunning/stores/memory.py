"""MemoryStore: the reference semantics of `OperationStore`, in a dict behind an asyncio.Lock.

Used by unit tests and `memory://`. It implements meaning, not a SQL emulation; the contract
suite pins the SQL stores to it. Nothing survives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime

from longrunning.core.errors import (
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
    StoreError,
    TargetBusy,
)
from longrunning.core.filtering import matches
from longrunning.core.lifecycle import check_same_request
from longrunning.core.listing import OperationQuery, Page, page_of, sort_key
from longrunning.core.operation import Operation, State
from longrunning.core.ports import Change, Claim, NewOperation
from longrunning.stores.changes import ChangeCounter


class MemoryStore:
    """Stores the Operation objects it is given and returns them as they are: callers treat
    their dict fields as immutable, so nothing is copied."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}
        self._request_ids: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._changes = ChangeCounter()
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        if not self._open:
            raise StoreError("the memory store is not open")

    async def insert(self, op: Operation, *, exclusive_target: bool = False) -> Operation:
        async with self._lock:
            stored, created = self._insert_one(op, exclusive_target=exclusive_target)
            if created:
                self._changes.bump()
            return stored

    async def insert_many(self, new: Sequence[NewOperation]) -> list[Operation]:
        if not new:
            return []
        async with self._lock:
            with self._all_or_nothing():
                results = [self._insert_one(n.op, exclusive_target=n.exclusive_target) for n in new]
                for n, (stored, _) in zip(new, results, strict=True):
                    check_same_request(n.op, stored)
            if any(created for _, created in results):
                self._changes.bump()
            return [stored for stored, _ in results]

    async def get(self, op_id: str) -> Operation:
        op = self._ops.get(op_id)
        if op is None:
            raise OperationNotFound(f"operation {op_id} not found")
        return op

    async def list_page(self, query: OperationQuery) -> Page:
        ops = sorted(self._ops.values(), key=sort_key, reverse=query.newest_first)
        after = query.after
        rows: list[Operation] = []
        for op in ops:
            if op.forgotten_at is not None:
                continue
            if query.parent is not None and op.parent != query.parent:
                continue
            if after is not None:
                key, cursor = sort_key(op), (after.create_time, after.id)
                if (key >= cursor) if query.newest_first else (key <= cursor):
                    continue
            if matches(query.filter, op):
                rows.append(op)
                if len(rows) > query.page_size:
                    break
        return page_of(query, rows)

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        async with self._lock:
            current = self._ops.get(op.id)
            if current is None:
                raise OperationNotFound(f"operation {op.id} not found")
            if current.version != expected_version:
                raise StoreConflict(
                    f"operation {op.id} is at version {current.version}, not {expected_version}"
                )
            stored = dataclasses.replace(op, version=expected_version + 1)
            self._put(stored, previous=current)
            self._changes.bump()
            return stored

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        return [self._ops[i] for i in dict.fromkeys(op_ids) if i in self._ops]

    async def cancel_requested(self, op_ids: Collection[str]) -> set[str]:
        return {
            op_id
            for op_id in op_ids
            if (op := self._ops.get(op_id)) is not None and op.cancel_requested_at is not None
        }

    async def apply_many(self, op_ids: Collection[str], change: Change) -> list[Operation]:
        async with self._lock:
            current = [self._ops[i] for i in dict.fromkeys(op_ids) if i in self._ops]
            changed = [change(op) for op in current]  # all or nothing, should one raise
            result: list[Operation] = []
            with self._all_or_nothing():  # a request id clash may stop it halfway
                for op, new in zip(current, changed, strict=True):
                    if new is None:
                        result.append(op)
                        continue
                    stored = dataclasses.replace(new, version=op.version + 1)
                    self._put(stored, previous=op)
                    result.append(stored)
            if any(new is not None for new in changed):
                self._changes.bump()
            return result

    async def delete(self, op_id: str) -> None:
        async with self._lock:
            op = self._ops.pop(op_id, None)
            if op is None:
                raise OperationNotFound(f"operation {op_id} not found")
            self._forget_request_id(op)
            self._changes.bump()

    async def claim(
        self, *, kinds: Collection[str], queues: Collection[str], now: datetime, claim: Claim
    ) -> Operation | None:
        claimed = await self.claim_many(kinds=kinds, queues=queues, now=now, claim=claim, limit=1)
        return claimed[0] if claimed else None

    async def claim_many(
        self,
        *,
        kinds: Collection[str],
        queues: Collection[str],
        now: datetime,
        claim: Claim,
        limit: int,
    ) -> list[Operation]:
        if limit <= 0 or not kinds or not queues:
            return []
        async with self._lock:
            busy = {
                op.target
                for op in self._ops.values()
                if op.state is State.RUNNING and op.target is not None
            }
            candidates = sorted(
                (
                    op
                    for op in self._ops.values()
                    if op.state is State.PENDING
                    and op.cancel_requested_at is None
                    and op.kind in kinds
                    and op.queue in queues
                    and (op.not_before is None or op.not_before <= now)
                ),
                key=sort_key,
            )
            claimed: list[Operation] = []
            with self._all_or_nothing():
                # Only this batch changes anything while the lock is held, so the candidates stay
                # as they were except for the targets the batch itself makes busy.
                for current in candidates:
                    if len(claimed) == limit:
                        break
                    if current.target is not None and current.target in busy:
                        continue
                    stored = dataclasses.replace(claim(current), version=current.version + 1)
                    self._put(stored, previous=current)
                    claimed.append(stored)
                    if stored.state is State.RUNNING and stored.target is not None:
                        busy.add(stored.target)
            if claimed:
                self._changes.bump()
            return claimed

    async def expired_leases(self, *, now: datetime, limit: int) -> list[Operation]:
        expired = [
            (op.lease_expires_at, op.id, op)
            for op in self._ops.values()
            if op.state is State.RUNNING
            and op.lease_expires_at is not None
            and op.lease_expires_at < now
        ]
        return [op for _, _, op in sorted(expired, key=lambda t: t[:2])][: max(limit, 0)]

    async def overdue_pending(self, *, now: datetime, limit: int) -> list[Operation]:
        overdue = [
            (op.deadline, op.id, op)
            for op in self._ops.values()
            if op.state is State.PENDING and op.deadline is not None and op.deadline < now
        ]
        return [op for _, _, op in sorted(overdue, key=lambda t: t[:2])][: max(limit, 0)]

    async def purge_finished(self, *, ended_before: datetime, limit: int) -> int:
        async with self._lock:
            ended = sorted(
                (op.forgotten_at is None, op.end_time, op.id)
                for op in self._ops.values()
                if op.state.is_terminal
                and op.end_time is not None
                and (op.end_time < ended_before or op.forgotten_at is not None)
            )
            doomed = [op_id for _, _, op_id in ended[: max(limit, 0)]]
            for op_id in doomed:
                self._forget_request_id(self._ops.pop(op_id))
            if doomed:
                self._changes.bump()
            return len(doomed)

    def change_count(self) -> int:
        return self._changes.value

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        return await self._changes.wait(seen, timeout)

    def _active_on(self, target: str) -> Operation | None:
        for op in self._ops.values():
            if op.target == target and op.state in (State.PENDING, State.RUNNING):
                return op
        return None

    def _insert_one(self, op: Operation, *, exclusive_target: bool) -> tuple[Operation, bool]:
        """`insert` under the lock: the operation as stored, and whether it is new."""
        if op.request_id is not None:
            existing = self._request_ids.get((op.parent, op.request_id))
            if existing is not None:
                return self._ops[existing], False
        if exclusive_target and op.target is not None:
            holder = self._active_on(op.target)
            if holder is not None:
                raise TargetBusy(f"target {op.target!r} is busy with operation {holder.id}")
        if op.id in self._ops:
            raise OperationAlreadyExists(
                f"operation {op.id} already exists", reason="OPERATION_EXISTS"
            )
        stored = dataclasses.replace(op, version=1)
        self._put(stored, previous=None)
        return stored, True

    @contextlib.contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """Puts everything back as it was if the body raises: a batch is one transaction."""
        ops, request_ids = dict(self._ops), dict(self._request_ids)
        try:
            yield
        except BaseException:
            self._ops, self._request_ids = ops, request_ids
            raise

    def _put(self, op: Operation, *, previous: Operation | None) -> None:
        """Store `op` (a new one, or `previous` changed), keeping request ids unique per parent.

        The caller bumps the change counter once its whole write succeeded."""
        if op.request_id is not None:
            holder = self._request_ids.get((op.parent, op.request_id))
            if holder is not None and holder != op.id:
                raise OperationAlreadyExists(
                    f"operation {holder} in {op.parent} already has request id {op.request_id!r}"
                )
        if previous is not None:
            self._forget_request_id(previous)
        if op.request_id is not None:
            self._request_ids[(op.parent, op.request_id)] = op.id
        self._ops[op.id] = op

    def _forget_request_id(self, op: Operation) -> None:
        if op.request_id is not None:
            self._request_ids.pop((op.parent, op.request_id), None)
