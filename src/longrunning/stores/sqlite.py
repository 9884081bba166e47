"""SQLiteStore: operations in one SQLite file that a server and its workers may share.

Every write is a plain function run in its own savepoint on the single writer connection, group
committed with whatever other writes arrived meanwhile (`stores.sqlite_writer`); reads use a
second connection and, thanks to WAL, never wait for writes. No lifecycle rules here: claims
apply the caller's pure transition, and every change is a version compare-and-set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
from collections.abc import Collection, Sequence
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
from longrunning.core.lifecycle import check_same_request
from longrunning.core.listing import OperationQuery, Page, page_of
from longrunning.core.operation import Operation
from longrunning.core.ports import Change, Claim, NewOperation
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
from longrunning.stores.changes import ChangeCounter
from longrunning.stores.migrate import apply, check, load_migrations
from longrunning.stores.sql_filter import where_sql
from longrunning.stores.sqlite_connections import (
    MIN_SQLITE_VERSION,
    Params,
    Row,
    SQLiteSchema,
    connect_point_reader,
    connect_reader,
    connect_writer,
    run,
    run_sync,
)
from longrunning.stores.sqlite_watch import DataVersionWatcher
from longrunning.stores.sqlite_writer import GroupCommitWriter, SyncWork

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_C = TypeVar("_C", aiosqlite.Connection, GroupCommitWriter)

_SELECT = f"SELECT {SELECT_COLUMNS} FROM operations"
_INSERT = f"INSERT INTO operations ({SELECT_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})"
_VERSION = COLUMNS.index("version")
_ACTIVE_ON_TARGET = (
    f"SELECT id FROM operations WHERE target = ? AND state IN {ACTIVE_STATES} LIMIT 1"
)
# INDEXED BY: the claim walks the pending rows oldest first and stops at the first few. Left to
# itself, without statistics (a young store), SQLite chose operations_by_kind and walked every
# finished operation of the kind before the first pending one: ~1 ms a claim at 4,000 finished,
# growing with the history, where walking operations_pending costs ~80 µs whatever it holds.
# The redundant IN term lets the planner use the partial index on active targets.
_CLAIMABLE = (
    f"{_SELECT} AS o INDEXED BY operations_pending"
    " WHERE o.state = 'PENDING' AND o.cancel_requested_at IS NULL"
    " AND o.kind IN ({kinds}) AND o.queue IN ({queues})"
    " AND (o.not_before IS NULL OR o.not_before <= ?)"
    " AND (o.target IS NULL OR NOT EXISTS (SELECT 1 FROM operations AS r"
    f" WHERE r.target = o.target AND r.state IN {ACTIVE_STATES} AND r.state = 'RUNNING'))"
    " ORDER BY o.create_time, o.id LIMIT ?"
)


class SQLiteStore:
    """With `migrate=False`, `open` only checks that every migration was applied."""

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise InvalidRequest("SQLiteStore needs a file path; use memory:// for a memory store")
        self.path = Path(path)
        self.migrate = migrate
        self._writer: GroupCommitWriter | None = None
        self._reader: aiosqlite.Connection | None = None
        self._point_reader: sqlite3.Connection | None = None
        self._changes = ChangeCounter()
        self._watcher: DataVersionWatcher | None = None

    async def open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; 3.37 or newer needed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await asyncio.to_thread(connect_writer, self.path)
            self._writer = GroupCommitWriter(conn, self._changes.bump)
            schema, migrations = SQLiteSchema(self._writer), load_migrations("sqlite")
            if self.migrate:
                await apply(schema, migrations)
            else:
                await check(schema, migrations)
            await self._writer.analyze()
            self._reader = await connect_reader(self.path)
            self._point_reader = connect_point_reader(self.path)
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
        await self._disconnect()

    async def ping(self) -> None:
        await self._read("SELECT 1")

    async def insert(self, op: Operation, *, exclusive_target: bool = False) -> Operation:
        return await self._write(lambda conn: _insert(conn, op, exclusive_target=exclusive_target))

    async def insert_many(self, new: Sequence[NewOperation]) -> list[Operation]:
        batch = list(new)
        if not batch:
            return []

        def work(conn: sqlite3.Connection) -> tuple[list[Operation], bool]:
            results = [_insert(conn, n.op, exclusive_target=n.exclusive_target) for n in batch]
            for n, (stored, _) in zip(batch, results, strict=True):
                check_same_request(n.op, stored)
            return [stored for stored, _ in results], any(created for _, created in results)

        return await self._write(work)

    async def get(self, op_id: str) -> Operation:
        rows = await self._point_read(f"{_SELECT} WHERE id = ?", (op_id,))
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
        def work(conn: sqlite3.Connection) -> tuple[Operation, bool]:
            return _compare_and_set(conn, op, expected_version), True

        return await self._write(work)

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        found: list[Operation] = []
        for chunk in _chunks(list(dict.fromkeys(op_ids))):
            sql = f"{_SELECT} WHERE id IN ({', '.join('?' * len(chunk))})"
            found.extend(from_row(r) for r in await self._point_read(sql, chunk))
        return found

    async def cancel_requested(self, op_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(op_ids))):
            sql = (
                f"SELECT id FROM operations WHERE id IN ({', '.join('?' * len(chunk))})"
                " AND cancel_requested_at IS NOT NULL"
            )
            found.update(row[0] for row in await self._point_read(sql, chunk))
        return found

    async def apply_many(self, op_ids: Collection[str], change: Change) -> list[Operation]:
        ids = list(dict.fromkeys(op_ids))
        if not ids:
            return []

        def work(conn: sqlite3.Connection) -> tuple[list[Operation], bool]:
            rows: list[Row] = []
            for chunk in _chunks(ids):
                sql = f"{_SELECT} WHERE id IN ({', '.join('?' * len(chunk))})"
                rows.extend(run_sync(conn, sql, chunk))
            current = [from_row(row) for row in rows]
            changed = [change(op) for op in current]  # all or nothing, should one raise
            result: list[Operation] = []
            for row, op, new in zip(rows, current, changed, strict=True):
                # The row was just read in this transaction: no second read per operation.
                stored = op if new is None else _compare_and_set(conn, new, op.version, row)
                result.append(stored)
            return result, any(new is not None for new in changed)

        return await self._write(work)

    async def delete(self, op_id: str) -> None:
        def work(conn: sqlite3.Connection) -> tuple[None, bool]:
            if not run_sync(conn, "DELETE FROM operations WHERE id = ? RETURNING id", (op_id,)):
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
        sql = _CLAIMABLE.format(
            kinds=", ".join("?" * len(kind_list)), queues=", ".join("?" * len(queue_list))
        )
        params: list[SqlValue] = [*kind_list, *queue_list, to_micros(now)]

        def work(conn: sqlite3.Connection) -> tuple[list[Operation], bool]:
            # The write lock is held: nobody claims meanwhile, so one query hands over many
            # candidates. A second candidate on a target claimed in this batch is passed over;
            # the next query no longer finds it, the first being RUNNING by then.
            claimed: list[Operation] = []
            targets: set[str] = set()
            while len(claimed) < limit:
                wanted = limit - len(claimed)
                rows = run_sync(conn, sql, [*params, wanted])
                before = len(claimed)
                for row in rows:
                    current = from_row(row)
                    if current.target is not None:
                        if current.target in targets:
                            continue
                        targets.add(current.target)
                    claimed.append(_compare_and_set(conn, claim(current), current.version, row))
                if len(rows) < wanted or len(claimed) == before:
                    break  # nothing more is claimable
            return claimed, bool(claimed)

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

        def work(conn: sqlite3.Connection) -> tuple[int, bool]:
            deleted = len(run_sync(conn, forgotten, (max(limit, 0),)))
            left = max(limit - deleted, 0)
            deleted += len(run_sync(conn, expired, (to_micros(ended_before), left)))
            return deleted, deleted > 0

        return await self._write(work)

    def change_count(self) -> int:
        return self._changes.value

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        return await self._changes.wait(seen, timeout)

    async def _write(self, work: SyncWork[_T]) -> _T:
        try:
            return await _require(self._writer).write(work)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc

    async def _read(self, sql: str, params: Params = ()) -> list[Row]:
        conn = _require(self._reader)
        try:
            return await run(conn, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc

    async def _point_read(self, sql: str, params: Params) -> list[Row]:
        """A read by primary key, on the event loop's own thread: it takes microseconds, where a
        hop to the reader's thread and back cost more than the read and serialized a busy
        server's GETs (W4: 2,500/s inline 5,400/s). Should the file be busy (a reader waits only
        in rare moments of WAL bookkeeping), the read goes to the reader's thread instead, so
        the loop never waits longer than POINT_READ_BUSY_MS."""
        conn = self._point_reader
        if conn is None:
            raise StoreError("the SQLite store is not open")
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise StoreError(f"SQLite read failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unencodable(exc) from exc
        return await self._read(sql, params)

    async def _disconnect(self) -> None:
        if self._point_reader is not None:
            self._point_reader.close()
            self._point_reader = None
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        if reader is not None:
            try:
                await reader.close()
            except sqlite3.Error:
                _log.exception("closing %s failed", self.path)
        if writer is not None:
            try:
                await writer.close()
            except sqlite3.Error:
                _log.exception("closing %s failed", self.path)


def _require(conn: _C | None) -> _C:
    if conn is None:
        raise StoreError("the SQLite store is not open")
    return conn


def _unencodable(exc: UnicodeEncodeError) -> InvalidRequest:
    # JSON may carry lone surrogates ("\\ud800"), which no UTF-8 database can store.
    return InvalidRequest(f"text is not valid Unicode: {exc.reason}", reason="INVALID_TEXT")


def _insert(
    conn: sqlite3.Connection, op: Operation, *, exclusive_target: bool
) -> tuple[Operation, bool]:
    """`insert` inside a write: the operation as stored, and whether it is new."""
    if op.request_id is not None:
        sql = f"{_SELECT} WHERE parent = ? AND request_id = ?"
        rows = run_sync(conn, sql, (op.parent, op.request_id))
        if rows:
            return from_row(rows[0]), False
    if exclusive_target and op.target is not None:
        holders = run_sync(conn, _ACTIVE_ON_TARGET, (op.target,))
        if holders:
            raise TargetBusy(f"target {op.target!r} is busy with operation {holders[0][0]}")
    stored = dataclasses.replace(op, version=1)
    try:
        run_sync(conn, _INSERT, to_row(stored))
    except sqlite3.IntegrityError as exc:
        # The request id was looked up above, under the write lock: only the id can clash.
        if "operations.id" not in str(exc):
            raise
        raise OperationAlreadyExists(
            f"operation {op.id} already exists", reason="OPERATION_EXISTS"
        ) from None
    return stored, True


def _compare_and_set(
    conn: sqlite3.Connection, op: Operation, expected_version: int, row: Row | None = None
) -> Operation:
    """Store `op` if the stored version is `expected_version`; `row` is the stored row when
    the caller has just read it in this transaction."""
    stored = dataclasses.replace(op, version=expected_version + 1)
    if row is None:
        found = run_sync(conn, f"{_SELECT} WHERE id = ?", (op.id,))
        if not found:
            raise OperationNotFound(f"operation {op.id} not found")
        row = found[0]
    if row[_VERSION] != expected_version:
        raise StoreConflict(
            f"operation {op.id} is at version {row[_VERSION]}, not {expected_version}"
        )
    # Only the columns that changed: SQLite rewrites the entry of every index whose column
    # appears in SET, changed or not, and the table has a dozen (a full-row UPDATE cost 3x).
    new = to_row(stored)
    changed = [i for i in range(1, len(COLUMNS)) if new[i] != row[i]]
    assignments = ", ".join(f"{COLUMNS[i]} = ?" for i in changed)
    sql = f"UPDATE operations SET {assignments} WHERE id = ? AND version = ?"
    try:
        run_sync(conn, sql, (*(new[i] for i in changed), op.id, expected_version))
    except sqlite3.IntegrityError as exc:
        raise OperationAlreadyExists(
            f"another operation in {op.parent} already has request id {op.request_id!r}"
        ) from exc
    return stored


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    """Keep `IN (...)` lists well under SQLite's bound-parameter limit."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]
