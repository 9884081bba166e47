"""SqliteBackend on real files: copy, backup and restore through the backend, as a worker runs
them (in a thread, told of a cancel through `Work`); export, import, alter and create index have
their own modules (test_sqlite_dump.py, test_sqlite_maintenance.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from longrunning.core.errors import Code
from longrunning.databases.servers import SqliteServer
from longrunning.databases.sqlite_backend import SqliteBackend
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.recording_work import RecordingWork

ROWS = 20_000


def make_server(tmp_path: Path, *, pause: float = 0.0, pages: int = 256) -> SqliteServer:
    return SqliteServer(
        name="local",
        directory=tmp_path / "dbs",
        files=tmp_path / "files",
        copy_pages_per_step=pages,
        copy_step_pause_seconds=pause,
    )


def fill(path: Path, *, rows: int = ROWS, wal: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, pad BLOB)")
        conn.execute("CREATE INDEX t_name ON t (name)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, randomblob(200))", [(i, f"row {i}") for i in range(rows)]
        )
        conn.execute("COMMIT")


def content(path: Path) -> list[object]:
    uri = f"{path.as_uri()}?mode=ro&immutable=1"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [
            *conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name"),
            *conn.execute("SELECT * FROM t ORDER BY id"),
        ]


def listing(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir()) if directory.exists() else []


def assert_progress(work: RecordingWork, *, step: float) -> None:
    """Monotonic, from 0 to 100, no two reports more than `step` percent apart."""
    percents = work.percents
    assert percents[0] == 0 and percents[-1] == 100
    assert percents == sorted(percents)
    assert max(b - a for a, b in itertools.pairwise(percents)) <= step


@pytest.fixture
def server(tmp_path: Path) -> SqliteServer:
    server = make_server(tmp_path)
    fill(server.path("orders"))
    return server


# Copy ---------------------------------------------------------------------------------------


async def test_copy_reports_every_step_under_one_percent(server: SqliteServer) -> None:
    work = RecordingWork()
    result = await SqliteBackend(server).copy(work, "orders", "copy")
    assert content(server.path("copy")) == content(server.path("orders"))
    assert result["steps"] == len(work.reports) - 2  # a start, each step, the end
    assert result["steps"] >= 200 and result["pagesPerStep"] * 200 <= result["pages"]  # type: ignore[operator]
    assert_progress(work, step=1.0)
    assert work.reports[1].phase == f"copied {result['pagesPerStep']} of {result['pages']} pages"
    assert [r.phase for r in work.reports][-2:] == ["syncing to disk", "copied"]
    assert all(r.eta is not None for r in work.reports[5:-2])
    assert listing(server.directory) == ["copy.sqlite3", "orders.sqlite3"]


@pytest.mark.parametrize("cancel_after", [1, 2, 3, 30, 150])
async def test_a_cancelled_copy_leaves_nothing(server: SqliteServer, cancel_after: int) -> None:
    """Before the first step, after it, and mid-way."""
    work = RecordingWork(cancel_after=cancel_after)
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).copy(work, "orders", "copy")
    assert listing(server.directory) == ["orders.sqlite3"]
    assert len(work.reports) == cancel_after
    assert work.percents == sorted(work.percents)


async def test_a_cancel_while_syncing_the_last_page_still_wins(server: SqliteServer) -> None:
    work = RecordingWork(cancel_when=lambda report: report.phase == "syncing to disk")
    with pytest.raises(OperationCancelled):
        await SqliteBackend(server).copy(work, "orders", "copy")
    assert listing(server.directory) == ["orders.sqlite3"]
    assert work.percents[-1] == pytest.approx(99)


async def test_a_cancel_during_a_pause_between_steps_ends_the_copy_at_once(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path, pause=30.0)
    fill(server.path("orders"))
    work = RecordingWork()
    copying = asyncio.create_task(SqliteBackend(server).copy(work, "orders", "copy"))
    deadline = time.monotonic() + 10
    while len(work.reports) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)  # the first step is done; the copy now pauses for 30 s
    work.cancel()
    cancelled = time.monotonic()
    with pytest.raises(OperationCancelled):
        await copying
    assert time.monotonic() - cancelled < 0.5
    assert listing(server.directory) == ["orders.sqlite3"]


async def test_copy_of_a_missing_database_is_not_found(server: SqliteServer) -> None:
    with pytest.raises(OperationFailed, match="database 'nope' does not exist") as caught:
        await SqliteBackend(server).copy(RecordingWork(), "nope", "copy")
    assert caught.value.failure.code is Code.NOT_FOUND


# Backup and restore -------------------------------------------------------------------------


async def test_backup_then_restore_gives_the_same_database(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    assert not server.files.exists()
    work = RecordingWork()
    backed_up = await backend.backup(work, "orders", "orders.bak")
    assert_progress(work, step=1.0)
    backup = server.files / "orders.bak"
    assert backed_up["file"] == "orders.bak"
    assert backed_up["bytes"] == backup.stat().st_size
    assert listing(server.files) == ["orders.bak"]
    assert content(backup) == content(server.path("orders"))

    work = RecordingWork()
    restored = await backend.restore(work, "orders.bak", "again")
    assert_progress(work, step=1.0)
    assert restored["file"] == "orders.bak" and restored["pages"] == backed_up["pages"]
    assert content(server.path("again")) == content(server.path("orders"))
    assert listing(server.files) == ["orders.bak"]  # read without locks or side files
    assert [f.name for f in await backend.files()] == ["orders.bak"]


async def test_a_wal_database_restores_as_a_wal_database(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    fill(server.path("orders"), wal=True)
    backend = SqliteBackend(server)
    await backend.backup(RecordingWork(), "orders", "orders.bak")
    await backend.restore(RecordingWork(), "orders.bak", "again")
    assert listing(server.files) == ["orders.bak"]
    with contextlib.closing(sqlite3.connect(server.path("again"))) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert content(server.path("again")) == content(server.path("orders"))


@pytest.mark.parametrize("cancel_after", [1, 2, 40, 1000])
async def test_a_cancelled_backup_or_restore_leaves_nothing(
    server: SqliteServer, cancel_after: int
) -> None:
    """Early, mid-way, or (1000) once the last page is copied, while syncing."""
    if cancel_after == 1000:
        work = RecordingWork(cancel_when=lambda report: report.phase == "syncing to disk")
    else:
        work = RecordingWork(cancel_after=cancel_after)
    backend = SqliteBackend(server)
    with pytest.raises(OperationCancelled):
        await backend.backup(work, "orders", "orders.bak")
    assert listing(server.files) == []

    await backend.backup(RecordingWork(), "orders", "orders.bak")
    if cancel_after == 1000:
        work = RecordingWork(cancel_when=lambda report: report.phase == "syncing to disk")
    else:
        work = RecordingWork(cancel_after=cancel_after)
    with pytest.raises(OperationCancelled):
        await backend.restore(work, "orders.bak", "again")
    assert listing(server.directory) == ["orders.sqlite3"]
    assert listing(server.files) == ["orders.bak"]


async def test_backup_failures_are_structured(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    with pytest.raises(OperationFailed, match="database 'nope' does not exist") as caught:
        await backend.backup(RecordingWork(), "nope", "x.bak")
    assert caught.value.failure.code is Code.NOT_FOUND
    await backend.backup(RecordingWork(), "orders", "x.bak")
    before = (server.files / "x.bak").read_bytes()
    with pytest.raises(OperationFailed, match=r"file 'x\.bak' already exists") as caught:
        await backend.backup(RecordingWork(), "orders", "x.bak")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert (server.files / "x.bak").read_bytes() == before
    assert listing(server.files) == ["x.bak"]


async def test_restore_failures_are_structured(server: SqliteServer) -> None:
    backend = SqliteBackend(server)
    with pytest.raises(OperationFailed, match=r"file 'x\.bak' does not exist") as caught:
        await backend.restore(RecordingWork(), "x.bak", "again")
    assert caught.value.failure.code is Code.NOT_FOUND
    assert caught.value.failure.is_user_error

    server.files.mkdir()
    (server.files / "x.sql").write_text("CREATE TABLE t (x);\n")
    with pytest.raises(OperationFailed, match=r"file 'x\.sql' is not a SQLite database") as caught:
        await backend.restore(RecordingWork(), "x.sql", "again")
    assert caught.value.failure.code is Code.FAILED_PRECONDITION
    assert caught.value.failure.is_user_error

    await backend.backup(RecordingWork(), "orders", "x.bak")
    with pytest.raises(OperationFailed, match="database 'orders' already exists") as caught:
        await backend.restore(RecordingWork(), "x.bak", "orders")
    assert caught.value.failure.code is Code.ALREADY_EXISTS
    assert listing(server.directory) == ["orders.sqlite3"]
    assert listing(server.files) == ["x.bak", "x.sql"]


async def test_create_drop_and_describe_still_work(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    backend = SqliteBackend(server)
    assert await backend.names() == []
    await backend.create(RecordingWork(), "a b")
    assert await backend.names() == ["a b"]
    info = await backend.describe("a b")
    assert info is not None and info.size_bytes > 0
    await backend.drop(RecordingWork(), "a b")
    assert await backend.names() == [] and await backend.describe("a b") is None
    assert await backend.files() == []
