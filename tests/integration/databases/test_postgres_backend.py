"""PostgresBackend against the real shared PostgreSQL server (managed_postgres.py keeps what
the tests make apart and drops it at the end).

The acceptance scenario of issue #6 is `test_index_build_reports_progress_and_cancels_cleanly`:
a CREATE INDEX CONCURRENTLY over 5,000,000 rows reports progress from
pg_stat_progress_create_index, a cancel mid-way ends it CANCELLED without an INVALID index, and
a second build then succeeds. The 5,000,000-row table is built once for the module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.json_values import JsonObject
from longrunning.databases.backend import DatabaseBackend, IndexSpec
from longrunning.databases.postgres_backend import PostgresBackend
from longrunning.databases.postgres_watches import IndexRow, index_percent
from longrunning.databases.servers import PostgresServer
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.integration.databases.managed_postgres import (
    WAIT_SECONDS,
    failed,
    managed_server,
    no_sessions_left,
    poll_until,
    run_sql,
    url,
)
from tests.recording_work import RecordingWork

BIG_ROWS = 5_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with managed_server(tmp_path_factory.mktemp("pg-files")) as managed:
        yield managed


@pytest.fixture
def backend(server: PostgresServer) -> PostgresBackend:
    return PostgresBackend(server)


@pytest.fixture(scope="module")
def big(server: PostgresServer) -> str:
    """A database with table t of 5,000,000 rows in random order of h; autovacuum is off so
    that it never holds the table when a build starts."""
    started = time.monotonic()
    name = server.database_name("big")
    run_sql(server, None, f'CREATE DATABASE "{name}"')
    run_sql(
        server,
        "big",
        "CREATE TABLE t (id integer NOT NULL, h integer NOT NULL) WITH (autovacuum_enabled = off)",
        f"INSERT INTO t SELECT i, hashint4(i) FROM generate_series(1, {BIG_ROWS}) AS i",
    )
    print(f"built {BIG_ROWS} rows in {time.monotonic() - started:.1f} s")
    return "big"


def assert_monotonic_to_100(work: RecordingWork) -> None:
    percents = work.percents
    assert percents == sorted(percents), percents
    assert percents[0] == 0 and percents[-1] == 100
    assert all(report.phase for report in work.reports)


async def test_it_is_a_database_backend(backend: PostgresBackend) -> None:
    checked: DatabaseBackend = backend
    assert checked.server.name == "pg"


async def test_create_list_describe_and_drop(
    backend: PostgresBackend, server: PostgresServer
) -> None:
    # A database whose name matches the prefix only if `_` were a LIKE wildcard is not ours.
    lookalike = server.database_prefix.replace("_", "x") + "zz"
    run_sql(server, None, f'CREATE DATABASE "{lookalike}"')
    try:
        for name in ("beta", "alpha", "with space_and_underscore"):
            work = RecordingWork()
            assert await backend.create(work, name) == {}
            assert_monotonic_to_100(work)
        assert {"alpha", "beta", "with space_and_underscore"} <= set(await backend.names())
        names = await backend.names()
        assert (
            names == sorted(names)
            and "zz" not in names
            and all(not n.startswith(server.database_prefix) for n in names)
        )
        info = await backend.describe("alpha")
        assert info is not None and info.name == "alpha" and info.size_bytes > 0
        assert info.created is None
        assert await backend.describe("missing") is None

        work = RecordingWork()
        assert await backend.drop(work, "beta") == {}
        assert_monotonic_to_100(work)
        assert "beta" not in await backend.names()
        assert await backend.describe("beta") is None
    finally:
        run_sql(server, None, f'DROP DATABASE IF EXISTS "{lookalike}"')


async def test_structured_failures(backend: PostgresBackend) -> None:
    await backend.create(RecordingWork(), "twice")
    with pytest.raises(OperationFailed) as duplicate:
        await backend.create(RecordingWork(), "twice")
    code, user, message = failed(duplicate)
    assert (code, user) == (Code.ALREADY_EXISTS, True) and "already exists" in message

    with pytest.raises(OperationFailed) as missing:
        await backend.drop(RecordingWork(), "never-made")
    code, user, message = failed(missing)
    assert (code, user) == (Code.NOT_FOUND, True)
    assert "'never-made' does not exist on server 'pg'" in message

    spec = IndexSpec(name="ix", table="no_such_table", columns=("a",))
    with pytest.raises(OperationFailed) as no_table:
        await backend.create_index(RecordingWork(), "twice", spec)
    code, user, message = failed(no_table)
    assert (code, user) == (Code.NOT_FOUND, True) and "no_such_table" in message
    detail = no_table.value.failure.details[0]
    assert isinstance(detail, dict) and isinstance(detail["metadata"], dict)
    assert detail["metadata"]["sqlstate"] == "42P01"

    with pytest.raises(OperationFailed) as no_database:
        await backend.create_index(RecordingWork(), "never-made", spec)
    assert failed(no_database)[:2] == (Code.NOT_FOUND, True)


async def test_an_unreachable_server_is_unavailable_and_keeps_its_password(
    tmp_path: Path,
) -> None:
    # Port 1 on 127.0.0.1: nothing listens there, the connection is refused at once.
    down = PostgresServer(
        name="down", dsn="postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres", files=tmp_path
    )
    with pytest.raises(OperationFailed) as refused:
        await PostgresBackend(down).names()
    code, user, message = failed(refused)
    assert (code, user) == (Code.UNAVAILABLE, False)
    assert "'down' is not reachable" in message and "s3cret" not in message


async def test_files_lists_plain_visible_files(backend: PostgresBackend) -> None:
    directory = backend.server.files
    assert await backend.files() == []
    (directory / "b.dump").write_bytes(b"12345")
    (directory / "a.dump").write_bytes(b"1")
    (directory / ".a.dump.1234.partial").write_bytes(b"partial")
    (directory / "sub").mkdir()
    found = await backend.files()
    assert [(f.name, f.size_bytes) for f in found] == [("a.dump", 1), ("b.dump", 5)]
    missing = PostgresServer(name="x", dsn=backend.server.dsn, files=directory / "nope")
    assert await PostgresBackend(missing).files() == []


async def test_check_name_and_check_alter(backend: PostgresBackend) -> None:
    backend.check_name("fine")
    with pytest.raises(InvalidRequest, match="too long"):
        backend.check_name("x" * 60)
    backend.check_alter({"vacuum_full": True})
    backend.check_alter({"settings": {"work_mem": "8MB", "myapp.flag": True, "x": None}})
    bad: list[tuple[JsonObject, str]] = [
        ({}, "at least one change"),
        ({"vacuum_full": False, "settings": {}}, "at least one change"),
        ({"vacuum": True}, "unknown change 'vacuum'"),
        ({"analyze": "yes"}, "changes.analyze must be true or false"),
        ({"settings": []}, "changes.settings must be an object"),
        ({"settings": {"Work_Mem": "1MB"}}, "setting name 'Work_Mem' is not valid"),
        ({"settings": {"a.b.c": "1"}}, "setting name 'a.b.c' is not valid"),
        ({"settings": {"x; DROP": "1"}}, "is not valid"),
        ({"settings": {"work_mem": ["1MB"]}}, "changes.settings.work_mem must be a string"),
    ]
    for changes, message in bad:
        with pytest.raises(InvalidRequest, match=message) as invalid:
            backend.check_alter(changes)
        assert invalid.value.reason == "INVALID_REQUEST"


async def test_copy_makes_the_same_database(
    backend: PostgresBackend, server: PostgresServer
) -> None:
    await backend.create(RecordingWork(), "source")
    run_sql(
        server,
        "source",
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 1000) AS i",
    )
    work = RecordingWork()
    result = await backend.copy(work, "source", "copied")
    assert isinstance(result["sizeBytes"], int) and result["sizeBytes"] > 0
    assert_monotonic_to_100(work)
    assert run_sql(server, "copied", "SELECT count(*) FROM items") == [(1000,)]

    with pytest.raises(OperationFailed) as no_source:
        await backend.copy(RecordingWork(), "no-source", "copied2")
    assert failed(no_source)[:2] == (Code.NOT_FOUND, True)
    assert await backend.describe("copied2") is None


async def test_copy_of_a_busy_source_fails_with_a_precondition(
    backend: PostgresBackend, server: PostgresServer
) -> None:
    await backend.create(RecordingWork(), "busy")
    # PostgreSQL waits 5 s for the other session to leave before it gives up.
    async with await psycopg.AsyncConnection.connect(url(server, "busy")):
        with pytest.raises(OperationFailed) as busy:
            await backend.copy(RecordingWork(), "busy", "busy-copy")
    code, user, message = failed(busy)
    assert (code, user) == (Code.FAILED_PRECONDITION, True)
    assert "database 'busy' is in use" in message and "1 other session" in message
    assert await backend.describe("busy-copy") is None


async def until_cancelled(task: asyncio.Task[JsonObject], seconds: float = WAIT_SECONDS) -> float:
    """How long the task took to end after the cancel; it must end OperationCancelled."""
    started = time.monotonic()
    with pytest.raises(OperationCancelled):
        await asyncio.wait_for(task, seconds)
    return time.monotonic() - started


async def test_cancelled_copy_leaves_no_database(
    backend: PostgresBackend, server: PostgresServer, big: str
) -> None:
    work = RecordingWork()
    task = asyncio.create_task(backend.copy(work, big, "big-copy"))
    await poll_until(lambda: any(0 < p < 100 for p in work.percents), "copy progress")
    assert "estimated from the WAL written" in str(work.last and work.last.phase)
    work.cancel()
    assert await until_cancelled(task) < 10
    assert await backend.describe("big-copy") is None
    await no_sessions_left(server)


async def test_cancel_before_the_start_makes_nothing(backend: PostgresBackend) -> None:
    work = RecordingWork()
    work.cancel()
    with pytest.raises(OperationCancelled):
        await backend.create(work, "never-started")
    assert await backend.describe("never-started") is None


async def test_alter_sets_resets_vacuums_and_analyzes(
    backend: PostgresBackend, server: PostgresServer
) -> None:
    await backend.create(RecordingWork(), "altered")
    run_sql(
        server,
        "altered",
        "CREATE SCHEMA other",
        "CREATE TABLE a (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off)",
        'CREATE TABLE other."B" (id int)',
        "INSERT INTO a SELECT i, repeat('x', 1000) FROM generate_series(1, 20000) AS i",
        "DELETE FROM a WHERE id % 10 <> 0",
    )
    # VACUUM FULL keeps the rows an open snapshot may still see: under load, an autovacuum
    # ANALYZE of a catalog here can hold one from before the DELETE, and the "vacuumed" database
    # then grows. The shrink is only the test's to check once no other session holds one.
    await poll_until(
        lambda: (
            not run_sql(
                server,
                "altered",
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_xmin IS NOT NULL AND pid <> pg_backend_pid()",
            )
        ),
        "no other snapshot in the database",
    )
    before = await backend.describe("altered")
    work = RecordingWork()
    result = await backend.alter(
        work,
        "altered",
        {
            "settings": {"work_mem": "8MB", "myapp.mode": "fast", "enable_seqscan": False},
            "vacuum_full": True,
            "analyze": True,
        },
    )
    assert result["vacuumedTables"] == 2 and result["analyzed"] is True
    assert_monotonic_to_100(work)
    assert before is not None and isinstance(result["sizeBytes"], int)
    assert result["sizeBytes"] < before.size_bytes
    settings = run_sql(
        server,
        "altered",
        "SELECT current_setting('myapp.mode'), "
        "current_setting('work_mem'), current_setting('enable_seqscan')",
    )
    assert settings == [("fast", "8MB", "off")]
    assert run_sql(server, "altered", "SELECT count(*) FROM pg_stats WHERE tablename = 'a'")[0][0]

    await backend.alter(RecordingWork(), "altered", {"settings": {"work_mem": None}})
    reset = run_sql(
        server, "altered", "SELECT current_setting('myapp.mode'), current_setting('work_mem')"
    )
    assert reset == [("fast", "4MB")]

    with pytest.raises(OperationFailed) as unknown:
        await backend.alter(RecordingWork(), "altered", {"settings": {"no_such_setting": 1}})
    code, user, message = failed(unknown)
    assert (code, user) == (Code.INVALID_ARGUMENT, True) and "no_such_setting" in message


async def test_index_success_and_a_failed_unique_build_leaves_no_index(
    backend: PostgresBackend, server: PostgresServer
) -> None:
    await backend.create(RecordingWork(), "indexed")
    run_sql(
        server,
        "indexed",
        'CREATE TABLE "Orders" (id int, "Customer" text)',
        "INSERT INTO \"Orders\" SELECT i, 'c' || (i % 10) FROM generate_series(1, 5000) AS i",
    )
    work = RecordingWork()
    spec = IndexSpec(name="by customer", table="Orders", columns=("Customer", "id"))
    result = await backend.create_index(work, "indexed", spec)
    assert result == {"index": "by customer", "table": "Orders", "valid": True}
    assert_monotonic_to_100(work)

    unique = IndexSpec(name="one per customer", table="Orders", columns=("Customer",), unique=True)
    with pytest.raises(OperationFailed) as duplicates:
        await backend.create_index(RecordingWork(), "indexed", unique)
    assert failed(duplicates)[:2] == (Code.FAILED_PRECONDITION, True)
    assert indexes_of_orders(server) == [('"by customer"', True)]

    with pytest.raises(OperationFailed) as again:
        await backend.create_index(RecordingWork(), "indexed", spec)
    assert failed(again)[:2] == (Code.ALREADY_EXISTS, True)
    assert indexes_of_orders(server) == [('"by customer"', True)]


def indexes_of_orders(server: PostgresServer) -> list[Any]:
    return run_sql(
        server,
        "indexed",
        "SELECT indexrelid::regclass::text, indisvalid FROM pg_index"
        " WHERE indrelid = '\"Orders\"'::regclass",
    )


def test_index_phases_map_into_ordered_ranges() -> None:
    scanning = IndexRow("building index: scanning table", blocks_done=41, blocks_total=100)
    percent, phase = index_percent(scanning)
    assert phase == "building index: scanning table (41% of blocks)"
    assert 5 < percent < 45
    waiting = IndexRow("waiting for writers before build", lockers_done=1, lockers_total=3)
    assert index_percent(waiting)[1] == "waiting for writers before build (1 of 3 transactions)"
    order = [
        IndexRow("initializing"),
        waiting,
        scanning,
        IndexRow("building index: sorting live tuples"),
        IndexRow("building index: loading tuples in tree", tuples_done=5, tuples_total=10),
        IndexRow("waiting for writers before validation"),
        IndexRow("index validation: scanning index", blocks_done=1, blocks_total=2),
        IndexRow("index validation: sorting tuples"),
        IndexRow("index validation: scanning table", blocks_done=9, blocks_total=10),
        IndexRow("waiting for old snapshots"),
    ]
    percents = [index_percent(row)[0] for row in order]
    assert percents == sorted(percents) and percents[-1] < 100


async def test_cancelled_vacuum_full_stops(
    backend: PostgresBackend, server: PostgresServer, big: str
) -> None:
    work = RecordingWork()
    task = asyncio.create_task(backend.alter(work, big, {"vacuum_full": True}))
    await poll_until(
        lambda: any("seq scanning heap" in str(r.phase) and r.percent > 0 for r in work.reports),
        "VACUUM FULL progress",
    )
    work.cancel()
    assert await until_cancelled(task) < 10


async def test_index_build_reports_progress_and_cancels_cleanly(
    backend: PostgresBackend, server: PostgresServer, big: str
) -> None:
    started = time.monotonic()
    spec = IndexSpec(name="t_h", table="t", columns=("h",))
    work = RecordingWork()
    task = asyncio.create_task(backend.create_index(work, big, spec))

    def from_the_view() -> bool:
        return any(
            r.phase is not None and r.phase.startswith("building index") and 0 < r.percent < 100
            for r in work.reports
        )

    await poll_until(from_the_view, "progress from pg_stat_progress_create_index")
    postgres = work.metadata["postgres"]
    assert isinstance(postgres, dict) and str(postgres["phase"]).startswith("building index")
    work.cancel()
    assert await until_cancelled(task) < 10
    assert work.percents == sorted(work.percents)
    left = run_sql(
        server,
        big,
        "SELECT (SELECT count(*) FROM pg_index WHERE NOT indisvalid),"
        " to_regclass('t_h') IS NULL, (SELECT count(*) FROM t)",
    )
    assert left == [(0, True, BIG_ROWS)]
    await no_sessions_left(server)
    cancelled_at = time.monotonic() - started

    work = RecordingWork()
    result = await backend.create_index(work, big, spec)
    assert result == {"index": "t_h", "table": "t", "valid": True}
    assert_monotonic_to_100(work)
    phases = {str(r.phase).split(" (")[0] for r in work.reports}
    assert {"building index: scanning table", "index validation: scanning table"} <= phases
    assert any(r.eta is not None for r in work.reports)
    print(f"cancelled after {cancelled_at:.1f} s, built in {time.monotonic() - started:.1f} s")
