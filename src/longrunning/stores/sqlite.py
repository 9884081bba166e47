"""SQLiteStore: operations in one SQLite file that a server and its workers may share.

Every write is one BEGIN IMMEDIATE transaction on a single writer connection; reads use a second
connection and, thanks to WAL, never wait for writes. No lifecycle rules here: claims apply the
caller's pure transition, and every change is a version compare-and-set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite

from longrunning.core.errors import (
    InvalidRequest,
    OperationAlreadyExists,
    OperationNotFound,
    StoreConflict,
    StoreError,
    TargetBusy,
)
from longrunning.core.listing import OperationQuery, Page, page_of
from longrunning.core.operation import Operation
from longrunning.core.ports import Change, Claim
from longrunning.core.timestamps import to_micros
from longrunning.stores._rows import (
    ACTIVE_STATES,
    COLUMNS,
    SELECT_COLUMNS,
    TERMINAL_STATES,
    SqlValue,
    from_row,
    to_row,
)
from longrunning.stores.changes import ChangeCounter, ShieldedWrites
from longrunning.stores.migrate import apply, check, load_migrations
from longrunning.stores.sql_filter import where_sql
from longrunning.stores.sqlite_connections import (
    MIN_SQLITE_VERSION,
    Params,
    Row,
    SQLiteSchema,
    Work,
    connect,
    run,
    transaction,
)
from longrunning.stores.sqlite_watch import DataVersionWatcher

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SELECT = f"SELECT {SELECT_COLUMNS} FROM operations"
_INSERT = f"INSERT INTO operations ({SELECT_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPDATE = (
    f"UPDATE operations SET {', '.join(f'{c} = ?' for c in COLUMNS[1:])}"
    " WHERE id = ? AND version = ? RETURNING id"
)
_ACTIVE_ON_TARGET = (
    f"SELECT id FROM operations WHERE target = ? AND state IN {ACTIVE_STATES} LIMIT 1"
)
# The redundant IN term lets the planner use the partial index on active targets.
_CLAIMABLE = (
    f"{_SELECT} AS o WHERE o.state = 'PENDING' AND o.cancel_requested_at IS NULL"
    " AND o.kind IN ({kinds}) AND o.queue IN ({queues})"
    " AND (o.not_before IS NULL OR o.not_before <= ?)"
    " AND (o.target IS NULL OR NOT EXISTS (SELECT 1 FROM operations AS r"
    f" WHERE r.target = o.target AND r.state IN {ACTIVE_STATES} AND r.state = 'RUNNING'))"
    " ORDER BY o.create_time, o.id LIMIT 1"
)


class SQLiteStore:
    """With `migrate=False`, `open` only checks that every migration was applied."""

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise InvalidRequest("SQLiteStore needs a file path; use memory:// for a memory store")
        self.path = Path(path)
        self.migrate = migrate
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._writes = ShieldedWrites()
        self._changes = ChangeCounter()
        self._watcher: DataVersionWatcher | None = None

    async def open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; 3.37 or newer needed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await connect(self.path, writer=True)
            schema, migrations = SQLiteSchema(self._writer), load_migrations("sqlite")
            if self.migrate:
                await apply(schema, migrations)
            else:
                await check(schema, migrations)
            self._reader = await connect(self.path, writer=False)
            self._watcher = DataVersionWatcher(self.path, self._changes.bump)
            self._watcher.start()
        except (sqlite3.Error, OSError) as exc:
            await self._disconnect()
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        except BaseException:
            await self._disconnect()
            raise

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()
        await self._writes.settle()
        await self._disconnect()

    async def ping(self) -> None:
        await self._read("SELECT 1")

    async def insert(self, op: Operation, *, exclusive_target: bool = False) -> Operation:
        async def work(conn: aiosqlite.Connection) -> tuple[Operation, bool]:
            if op.request_id is not None:
                sql = f"{_SELECT} WHERE parent = ? AND request_id = ?"
                rows = await run(conn, sql, (op.parent, op.request_id))
                if rows:
                    return from_row(rows[0]), False
            if exclusive_target and op.target is not None:
                holders = await run(conn, _ACTIVE_ON_TARGET, (op.target,))
                if holders:
                    raise TargetBusy(f"target {op.target!r} is busy with operation {holders[0][0]}")
            if await run(conn, "SELECT 1 FROM operations WHERE id = ?", (op.id,)):
                raise OperationAlreadyExists(
                    f"operation {op.id} already exists", reason="OPERATION_EXISTS"
                )
            stored = dataclasses.replace(op, version=1)
            await run(conn, _INSERT, to_row(stored))
            return stored, True

        return await self._write(work)

    async def get(self, op_id: str) -> Operation:
        rows = await self._read(f"{_SELECT} WHERE id = ?", (op_id,))
        if not rows:
            raise OperationNotFound(f"operation {op_id} not found")
        return from_row(rows[0])

    async def list_page(self, query: OperationQuery) -> Page:
        clauses: list[str] = ["forgotten_at IS NULL"]
        params: list[SqlValue] = []
        if query.parent is not None:
            clauses.append("parent = ?")
            params.append(query.parent)
        if query.after is not None:
            clauses.append(f"(create_time, id) {'<' if query.newest_first else '>'} (?, ?)")
            params += [to_micros(query.after.create_time), query.after.id]
        if query.filter is not None:
            where, filter_params = where_sql(query.filter)
            clauses.append(where)
            params += filter_params
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            f"{_SELECT} WHERE {' AND '.join(clauses)}"
            f" ORDER BY create_time {order}, id {order} LIMIT ?"
        )
        rows = await self._read(sql, [*params, query.page_size + 1])
        return page_of(query, [from_row(row) for row in rows])

    async def replace(self, op: Operation, *, expected_version: int) -> Operation:
        async def work(conn: aiosqlite.Connection) -> tuple[Operation, bool]:
            return await _compare_and_set(conn, op, expected_version), True

        return await self._write(work)

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        found: list[Operation] = []
        for chunk in _chunks(list(dict.fromkeys(op_ids))):
            sql = f"{_SELECT} WHERE id IN ({', '.join('?' * len(chunk))})"
            found.extend(from_row(r) for r in await self._read(sql, chunk))
        return found

    async def apply_many(self, op_ids: Collection[str], change: Change) -> list[Operation]:
        ids = list(dict.fromkeys(op_ids))
        if not ids:
            return []

        async def work(conn: aiosqlite.Connection) -> tuple[list[Operation], bool]:
            current: list[Operation] = []
            for chunk in _chunks(ids):
                sql = f"{_SELECT} WHERE id IN ({', '.join('?' * len(chunk))})"
                current.extend(from_row(r) for r in await run(conn, sql, chunk))
            changed = [change(op) for op in current]  # all or nothing, should one raise
            result: list[Operation] = []
            for op, new in zip(current, changed, strict=True):
                stored = op if new is None else await _compare_and_set(conn, new, op.version)
                result.append(stored)
            return result, any(new is not None for new in changed)

        return await self._write(work)

    async def delete(self, op_id: str) -> None:
        async def work(conn: aiosqlite.Connection) -> tuple[None, bool]:
            if not await run(conn, "DELETE FROM operations WHERE id = ? RETURNING id", (op_id,)):
                raise OperationNotFound(f"operation {op_id} not found")
            return None, True

        await self._write(work)

    async def claim(
        self, *, kinds: Collection[str], queues: Collection[str], now: datetime, claim: Claim
    ) -> Operation | None:
        kind_list, queue_list = list(kinds), list(queues)
        if not kind_list or not queue_list:
            return None
        sql = _CLAIMABLE.format(
            kinds=", ".join("?" * len(kind_list)), queues=", ".join("?" * len(queue_list))
        )
        params: list[SqlValue] = [*kind_list, *queue_list, to_micros(now)]

        async def work(conn: aiosqlite.Connection) -> tuple[Operation | None, bool]:
            rows = await run(conn, sql, params)
            if not rows:
                return None, False
            current = from_row(rows[0])
            return await _compare_and_set(conn, claim(current), current.version), True

        return await self._write(work)

    async def expired_leases(self, *, now: datetime, limit: int) -> list[Operation]:
        sql = (
            f"{_SELECT} WHERE state = 'RUNNING' AND lease_expires_at < ?"
            " ORDER BY lease_expires_at, id LIMIT ?"
        )
        return [from_row(r) for r in await self._read(sql, (to_micros(now), max(limit, 0)))]

    async def overdue_pending(self, *, now: datetime, limit: int) -> list[Operation]:
        sql = f"{_SELECT} WHERE state = 'PENDING' AND deadline < ? ORDER BY deadline, id LIMIT ?"
        return [from_row(r) for r in await self._read(sql, (to_micros(now), max(limit, 0)))]

    async def purge_finished(self, *, ended_before: datetime, limit: int) -> int:
        forgotten = (
            "DELETE FROM operations WHERE id IN (SELECT id FROM operations"
            f" WHERE forgotten_at IS NOT NULL AND state IN {TERMINAL_STATES} LIMIT ?) RETURNING id"
        )
        expired = (
            "DELETE FROM operations WHERE id IN (SELECT id FROM operations"
            f" WHERE state IN {TERMINAL_STATES} AND end_time < ? ORDER BY end_time, id LIMIT ?)"
            " RETURNING id"
        )

        async def work(conn: aiosqlite.Connection) -> tuple[int, bool]:
            deleted = len(await run(conn, forgotten, (max(limit, 0),)))
            left = max(limit - deleted, 0)
            deleted += len(await run(conn, expired, (to_micros(ended_before), left)))
            return deleted, deleted > 0

        return await self._write(work)

    def change_count(self) -> int:
        return self._changes.value

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        return await self._changes.wait(seen, timeout)

    async def _write(self, work: Work[_T]) -> _T:
        return await self._writes.run(self._write_now(work))

    async def _write_now(self, work: Work[_T]) -> _T:
        async with self._write_lock:
            conn = _require(self._writer)
            try:
                result, changed = await transaction(conn, work)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite write failed: {exc}") from exc
            except UnicodeEncodeError as exc:
                raise _unencodable(exc) from exc
        if changed:
            self._changes.bump()
        return result

    async def _read(self, sql: str, params: Params = ()) -> list[Row]:
        conn = _require(self._reader)
        try:
            return await run(conn, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc

    async def _disconnect(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                try:
                    await conn.close()
                except sqlite3.Error:
                    _log.exception("closing %s failed", self.path)
        self._reader = self._writer = None


def _require(conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
    if conn is None:
        raise StoreError("the SQLite store is not open")
    return conn


def _unencodable(exc: UnicodeEncodeError) -> InvalidRequest:
    # JSON may carry lone surrogates ("\\ud800"), which no UTF-8 database can store.
    return InvalidRequest(f"text is not valid Unicode: {exc.reason}", reason="INVALID_TEXT")


async def _compare_and_set(
    conn: aiosqlite.Connection, op: Operation, expected_version: int
) -> Operation:
    stored = dataclasses.replace(op, version=expected_version + 1)
    try:
        rows = await run(conn, _UPDATE, (*to_row(stored)[1:], op.id, expected_version))
    except sqlite3.IntegrityError as exc:
        raise OperationAlreadyExists(
            f"another operation in {op.parent} already has request id {op.request_id!r}"
        ) from exc
    if not rows:
        current = await run(conn, "SELECT version FROM operations WHERE id = ?", (op.id,))
        if not current:
            raise OperationNotFound(f"operation {op.id} not found")
        raise StoreConflict(
            f"operation {op.id} is at version {current[0][0]}, not {expected_version}"
        )
    return stored


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    """Keep `IN (...)` lists well under SQLite's bound-parameter limit."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]
