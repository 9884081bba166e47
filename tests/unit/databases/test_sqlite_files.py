"""The work on SQLite files: create, copy in steps (stoppable, leaving nothing behind), drop."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrunning.core.errors import Code
from longrunning.databases import sqlite_files
from longrunning.engine.context import OperationFailed

ROWS = 3000


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def rows(path: Path) -> list[tuple[int, str, bytes]]:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT id, name, pad FROM t ORDER BY id").fetchall()


def make_source(path: Path, *, wal: bool = False) -> None:
    """A database of many pages (ROWS rows of ~300 bytes: a few hundred 4 KiB pages)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pad BLOB)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, randomblob(256))",
            [(i, f"row {i}") for i in range(ROWS)],
        )
        conn.execute("COMMIT")


def page_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def listing(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


class Stop(Exception):
    """What a progress callback raises to stop a copy, as a cancel's checkpoint does."""


# Create -------------------------------------------------------------------------------------


def test_create_empty_makes_a_valid_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "sales.sqlite3"
    sqlite_files.create_empty(path, "sales")
    assert path.stat().st_size > 0  # a real header, not an empty file
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert integrity(path) == "ok"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema").fetchone() == (0,)
        conn.execute("CREATE TABLE t (x)")  # writable
    assert listing(path.parent) == ["sales.sqlite3"]  # nothing aside is left


def test_create_empty_refuses_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    make_source(path)
    before = path.read_bytes()
    with pytest.raises(OperationFailed, match="'sales' already exists") as caught:
        sqlite_files.create_empty(path, "sales")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert caught.value.failure.is_user_error
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["sales.sqlite3"]


# Copy ---------------------------------------------------------------------------------------


def test_copy_reports_monotonic_progress_and_copies_every_row(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    pages = page_count(source)
    assert pages > 50
    seen: list[tuple[int, int]] = []

    copied = sqlite_files.copy(
        source,
        target,
        "copy",
        pages_per_step=7,
        pause_seconds=0,
        progress=lambda done, total: seen.append((done, total)),
    )

    assert copied == pages
    assert len(seen) == -(-pages // 7)  # one report per step
    assert seen[-1] == (pages, pages)
    assert all(total == pages for _, total in seen)
    dones = [done for done, _ in seen]
    assert dones == sorted(dones) and len(set(dones)) == len(dones)
    assert all(0 < done <= pages for done in dones)
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)
    assert len(rows(target)) == ROWS
    assert listing(tmp_path) == ["copy.sqlite3", "orders.sqlite3"]


def test_copy_pauses_between_steps_but_not_after_the_last(tmp_path: Path) -> None:
    source = tmp_path / "orders.sqlite3"
    make_source(source)
    pauses: list[float] = []
    reports: list[int] = []
    sqlite_files.copy(
        source,
        tmp_path / "copy.sqlite3",
        "copy",
        pages_per_step=100,
        pause_seconds=0.5,
        progress=lambda done, total: reports.append(done),
        pause=pauses.append,
    )
    assert len(reports) >= 2
    assert pauses == [0.5] * (len(reports) - 1)


def test_a_progress_callback_raising_stops_the_copy_and_leaves_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    before_bytes = source.read_bytes()
    before_rows = rows(source)
    seen: list[tuple[int, int]] = []
    aside_existed: list[bool] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        # The copy is really under way, in a hidden file beside the target.
        aside_existed.append(any(name.endswith(".partial") for name in listing(tmp_path)))
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        sqlite_files.copy(
            source, target, "copy", pages_per_step=5, pause_seconds=0, progress=progress
        )

    assert len(seen) == 3 and seen[-1][0] < seen[-1][1]
    assert aside_existed == [True, True, True]
    assert listing(tmp_path) == ["orders.sqlite3"]  # no partial file, no -journal, no target
    assert source.read_bytes() == before_bytes
    assert integrity(source) == "ok"
    assert rows(source) == before_rows


def test_a_stop_at_the_very_last_step_still_leaves_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)

    def progress(done: int, total: int) -> None:
        if done == total:
            raise Stop

    with pytest.raises(Stop):
        sqlite_files.copy(
            source, target, "copy", pages_per_step=50, pause_seconds=0, progress=progress
        )
    assert listing(tmp_path) == ["orders.sqlite3"]


def test_a_stop_during_the_pause_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "orders.sqlite3"
    make_source(source)

    def pause(seconds: float) -> None:
        raise Stop

    with pytest.raises(Stop):
        sqlite_files.copy(
            source,
            tmp_path / "copy.sqlite3",
            "copy",
            pages_per_step=5,
            pause_seconds=1.0,
            progress=lambda done, total: None,
            pause=pause,
        )
    assert listing(tmp_path) == ["orders.sqlite3"]


def test_copy_of_a_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(OperationFailed, match="does not exist") as caught:
        sqlite_files.copy(
            tmp_path / "missing.sqlite3",
            tmp_path / "copy.sqlite3",
            "copy",
            pages_per_step=5,
            pause_seconds=0,
            progress=lambda done, total: None,
        )
    assert caught.value.failure.code is Code.NOT_FOUND
    assert listing(tmp_path) == []


def test_copy_onto_an_existing_database_is_refused(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    sqlite_files.create_empty(target, "copy")
    before = target.read_bytes()
    with pytest.raises(OperationFailed) as caught:
        sqlite_files.copy(
            source, target, "copy", pages_per_step=5, pause_seconds=0, progress=lambda d, t: None
        )
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert target.read_bytes() == before
    assert listing(tmp_path) == ["copy.sqlite3", "orders.sqlite3"]


def test_copy_of_a_file_that_is_not_a_database_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "junk.sqlite3"
    source.write_bytes(b"this is not a database, only words " * 200)
    with pytest.raises(OperationFailed, match=r"copying junk\.sqlite3 failed") as caught:
        sqlite_files.copy(
            source,
            tmp_path / "copy.sqlite3",
            "copy",
            pages_per_step=5,
            pause_seconds=0,
            progress=lambda done, total: None,
        )
    assert caught.value.failure.code is Code.INTERNAL
    assert listing(tmp_path) == ["junk.sqlite3"]


def test_copy_of_a_live_wal_source_being_written_is_consistent(tmp_path: Path) -> None:
    """A writer keeps adding rows, each with its count in `n`: the copy must agree with itself."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source, wal=True)
    keeper = sqlite3.connect(source, isolation_level=None, check_same_thread=False)
    keeper.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
    keeper.execute("INSERT INTO counter VALUES (?)", (ROWS,))
    writes = 40
    written = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            started.wait(10)
            for i in range(writes):
                keeper.execute("BEGIN IMMEDIATE")
                keeper.execute(
                    "INSERT INTO t VALUES (?, ?, randomblob(256))", (ROWS + i, f"late {i}")
                )
                keeper.execute("UPDATE counter SET n = n + 1")
                keeper.execute("COMMIT")
                time.sleep(0.002)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reports = 0

    def progress(done: int, total: int) -> None:
        nonlocal reports
        reports += 1
        started.set()

    try:
        copied = sqlite_files.copy(
            source,
            target,
            "copy",
            pages_per_step=4,
            pause_seconds=0.001,
            progress=progress,
            pause=time.sleep,
        )
        assert written.wait(10)
        thread.join(10)
    finally:
        started.set()
        thread.join(10)
        keeper.close()

    assert errors == []
    assert copied > 0 and reports > 0
    assert integrity(target) == "ok"
    with contextlib.closing(sqlite3.connect(target)) as conn:
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        (n,) = conn.execute("SELECT n FROM counter").fetchone()
        late = conn.execute("SELECT count(*) FROM t WHERE name LIKE 'late %'").fetchone()[0]
        ids = [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")]
    assert count == n  # one snapshot: rows and counter from the same transaction
    assert ids == list(range(count))  # a prefix of the writer's inserts, no gaps
    assert 0 <= late <= writes
    assert integrity(source) == "ok"
    with contextlib.closing(sqlite3.connect(source)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROWS + writes,)


def test_copy_includes_writes_made_to_a_wal_source_mid_copy(tmp_path: Path) -> None:
    """Writes between steps (by another connection) restart SQLite's backup: the copy has them."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source, wal=True)
    seen: list[int] = []
    with contextlib.closing(sqlite3.connect(source, isolation_level=None)) as other:

        def progress(done: int, total: int) -> None:
            seen.append(done)
            if len(seen) in (2, 5):
                other.execute("INSERT INTO t VALUES (?, 'mid-copy', x'00')", (ROWS + len(seen),))

        sqlite_files.copy(
            source, target, "copy", pages_per_step=10, pause_seconds=0, progress=progress
        )
    assert any(b < a for a, b in itertools.pairwise(seen))  # the backup started over
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)
    assert [r[0] for r in rows(target)][-2:] == [ROWS + 2, ROWS + 5]


# Drop and describe --------------------------------------------------------------------------


def test_drop_removes_the_file_and_its_side_files(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    make_source(path, wal=True)
    for side in ("-wal", "-shm", "-journal"):
        (tmp_path / f"sales.sqlite3{side}").write_bytes(b"x")
    (tmp_path / "other.sqlite3").write_bytes(b"")
    (tmp_path / "other.sqlite3-wal").write_bytes(b"")
    sqlite_files.drop(path, "sales")
    assert listing(tmp_path) == ["other.sqlite3", "other.sqlite3-wal"]


def test_drop_of_a_missing_database_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "sales.sqlite3-wal").write_bytes(b"x")  # a stray side file is not a database
    with pytest.raises(OperationFailed, match="'sales' does not exist") as caught:
        sqlite_files.drop(tmp_path / "sales.sqlite3", "sales")
    assert caught.value.failure.code is Code.NOT_FOUND
    assert listing(tmp_path) == ["sales.sqlite3-wal"]


def test_describe(tmp_path: Path) -> None:
    path = tmp_path / "sales.sqlite3"
    assert sqlite_files.describe(path) is None
    sqlite_files.create_empty(path, "sales")
    found = sqlite_files.describe(path)
    assert found is not None
    assert found.path == path and found.size_bytes == path.stat().st_size > 0
    assert found.modified.tzinfo is UTC
    assert abs(found.modified - datetime.now(UTC)) < timedelta(minutes=1)
