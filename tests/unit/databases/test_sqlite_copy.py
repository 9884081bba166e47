"""The copy of a SQLite database in steps (SQLite's online backup): progress at every step,
stoppable at any step leaving nothing behind, consistent while others write the source."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from longrunning.core.errors import Code
from longrunning.databases import sqlite_files
from longrunning.engine.context import OperationFailed
from tests.unit.databases.sqlite_samples import (
    ROWS,
    error_info,
    integrity,
    listing,
    make_source,
    page_count,
    rows,
)


def copy(
    source: Path,
    target: Path,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    max_pages_per_step: int = 256,
    pause_seconds: float = 0,
    pause: Callable[[float], None] = time.sleep,
    immutable_source: bool = False,
) -> sqlite_files.Copied:
    return sqlite_files.copy(
        source,
        target,
        source_name="database 'orders'",
        name="database 'copy'",
        max_pages_per_step=max_pages_per_step,
        pause_seconds=pause_seconds,
        progress=progress,
        pause=pause,
        immutable_source=immutable_source,
    )


class Stop(Exception):
    """What a progress callback raises to stop a copy, as a cancel's checkpoint does."""


@pytest.mark.parametrize(
    ("limit", "pages", "expected"),
    [(256, 0, 1), (256, 199, 1), (256, 400, 2), (256, 1_000_000, 256), (7, 5000, 7), (1, 9, 1)],
)
def test_pages_per_step_keeps_every_step_within_half_a_percent(
    limit: int, pages: int, expected: int
) -> None:
    per_step = sqlite_files.pages_per_step(limit, pages)
    assert per_step == expected
    assert per_step <= max(1, pages / 200)


def test_copy_reports_every_step_monotonic_and_copies_every_row(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source, rows=20_000)
    pages = page_count(source)
    assert pages > 1000
    seen: list[tuple[int, int]] = []

    copied = copy(source, target, progress=lambda done, total: seen.append((done, total)))

    assert copied.pages == pages
    assert copied.pages_per_step == pages // 200
    assert copied.steps == len(seen) == -(-pages // copied.pages_per_step)  # one report a step
    assert seen[-1] == (pages, pages)
    assert all(total == pages for _, total in seen)
    dones = [0] + [done for done, _ in seen]
    assert all(0 < b - a <= pages / 200 for a, b in itertools.pairwise(dones))  # ≤ 0.5 % apart
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)
    assert listing(tmp_path) == ["copy.sqlite3", "orders.sqlite3"]


def test_a_small_database_is_copied_a_page_a_step(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source, rows=100)
    seen: list[int] = []
    copied = copy(source, target, progress=lambda done, total: seen.append(done))
    assert copied.pages_per_step == 1
    assert seen == list(range(1, page_count(source) + 1))


def test_copy_pauses_between_steps_but_not_after_the_last(tmp_path: Path) -> None:
    source = tmp_path / "orders.sqlite3"
    make_source(source)
    pauses: list[float] = []
    reports: list[int] = []
    copy(
        source,
        tmp_path / "copy.sqlite3",
        progress=lambda done, total: reports.append(done),
        pause_seconds=0.5,
        pause=pauses.append,
    )
    assert len(reports) >= 2
    assert pauses == [0.5] * (len(reports) - 1)


@pytest.mark.parametrize("stop_at", [1, 3, 50, -1])
def test_a_progress_callback_raising_stops_the_copy_and_leaves_nothing(
    tmp_path: Path, stop_at: int
) -> None:
    """At the first, an early, a middle and the very last step (-1)."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    before_bytes = source.read_bytes()
    seen: list[tuple[int, int]] = []
    aside_existed: list[bool] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        # The copy is really under way, in a hidden file beside the target.
        aside_existed.append(any(name.endswith(".partial") for name in listing(tmp_path)))
        if len(seen) == stop_at or (stop_at == -1 and done == total):
            raise Stop

    with pytest.raises(Stop):
        copy(source, target, progress=progress)

    assert all(aside_existed) and seen
    assert (seen[-1][0] == seen[-1][1]) == (stop_at == -1)
    assert listing(tmp_path) == ["orders.sqlite3"]  # no partial file, no -journal, no target
    assert source.read_bytes() == before_bytes
    assert integrity(source) == "ok"


def test_a_stop_during_the_pause_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "orders.sqlite3"
    make_source(source)

    def pause(seconds: float) -> None:
        raise Stop

    with pytest.raises(Stop):
        copy(source, tmp_path / "copy.sqlite3", pause_seconds=1.0, pause=pause)
    assert listing(tmp_path) == ["orders.sqlite3"]


def test_a_cancel_ends_a_big_copy_at_once_leaving_nothing(tmp_path: Path) -> None:
    """Ending a copy truncates nothing (no journal): the partial file's name goes at once."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    with contextlib.closing(sqlite3.connect(source, isolation_level=None)) as conn:
        conn.execute("PRAGMA page_size = 65536")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
            "INSERT INTO t SELECT i, zeroblob(60000) FROM n"
        )
    raised_at = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal raised_at
        if done > total * 0.9:
            raised_at = time.monotonic()
            raise Stop

    with pytest.raises(Stop):
        copy(source, target, progress=progress)
    assert time.monotonic() - raised_at < 0.1
    assert listing(tmp_path) == ["orders.sqlite3"]


def test_copy_of_a_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(OperationFailed, match="database 'orders' does not exist") as caught:
        copy(tmp_path / "missing.sqlite3", tmp_path / "copy.sqlite3")
    assert caught.value.failure.code is Code.NOT_FOUND
    assert caught.value.failure.is_user_error
    assert listing(tmp_path) == []


def test_copy_onto_an_existing_database_is_refused(tmp_path: Path) -> None:
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    sqlite_files.create_empty(target, "copy")
    before = target.read_bytes()
    with pytest.raises(OperationFailed, match="database 'copy' already exists") as caught:
        copy(source, target)
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert target.read_bytes() == before
    assert listing(tmp_path) == ["copy.sqlite3", "orders.sqlite3"]


def test_copy_of_a_file_that_is_not_a_database_fails_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "junk.sqlite3"
    source.write_bytes(b"this is not a database, only words " * 200)
    with pytest.raises(OperationFailed, match="'orders' is not a SQLite database") as caught:
        copy(source, tmp_path / "copy.sqlite3")
    assert caught.value.failure.code is Code.FAILED_PRECONDITION
    assert caught.value.failure.is_user_error
    assert listing(tmp_path) == ["junk.sqlite3"]


def test_copy_of_a_damaged_database_is_a_structured_failure(tmp_path: Path) -> None:
    source = tmp_path / "orders.sqlite3"
    make_source(source)
    data = bytearray(source.read_bytes())
    data[16:18] = b"\x00\x03"  # page size 3: no SQLite database has that
    source.write_bytes(bytes(data))
    with pytest.raises(OperationFailed, match=r"copying database 'orders' failed") as caught:
        copy(source, tmp_path / "copy.sqlite3")
    metadata = error_info(caught.value)["metadata"]
    assert isinstance(metadata, dict) and str(metadata["sqliteError"]).startswith("SQLITE_")
    assert listing(tmp_path) == ["orders.sqlite3"]


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
        copied = copy(source, target, progress=progress, pause_seconds=0.001)
        assert written.wait(10)
    finally:
        started.set()
        thread.join(10)
        keeper.close()

    assert errors == []
    assert copied.pages > 0 and reports > 0
    assert integrity(target) == "ok"
    with contextlib.closing(sqlite3.connect(target)) as conn:
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        (n,) = conn.execute("SELECT n FROM counter").fetchone()
        ids = [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")]
    assert count == n  # one snapshot: rows and counter from the same transaction
    assert ids == list(range(count))  # a prefix of the writer's inserts, no gaps
    assert integrity(source) == "ok"
    with contextlib.closing(sqlite3.connect(source)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROWS + writes,)


def test_a_wal_source_is_copied_as_it_was_when_the_copy_began(tmp_path: Path) -> None:
    """Writes between steps go on, but the copy holds its snapshot: it never starts over."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source, wal=True)
    before = rows(source)
    seen: list[int] = []
    with contextlib.closing(sqlite3.connect(source, isolation_level=None)) as other:

        def progress(done: int, total: int) -> None:
            seen.append(done)
            if len(seen) in (2, 5):
                other.execute("INSERT INTO t VALUES (?, 'mid-copy', x'00')", (ROWS + len(seen),))

        copy(source, target, progress=progress)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # never back to the start
    assert integrity(target) == "ok"
    assert rows(target) == before
    assert len(rows(source)) == ROWS + 2  # the writes were made, after the snapshot


def test_a_rollback_journal_source_written_mid_copy_starts_over(tmp_path: Path) -> None:
    """Holding a read lock would block writers for the whole copy: SQLite restarts instead."""
    source, target = tmp_path / "orders.sqlite3", tmp_path / "copy.sqlite3"
    make_source(source)
    seen: list[int] = []
    with contextlib.closing(sqlite3.connect(source, isolation_level=None)) as other:

        def progress(done: int, total: int) -> None:
            seen.append(done)
            if len(seen) in (2, 5):
                other.execute("INSERT INTO t VALUES (?, 'mid-copy', x'00')", (ROWS + len(seen),))

        copy(source, target, progress=progress)
    assert any(b < a for a, b in itertools.pairwise(seen))  # the backup started over
    assert integrity(target) == "ok"
    assert rows(target) == rows(source)
    assert [r[0] for r in rows(target)][-2:] == [ROWS + 2, ROWS + 5]


def test_an_immutable_source_in_wal_mode_leaves_no_side_files(tmp_path: Path) -> None:
    files, dbs = tmp_path / "files", tmp_path / "dbs"
    files.mkdir()
    make_source(files / "orders.bak", wal=True)  # closed cleanly: a WAL-flagged single file
    assert listing(files) == ["orders.bak"]
    copy(files / "orders.bak", dbs / "copy.sqlite3", immutable_source=True)
    assert listing(files) == ["orders.bak"]
    assert rows(dbs / "copy.sqlite3") == rows(files / "orders.bak")
