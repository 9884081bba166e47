"""The ports the core owns: what a store and a clock must do. Protocols only, no code.

Stores speak `Operation`, never SQL: the memory store implements the same semantics, and one
contract suite (tests/contract) pins every store to them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from longrunning.core.listing import OperationQuery, Page
from longrunning.core.operation import Operation


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


Claim = Callable[[Operation], Operation]
"""The lifecycle transition a store applies to the operation it picks, inside its transaction."""


@dataclass(frozen=True, slots=True)
class NewOperation:
    """One operation for `insert_many`, with the `exclusive_target` flag `insert` takes."""

    op: Operation
    exclusive_target: bool = False


Change = Callable[[Operation], "Operation | None"]
"""A pure transition for `apply_many`; None leaves that operation as it is."""


class OperationStore(Protocol):
    async def open(self) -> None:
        """Connect and apply (or check) migrations. Called once before anything else."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError unless the store answers a trivial query."""

    async def insert(self, op: Operation, *, exclusive_target: bool = False) -> Operation:
        """Store a new operation (version 1) and return it as stored.

        If its parent already holds an operation with the same request id, return that one
        unchanged instead (the caller compares `request_hash`). With `exclusive_target`, raise
        TargetBusy when a PENDING or RUNNING operation has the same target.
        """

    async def insert_many(self, new: Sequence[NewOperation]) -> list[Operation]:
        """Store each operation exactly as `insert` would, in order, in one transaction: all or
        none. Return, in the same order, each as stored or, for a request id its parent already
        holds (also from earlier in the same batch), the operation that holds it. If any one
        raises (TargetBusy, OperationAlreadyExists...), nothing is stored and it propagates;
        unlike `insert`, a held request id whose `request_hash` differs is such an error
        (OperationAlreadyExists), so that a batch is never stored and then refused.
        """

    async def get(self, op_id: str) -> Operation:
        """Raise OperationNotFound if absent."""

    async def list_page(self, query: OperationQuery) -> Page:
        """A page of the query, never holding a forgotten operation (`forgotten_at` set)."""

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        """The operations among `op_ids` that exist, in no particular order. One round trip."""

    async def cancel_requested(self, op_ids: Collection[str]) -> set[str]:
        """The ids among `op_ids` of existing operations whose cancel was requested. One cheap
        read that decodes no operation: how a worker looks for cancels from other nodes between
        its full re-reads."""

    async def apply_many(self, op_ids: Collection[str], change: Change) -> list[Operation]:
        """In one transaction, store `change(op)` (version + 1) for each existing operation among
        `op_ids` for which it is not None; return every existing one as it now is.

        How a worker renews all its leases, fenced, in one write. `change` must be pure; if it
        raises, nothing is stored and the error propagates.
        """

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        """Write `op` if the stored version is `expected_version`; return it with version + 1.

        Raise StoreConflict if the version moved, OperationNotFound if the row is gone.
        """

    async def delete(self, op_id: str) -> None:
        """Forget an operation. Raise OperationNotFound if absent."""

    async def claim(
        self, *, kinds: Collection[str], queues: Collection[str], now: datetime, claim: Claim
    ) -> Operation | None:
        """Atomically pick the oldest claimable operation and store `claim(op)` for it.

        Claimable: PENDING, no cancel requested, kind in `kinds`, queue in `queues`,
        `not_before` unset or past, and no RUNNING operation on the same target.
        """

    async def claim_many(
        self,
        *,
        kinds: Collection[str],
        queues: Collection[str],
        now: datetime,
        claim: Claim,
        limit: int,
    ) -> list[Operation]:
        """Claim up to `limit` operations in one transaction, oldest first, each as `claim`
        would pick it after the ones before it were claimed (so never two on one target).
        Return them as stored, in claim order; fewer (or none) when fewer are claimable.
        A store may return fewer than are claimable (PostgreSQL stops a batch at a second
        operation with a target, so that no transaction waits for two target locks).
        """

    async def expired_leases(self, *, now: datetime, limit: int) -> list[Operation]:
        """RUNNING operations whose lease expired before `now`."""

    async def overdue_pending(self, *, now: datetime, limit: int) -> list[Operation]:
        """PENDING operations whose deadline passed before `now`."""

    async def purge_finished(self, *, ended_before: datetime, limit: int) -> int:
        """Delete up to `limit` terminal operations that were forgotten or ended before
        `ended_before`, forgotten ones first."""

    def change_count(self) -> int:
        """A counter that grows whenever any operation changed (in this process or, for stores
        shared between processes, in another one as far as the store can tell)."""
        ...

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        """Wait until `change_count()` exceeds `seen` or `timeout` seconds pass; return it."""
        ...
