"""PostgresStore: operations in one PostgreSQL database that many API nodes and workers share.

PostgreSQL is the coordinator: claims lock rows with FOR UPDATE SKIP LOCKED and targets are
serialized by transaction-scoped advisory locks (stores/postgres_claims.py), every change is a
version compare-and-set, and a trigger NOTIFYs every commit to the other nodes
(stores/postgres_listen.py). No lifecycle rules here: claims apply the caller's pure transition,
exactly as the SQLite store does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import TupleRow

from longrunning.core.errors import (
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
    TargetBusy,
)
from longrunning.core.lifecycle import check_same_request
from longrunning.core.listing import OperationQuery, Page, page_of
from longrunning.core.operation import Operation
from longrunning.core.ports import Change, Claim, NewOperation
from longrunning.stores._rows import (
    ACTIVE_STATES,
    COLUMNS,
    DATETIME,
    SELECT_COLUMNS,
    TERMINAL_STATES,
    SqlValue,
    from_row,
    to_row,
)
from longrunning.stores.changes import ChangeCounter, ShieldedWrites
from longrunning.stores.migrate import apply, check, load_migrations
from longrunning.stores.postgres_batches import (
    Batch,
    GroupedReplaces,
    RowOutcome,
    compare_and_set,
    compare_and_set_all,
    compare_and_set_many,
    insert_many,
)
from longrunning.stores.postgres_claims import Connection, claim_batch, lock_target
from longrunning.stores.postgres_connections import (
    PoolBackends,
    PostgresSchema,
    check_server,
    connection_settings,
    describe,
    new_pool,
    translated_errors,
)
from longrunning.stores.postgres_listen import ChangeListener
from longrunning.stores.sql_filter import POSTGRES, where_sql

_T = TypeVar("_T")
Work = Callable[[Connection], Awaitable[tuple[_T, bool]]]
"""A transaction's body: its result, and whether it changed anything."""

_SELECT = f"SELECT {SELECT_COLUMNS} FROM operations"
_INSERT = (
    f"INSERT INTO operations ({SELECT_COLUMNS}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    " ON CONFLICT (parent, request_id) WHERE request_id IS NOT NULL DO NOTHING RETURNING id"
)
_ACTIVE_ON_TARGET = (
    f"SELECT id FROM operations WHERE target = %s AND state IN {ACTIVE_STATES} LIMIT 1"
)


class PostgresStore:
    """With `migrate=False`, `open` only checks that every migration was applied (for nodes
    whose database role may not change the schema)."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        max_connections: int = 10,
        acquire_timeout: float = 5.0,
    ) -> None:
        self.conninfo = connection_settings(url)
        self.where = describe(self.conninfo)
        self.migrate = migrate
        backends = PoolBackends()
        self._pool = new_pool(
            self.conninfo,
            max_size=max_connections,
            acquire_timeout=acquire_timeout,
            backends=backends,
        )
        self._acquire_timeout = acquire_timeout
        self._changes = ChangeCounter()
        self._listener = ChangeListener(
            self.conninfo, self._changes.bump, where=self.where, ours=backends
        )
        self._writes = ShieldedWrites()
        self._replaces = GroupedReplaces(self._write_group, self._writes.start)

    async def open(self) -> None:
        try:
            with translated_errors(f"at {self.where}"):
                # One plain connection first: a server that cannot be reached fails the start at
                # once, with libpq's reason, instead of after the pool's retries.
                async with await psycopg.AsyncConnection.connect(self.conninfo) as conn:
                    await check_server(conn)
                await self._pool.open(wait=True, timeout=self._acquire_timeout * 2)
                schema, migrations = PostgresSchema(self._pool), load_migrations("postgresql")
                if self.migrate:
                    await apply(schema, migrations)
                else:
                    await check(schema, migrations)
            # Without the listener nodes still work, on polling: do not wait for it forever.
            await self._listener.start(timeout=self._acquire_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._listener.stop()
        await self._writes.settle()
        await self._pool.close()

    async def ping(self) -> None:
        await self._read(lambda conn: _fetch(conn, "SELECT 1"))

    async def insert(self, op: Operation, *, exclusive_target: bool = False) -> Operation:
        return await self._write(lambda conn: _insert(conn, op, exclusive_target=exclusive_target))

    async def insert_many(self, new: Sequence[NewOperation]) -> list[Operation]:
        batch = list(new)
        if not batch:
            return []
        # Every target lock up front, in one order everywhere: two batches never each hold a
        # target the other waits for.
        targets = sorted(
            {n.op.target for n in batch if n.exclusive_target and n.op.target is not None}
        )

        async def work(conn: Connection) -> tuple[list[Operation], bool]:
            for target in targets:
                await lock_target(conn, target)
            # Plain operations (no request id, no target) cannot meet one another or a stored
            # one except by id, whatever the order: one INSERT for them all.
            plain = [
                i
                for i, n in enumerate(batch)
                if n.op.request_id is None and n.op.target is None and not n.exclusive_target
            ]
            results: list[tuple[Operation, bool] | None] = [None] * len(batch)
            inserted = await _insert_plain(conn, [batch[i].op for i in plain])
            for i, stored in zip(plain, inserted, strict=True):
                results[i] = (stored, True)
            for i, n in enumerate(batch):
                if results[i] is None:
                    results[i] = await _insert(conn, n.op, exclusive_target=n.exclusive_target)
            done = [r for r in results if r is not None]
            for n, (stored, _) in zip(batch, done, strict=True):
                check_same_request(n.op, stored)
            return [stored for stored, _ in done], any(created for _, created in done)

        return await self._write(work)

    async def get(self, op_id: str) -> Operation:
        rows = await self._read(lambda conn: _fetch(conn, f"{_SELECT} WHERE id = %s", (op_id,)))
        if not rows:
            raise OperationNotFound(f"operation {op_id} not found")
        return _op(rows[0])

    async def list_page(self, query: OperationQuery) -> Page:
        clauses: list[str] = ["forgotten_at IS NULL"]
        params: list[SqlValue] = []
        if query.parent is not None:
            clauses.append("parent = %s")
            params.append(query.parent)
        if query.after is not None:
            clauses.append(f"(create_time, id) {'<' if query.newest_first else '>'} (%s, %s)")
            params += [query.after.create_time, query.after.id]
        if query.filter is not None:
            where, filter_params = where_sql(query.filter, POSTGRES)
            clauses.append(where)
            params += filter_params
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            f"{_SELECT} WHERE {' AND '.join(clauses)}"
            f" ORDER BY create_time {order}, id {order} LIMIT %s"
        )
        rows = await self._read(lambda conn: _fetch(conn, sql, [*params, query.page_size + 1]))
        return page_of(query, [_op(row) for row in rows])

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        # Every outcome, progress and cancel is a replace: concurrent ones go as one UPDATE.
        return await self._replaces.replace(op, expected_version)

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        ids = list(dict.fromkeys(op_ids))
        if not ids:
            return []
        sql = f"{_SELECT} WHERE id = ANY(%s)"
        return [_op(row) for row in await self._read(lambda conn: _fetch(conn, sql, (ids,)))]

    async def cancel_requested(self, op_ids: Collection[str]) -> set[str]:
        ids = list(dict.fromkeys(op_ids))
        if not ids:
            return set()
        sql = "SELECT id FROM operations WHERE id = ANY(%s) AND cancel_requested_at IS NOT NULL"
        rows = await self._read(lambda conn: _fetch(conn, sql, (ids,)))
        return {row[0] for row in rows}

    async def apply_many(self, op_ids: Collection[str], change: Change) -> list[Operation]:
        ids = sorted(set(op_ids))  # rows locked in one order everywhere: no deadlocks
        if not ids:
            return []

        async def work(conn: Connection) -> tuple[list[Operation], bool]:
            sql = f"{_SELECT} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
            current = [_op(row) for row in await _fetch(conn, sql, (ids,))]
            pairs = [(op, change(op)) for op in current]  # all or nothing, should one raise
            writes = [(new, op.version) for op, new in pairs if new is not None]
            stored = iter(await compare_and_set_all(conn, writes) if writes else [])
            return [op if new is None else next(stored) for op, new in pairs], bool(writes)

        return await self._write(work)

    async def delete(self, op_id: str) -> None:
        async def work(conn: Connection) -> tuple[None, bool]:
            sql = "DELETE FROM operations WHERE id = %s RETURNING id"
            if not await _fetch(conn, sql, (op_id,)):
                raise OperationNotFound(f"operation {op_id} not found")
            return None, True

        await self._write(work)

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
        kind_list, queue_list = list(kinds), list(queues)
        if limit <= 0 or not kind_list or not queue_list:
            return []

        async def work(conn: Connection) -> tuple[list[Operation], bool]:
            def take(candidates: list[Operation]) -> Awaitable[list[Operation]]:
                return compare_and_set_all(conn, [(claim(op), op.version) for op in candidates])

            claimed = await claim_batch(conn, kind_list, queue_list, now, take, limit=limit)
            return claimed, bool(claimed)

        return await self._write(work)

    async def expired_leases(self, *, now: datetime, limit: int) -> list[Operation]:
        sql = (
            f"{_SELECT} WHERE state = 'RUNNING' AND lease_expires_at < %s"
            " ORDER BY lease_expires_at, id LIMIT %s"
        )
        rows = await self._read(lambda conn: _fetch(conn, sql, (now, max(limit, 0))))
        return [_op(row) for row in rows]

    async def overdue_pending(self, *, now: datetime, limit: int) -> list[Operation]:
        sql = f"{_SELECT} WHERE state = 'PENDING' AND deadline < %s ORDER BY deadline, id LIMIT %s"
        rows = await self._read(lambda conn: _fetch(conn, sql, (now, max(limit, 0))))
        return [_op(row) for row in rows]

    async def purge_finished(self, *, ended_before: datetime, limit: int) -> int:
        forgotten = (
            "DELETE FROM operations WHERE id IN (SELECT id FROM operations"
            f" WHERE forgotten_at IS NOT NULL AND state IN {TERMINAL_STATES}"
            " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        expired = (
            "DELETE FROM operations WHERE id IN (SELECT id FROM operations"
            f" WHERE state IN {TERMINAL_STATES} AND end_time < %s ORDER BY end_time, id"
            " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
        )

        async def work(conn: Connection) -> tuple[int, bool]:
            deleted = len(await _fetch(conn, forgotten, (max(limit, 0),)))
            left = max(limit - deleted, 0)
            deleted += len(await _fetch(conn, expired, (ended_before, left)))
            return deleted, deleted > 0

        return await self._write(work)

    def change_count(self) -> int:
        return self._changes.value

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        return await self._changes.wait(seen, timeout)

    async def _write(self, work: Work[_T], *, transaction: bool = True) -> _T:
        """Run `work` in a transaction; with `transaction=False` its statements autocommit, for
        a work whose one write is a single statement."""
        return await self._writes.run(self._write_now(work, transaction))

    async def _write_now(self, work: Work[_T], transaction: bool) -> _T:
        with translated_errors("write failed"):
            async with self._pool.connection() as conn:
                if transaction:
                    async with conn.transaction():
                        result, changed = await work(conn)
                else:
                    result, changed = await work(conn)
        if changed:
            self._changes.bump()
        return result

    async def _write_group(self, batch: Batch) -> list[RowOutcome]:
        """GroupedReplaces' writes: one autocommitted UPDATE for the group. When that statement
        fails as a whole (a value one row may not hold, a request id taken, a deadlock with
        another node's transaction), each row is tried on its own, so only its own caller
        hears of its error."""
        if len(batch) == 1:
            try:
                return [await self._write_now(_replace_one(*batch[0]), transaction=False)]
            except Exception as exc:
                return [exc]
        outcomes: list[RowOutcome] | None = None
        with translated_errors("write failed"):
            async with self._pool.connection() as conn:
                try:
                    outcomes = await compare_and_set_many(conn, batch)
                except (psycopg.Error, UnicodeEncodeError):
                    if conn.broken:
                        raise
        if outcomes is None:  # the statement failed, not the connection: row by row
            return await self._write_singly(batch)
        if any(isinstance(outcome, Operation) for outcome in outcomes):
            self._changes.bump()
        return outcomes

    async def _write_singly(self, batch: Batch) -> list[RowOutcome]:
        singles = (self._write_now(_replace_one(op, v), transaction=False) for op, v in batch)
        outcomes: list[RowOutcome] = []
        for outcome in await asyncio.gather(*singles, return_exceptions=True):
            if not isinstance(outcome, Operation | Exception):
                raise outcome  # cancelled: the store is closing
            outcomes.append(outcome)
        return outcomes

    async def _read(self, query: Callable[[Connection], Awaitable[_T]]) -> _T:
        with translated_errors("read failed"):
            used: psycopg.AsyncConnection[Any] | None = None
            try:
                async with self._pool.connection() as conn:
                    used = conn
                    return await query(conn)
            except psycopg.OperationalError:
                # Its backend went away between the pool's look at it and the query (the pool
                # checks only connections that look suspect). A read can simply be tried again
                # on another one; a server that is really away fails this second try too.
                if used is None or not used.broken:
                    raise
            async with self._pool.connection() as conn:
                return await query(conn)


def _replace_one(op: Operation, expected_version: int) -> Work[Operation]:
    async def work(conn: Connection) -> tuple[Operation, bool]:
        return await compare_and_set(conn, op, expected_version), True

    return work


async def _insert(
    conn: Connection, op: Operation, *, exclusive_target: bool
) -> tuple[Operation, bool]:
    """`insert` inside a transaction: the operation as stored, and whether it is new."""
    if op.request_id is not None:
        existing = await _by_request_id(conn, op)
        if existing is not None:
            return existing, False
    if exclusive_target and op.target is not None:
        await lock_target(conn, op.target)
        holders = await _fetch(conn, _ACTIVE_ON_TARGET, (op.target,))
        if holders:
            raise TargetBusy(f"target {op.target!r} is busy with operation {holders[0][0]}")
    stored = dataclasses.replace(op, version=1)
    try:
        inserted = await _fetch(conn, _INSERT, to_row(stored, DATETIME))
    except psycopg.errors.UniqueViolation:  # the id is taken; the transaction is void
        raise OperationAlreadyExists(
            f"operation {op.id} already exists", reason="OPERATION_EXISTS"
        ) from None
    if inserted:
        return stored, True
    # Another node inserted the same request id meanwhile; it has committed by now.
    existing = await _by_request_id(conn, op)
    if existing is None:
        raise StoreConflict(f"operation {op.id}: its request id vanished; retry")
    return existing, False


async def _insert_plain(conn: Connection, ops: list[Operation]) -> list[Operation]:
    """Insert operations without request ids in one statement; all are new."""
    stored = [dataclasses.replace(op, version=1) for op in ops]
    try:
        await insert_many(conn, stored)
    except psycopg.errors.UniqueViolation:  # an id is taken; the transaction is void
        raise OperationAlreadyExists(
            "an operation of the batch already exists", reason="OPERATION_EXISTS"
        ) from None
    return stored


async def _by_request_id(conn: Connection, op: Operation) -> Operation | None:
    sql = f"{_SELECT} WHERE parent = %s AND request_id = %s"
    rows = await _fetch(conn, sql, (op.parent, op.request_id))
    return _op(rows[0]) if rows else None


async def _fetch(conn: Connection, sql: str, params: Any = None) -> list[TupleRow]:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchall() if cursor.description is not None else []


def _op(row: TupleRow) -> Operation:
    return from_row(row, DATETIME)
