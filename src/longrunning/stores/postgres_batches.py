"""Many operations' rows in one PostgreSQL statement: the version compare-and-set (one row or
many) and the plain insert, and the grouping of concurrent single `replace` calls into one
statement (ADR 0034).

A batch statement takes one array per column, unnested server-side: its text is the same for one
row or a thousand, so psycopg converts it once and the server keeps it prepared, and a batch costs
one send and one round trip instead of one per row (a statement's send alone cost ~100 µs of the
event loop's time here). No lifecycle rules and no transactions here: callers pass the rows, and
expected versions, on a connection they hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from longrunning.core.errors import (
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
    StoreError,
)
from longrunning.core.operation import Operation
from longrunning.stores._rows import COLUMNS, DATETIME, SqlValue, to_row

Connection = psycopg.AsyncConnection[TupleRow]
RowOutcome = Operation | Exception
"""Per row: the operation as stored, or why it was not (a LongrunningError, unless a bug)."""

_TYPES = {
    "cancellable": "boolean",
    "progress_percent": "double precision",
    "error_code": "integer",
    "error_severity": "bigint",
    "error_is_user_error": "boolean",
    "attempt": "integer",
    "max_attempts": "integer",
    "idempotent": "boolean",
    "lease_epoch": "bigint",
    "version": "bigint",
    **{
        c: "timestamptz"
        for c in COLUMNS
        if c.endswith(("_time", "_at", "_eta")) or c in ("deadline", "not_before")
    },
}
"""Every column that is not text (JSON travels as text and is cast where it is set)."""
_JSON = {"metadata": "json", "request": "json", "result": "json", "error_details": "json"}
_JSONB = {"labels": "jsonb"}
_KEPT_IF_SAME = frozenset({"request", "metadata", "result"})
"""Payloads an update re-sends unchanged: rewriting a large (TOASTed) one would leave a dead copy
behind at every write, so the stored value is kept when the text is the same."""


def _assignment(column: str) -> str:
    if column in _KEPT_IF_SAME:
        kept = f"o.{column}::text = v.{column}"
        return f"{column} = CASE WHEN {kept} THEN o.{column} ELSE v.{column}::json END"
    cast = _JSON.get(column) or _JSONB.get(column)
    return f"{column} = v.{column}::{cast}" if cast else f"{column} = v.{column}"


UPDATE_ONE = (
    "UPDATE operations SET "
    + ", ".join(
        f"{c} = CASE WHEN {c}::text = %s THEN {c} ELSE %s::json END"
        if c in _KEPT_IF_SAME
        else f"{c} = %s"
        for c in COLUMNS[1:]
    )
    + " WHERE id = %s AND version = %s RETURNING id"
)
"""One row: its own statement, short enough for psycopg to keep converted and prepared."""
UPDATE_MANY = (
    "UPDATE operations AS o SET "
    + ", ".join(_assignment(c) for c in COLUMNS[1:])
    + " FROM unnest("
    + ", ".join(f"%s::{_TYPES.get(c, 'text')}[]" for c in COLUMNS)
    + ", %s::bigint[]) AS v("
    + ", ".join(COLUMNS)
    + ", expected) WHERE o.id = v.id AND o.version = v.expected RETURNING o.id"
)
INSERT_MANY = (
    f"INSERT INTO operations ({', '.join(COLUMNS)}) SELECT "
    + ", ".join(
        f"v.{c}::{_JSON.get(c) or _JSONB[c]}" if c in _JSON or c in _JSONB else f"v.{c}"
        for c in COLUMNS
    )
    + " FROM unnest("
    + ", ".join(f"%s::{_TYPES.get(c, 'text')}[]" for c in COLUMNS)
    + ") AS v("
    + ", ".join(COLUMNS)
    + ")"
)
_FLOATS = frozenset(i for i, c in enumerate(COLUMNS) if _TYPES.get(c) == "double precision")
_BOOLS = frozenset(i for i, c in enumerate(COLUMNS) if _TYPES.get(c) == "boolean")


def _arrays(stored: Sequence[Operation]) -> list[list[Any]]:
    """One list per column, each element typed alike (psycopg refuses a list of mixed types)."""
    columns: list[list[Any]] = [[] for _ in COLUMNS]
    for op in stored:
        for values, value in zip(columns, to_row(op, DATETIME), strict=True):
            values.append(value)
    for i in _FLOATS:
        columns[i] = [None if v is None else float(v) for v in columns[i]]
    for i in _BOOLS:
        columns[i] = [None if v is None else bool(v) for v in columns[i]]
    return columns


def _update_params(stored: Operation, expected_version: int) -> list[SqlValue]:
    params: list[SqlValue] = []
    for column, value in zip(COLUMNS[1:], to_row(stored, DATETIME)[1:], strict=True):
        params += [value, value] if column in _KEPT_IF_SAME else [value]
    return [*params, stored.id, expected_version]


async def compare_and_set(conn: Connection, op: Operation, expected_version: int) -> Operation:
    """Store `op` if its stored version is `expected_version`; raise why not otherwise."""
    stored = dataclasses.replace(op, version=expected_version + 1)
    try:
        cursor = await conn.execute(UPDATE_ONE.encode(), _update_params(stored, expected_version))
    except psycopg.errors.UniqueViolation as exc:  # the transaction is void: nothing is stored
        raise OperationAlreadyExists(
            f"another operation in {op.parent} already has request id {op.request_id!r}"
        ) from exc
    if not await cursor.fetchall():
        query = b"SELECT version FROM operations WHERE id = %s"
        current = await (await conn.execute(query, (op.id,))).fetchall()
        if not current:
            raise OperationNotFound(f"operation {op.id} not found")
        raise StoreConflict(
            f"operation {op.id} is at version {current[0][0]}, not {expected_version}"
        )
    return stored


async def compare_and_set_all(
    conn: Connection, changes: Sequence[tuple[Operation, int]]
) -> list[Operation]:
    """Store every operation or raise the first reason one cannot be (inside a transaction,
    which that aborts). The ids must be distinct."""
    if len(changes) == 1:
        return [await compare_and_set(conn, *changes[0])]
    stored: list[Operation] = []
    for outcome in await compare_and_set_many(conn, changes):
        if not isinstance(outcome, Operation):
            raise outcome
        stored.append(outcome)
    return stored


async def compare_and_set_many(
    conn: Connection, changes: Sequence[tuple[Operation, int]]
) -> list[RowOutcome]:
    """Store each operation whose stored version is the expected one, in one statement (atomic
    as a whole: a statement error stores none, and raises). The ids must be distinct."""
    if not changes:
        return []
    stored = [dataclasses.replace(op, version=expected + 1) for op, expected in changes]
    params = [*_arrays(stored), [expected for _, expected in changes]]
    cursor = await conn.execute(UPDATE_MANY.encode(), params)
    updated = {row[0] for row in await cursor.fetchall()}
    missed = [op.id for op in stored if op.id not in updated]
    versions: dict[str, int] = {}
    if missed:
        query = b"SELECT id, version FROM operations WHERE id = ANY(%s)"
        cursor = await conn.execute(query, (missed,))
        versions = {row[0]: row[1] for row in await cursor.fetchall()}
    outcomes: list[RowOutcome] = []
    for new, (_, expected) in zip(stored, changes, strict=True):
        if new.id in updated:
            outcomes.append(new)
        elif new.id not in versions:
            outcomes.append(OperationNotFound(f"operation {new.id} not found"))
        else:
            outcomes.append(
                StoreConflict(
                    f"operation {new.id} is at version {versions[new.id]}, not {expected}"
                )
            )
    return outcomes


async def insert_many(conn: Connection, ops: Sequence[Operation]) -> None:
    """Insert every operation, as it is, in one statement (all or none)."""
    if ops:
        await conn.execute(INSERT_MANY.encode(), _arrays(ops))


Batch = list[tuple[Operation, int]]
MAX_GROUP = 200
"""Rows per grouped UPDATE at most."""
MAX_GROUPS_IN_FLIGHT = 2
"""Grouped UPDATEs running at once: a lone replace need not wait behind a big group."""


@dataclasses.dataclass(slots=True)
class _Waiting:
    op: Operation
    expected: int
    answer: asyncio.Future[Operation]


class GroupedReplaces:
    """Concurrent `replace` calls, sent together: those submitted in one turn of the event loop,
    or while MAX_GROUPS_IN_FLIGHT groups are running, go as one `write_group` call. A lone
    replace goes at the next turn of the loop, so grouping adds no wait of its own.

    Two replaces of one operation never share a group (one statement could not say which of
    them won): the later waits for the next group, where its version check sees the first.
    """

    def __init__(
        self,
        write_group: Callable[[Batch], Awaitable[list[RowOutcome]]],
        start: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self._write_group = write_group
        self._start = start
        self._queue: list[_Waiting] = []
        self._in_flight: set[str] = set()
        self._groups = 0
        self._scheduled = False

    async def replace(self, op: Operation, expected_version: int) -> Operation:
        answer: asyncio.Future[Operation] = asyncio.get_running_loop().create_future()
        # Retrieved here, so that a failure nobody waits for any more is not logged as lost.
        answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append(_Waiting(op, expected_version, answer))
        self._schedule()
        # The group is written whether or not this caller still waits (the store shields it).
        return await asyncio.shield(answer)

    def _schedule(self) -> None:
        if self._queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        while self._queue and self._groups < MAX_GROUPS_IN_FLIGHT:
            group: list[_Waiting] = []
            later: list[_Waiting] = []
            ids: set[str] = set()
            for waiting in self._queue:
                op_id = waiting.op.id
                if len(group) < MAX_GROUP and op_id not in ids and op_id not in self._in_flight:
                    group.append(waiting)
                    ids.add(op_id)
                else:
                    later.append(waiting)
            if not group:
                return  # each one left waits for a group in flight to finish with its operation
            self._queue = later
            self._in_flight |= ids
            self._groups += 1
            task = self._start(self._run(group))
            # A callback, not a `finally` in _run: a task cancelled before its first step (the
            # store closing gave up on it) never runs its coroutine at all.
            task.add_done_callback(functools.partial(self._ended, group=group, ids=ids))

    async def _run(self, group: list[_Waiting]) -> None:
        try:
            outcomes = await self._write_group([(w.op, w.expected) for w in group])
        except Exception as exc:
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.answer.done():
                continue
            if isinstance(outcome, Operation):
                waiting.answer.set_result(outcome)
            else:
                waiting.answer.set_exception(outcome)

    def _ended(self, task: asyncio.Task[None], group: list[_Waiting], ids: set[str]) -> None:
        """Answer whoever is still unanswered (the group was cancelled, or failed unexpectedly),
        and let the next group go."""
        failure = (
            StoreError("the store closed before this write was committed")
            if task.cancelled()
            else task.exception()
        )
        for waiting in group:
            if not waiting.answer.done():
                waiting.answer.set_exception(failure or StoreError("the write was not answered"))
        self._groups -= 1
        self._in_flight -= ids
        self._schedule()
