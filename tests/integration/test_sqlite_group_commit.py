"""Group commit on a real SQLite file: writes that overlap share one COMMIT, each in its own
savepoint, so one failing write fails alone; a group that cannot commit fails every write in it;
nothing is acknowledged before its COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from longrunning.core.errors import OperationAlreadyExists, StoreError
from longrunning.stores import SQLiteStore
from longrunning.stores.sqlite_connections import connect_writer
from longrunning.stores.sqlite_writer import GroupCommitWriter
from longrunning.testing import make_operation


def stored_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM operations")}


async def test_overlapping_inserts_share_commits_and_all_land(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        writer = store._writer
        assert writer is not None
        before = writer.groups_committed
        ops = [make_operation() for _ in range(200)]
        await asyncio.gather(*(store.insert(op) for op in ops))
        groups = writer.groups_committed - before
    finally:
        await store.close()
    assert stored_ids(path) == {op.id for op in ops}
    assert 1 <= groups < 100, f"{groups} commits for 200 overlapping inserts"


async def test_a_failing_write_fails_alone_in_its_group(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        existing = await store.insert(make_operation())
        fresh = [make_operation() for _ in range(20)]
        results = await asyncio.gather(
            *(store.insert(op) for op in fresh[:10]),
            store.insert(existing),  # the same id again: OperationAlreadyExists
            *(store.insert(op) for op in fresh[10:]),
            return_exceptions=True,
        )
    finally:
        await store.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], OperationAlreadyExists)
    assert stored_ids(path) == {existing.id} | {op.id for op in fresh}


async def test_a_group_that_cannot_commit_fails_every_write_in_it(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    conn = await asyncio.to_thread(connect_writer, path)
    writer = GroupCommitWriter(conn, lambda: None)
    await writer.call(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))

    def insert(value: int) -> tuple[int, bool]:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        return value, True

    def sabotage(c: sqlite3.Connection) -> tuple[None, bool]:
        c.execute("ROLLBACK")  # ends the group's transaction under it
        return None, True

    try:
        results = await asyncio.gather(
            writer.write(lambda c: insert(1)),
            writer.write(sabotage),
            writer.write(lambda c: insert(2)),
            return_exceptions=True,
        )
        # The first write may have gone alone in an earlier group; later ones never commit.
        assert isinstance(results[1], StoreError) and isinstance(results[2], StoreError)
        committed = {r for r in results if isinstance(r, int)}
        rows = await writer.call(lambda c: {v for (v,) in c.execute("SELECT v FROM t")})
        assert rows == committed
        assert await writer.write(lambda c: insert(3)) == 3  # the writer goes on
    finally:
        await writer.close()


async def test_a_closed_writer_refuses_writes(tmp_path: Path) -> None:
    conn = await asyncio.to_thread(connect_writer, tmp_path / "ops.db")
    writer = GroupCommitWriter(conn, lambda: None)
    await writer.close()
    with pytest.raises(StoreError, match="closed"):
        await writer.write(lambda c: (None, False))
