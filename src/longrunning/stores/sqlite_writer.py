"""The one writer connection of a SQLite store, with group commit.

Writes are plain functions of a `sqlite3.Connection`. Whatever writes arrive while a commit is in
progress run together next, each in its own savepoint, under one BEGIN IMMEDIATE and one COMMIT,
in one hop to the writer's thread: one fsync for the whole group, and no event-loop round trip
per statement (ADR 0026). A write's caller learns its result only after that COMMIT, so an
acknowledged write is durable exactly as before; a write that raises is rolled back to its
savepoint and fails alone. No operation semantics here: those live in `stores.sqlite`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from longrunning.core.errors import StoreError

_T = TypeVar("_T")
_log = logging.getLogger("longrunning.stores.sqlite")

SyncWork = Callable[[sqlite3.Connection], tuple[_T, bool]]
"""A write transaction's body: its result, and whether it changed anything."""

MAX_GROUP = 512
"""Writes committed together at most; bounds how long one group holds the write lock."""
ANALYZE_EVERY_SECONDS = 3600.0
"""How often the writer refreshes the planner's statistics while writes keep coming."""
ANALYSIS_LIMIT = 1000
"""Rows ANALYZE samples per index: milliseconds at a million rows, and plans as good."""

_Outcome = tuple[bool, Any]  # (succeeded, result or exception)


class GroupCommitWriter:
    """Owns `conn` once given it: only the writer's thread touches it from then on."""

    def __init__(self, conn: sqlite3.Connection, on_change: Callable[[], None]) -> None:
        self._conn = conn
        self._on_change = on_change
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._waiting: list[tuple[SyncWork[Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False
        self.groups_committed = 0
        """Groups this writer committed (its fsyncs): fewer than writes when they overlap."""
        self._next_analyze = time.monotonic() + ANALYZE_EVERY_SECONDS

    async def write(self, work: SyncWork[_T]) -> _T:
        """Run `work` in the next group; return its result once that group is committed.

        A caller cancelled while waiting does not cut the group short: its write is still
        either wholly stored or not at all."""
        if self._closed:
            raise StoreError("the SQLite store is closed")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_groups(), name="sqlite-writer")
        return await future

    async def call(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `function` on the connection in the writer's thread, outside any group (setup)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, self._conn)

    async def analyze(self) -> None:
        """Refresh the query planner's statistics if they are missing or stale (sampled, so
        quick). Without them SQLite guesses, and at a million rows picks a sort over the index
        that walks in order."""
        self._next_analyze = time.monotonic() + ANALYZE_EVERY_SECONDS
        await self.call(_analyze)

    async def close(self) -> None:
        """Commit what is waiting, then close the connection."""
        self._closed = True
        if self._committer is not None:
            await asyncio.shield(self._committer)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._conn.close)
        self._thread.shutdown(wait=True)

    async def _commit_groups(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group = self._waiting[:MAX_GROUP]
                del self._waiting[:MAX_GROUP]
                works = [work for work, _ in group]
                try:
                    outcomes, changed = await loop.run_in_executor(
                        self._thread, _run_group, self._conn, works
                    )
                except sqlite3.Error as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(StoreError(f"SQLite write failed: {exc}"))
                    continue
                self.groups_committed += 1
                if changed:
                    self._on_change()
                for (_, future), (succeeded, value) in zip(group, outcomes, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if succeeded:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                if time.monotonic() >= self._next_analyze:
                    try:
                        await self.analyze()
                    except sqlite3.Error as exc:
                        _log.warning("ANALYZE failed (the planner keeps its statistics): %s", exc)
        finally:
            self._committer = None
            # Only when this task itself is cancelled (the loop is going away) is anything left.
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()


def _analyze(conn: sqlite3.Connection) -> None:
    """ANALYZE when the statistics are missing or the table's size moved past a factor of two
    since: another write (and a wake-up of every other process) would change nothing."""
    (rows,) = conn.execute("SELECT max(rowid) FROM operations").fetchone()
    if rows is None:
        return  # empty: nothing to learn yet
    analyzed = (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchone()
        and conn.execute(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'operations' AND idx IS NOT NULL LIMIT 1"
        ).fetchone()
    )
    if analyzed:
        recorded = int(str(analyzed[0]).split()[0])
        if recorded // 2 <= rows <= 2 * recorded + 1000:
            return
    conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    conn.execute("ANALYZE")


def _run_group(conn: sqlite3.Connection, works: list[SyncWork[Any]]) -> tuple[list[_Outcome], bool]:
    """In the writer's thread: every work in its savepoint, then one COMMIT. Raises
    sqlite3.Error, with everything rolled back, if the group as a whole cannot commit."""
    outcomes: list[_Outcome] = []
    changed = False
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    # writes can fail with SQLITE_BUSY without waiting when another process wrote meanwhile.
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute("SAVEPOINT work")
            try:
                result, did_change = work(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO work")
                conn.execute("RELEASE work")
                outcomes.append((False, exc))
                continue
            conn.execute("RELEASE work")
            outcomes.append((True, result))
            changed = changed or did_change
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                _log.exception("rollback failed")
        raise
    return outcomes, changed
