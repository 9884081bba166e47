"""postgres_dump against the real shared PostgreSQL server and the real pg_dump and pg_restore.

Every database made here is named with a prefix unique to this run (`lrt{hex}_`) and dropped at
the end. The server's DSN carries a password (a made-up one: the test server trusts 127.0.0.1
and ignores it), so that every message can be checked to be free of it.

The acceptance point of issue #6 is `test_an_export_cancelled_midway_leaves_no_file`: a dump of
2,500,000 rows, cancelled once pg_stat_progress_copy shows rows copied, ends CANCELLED within
seconds with no file, no partial file, no pg_dump process and the source intact. The big table
(and an uncompressed archive of it for the load tests) is built once for the module.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from longrunning.core.errors import Code
from longrunning.core.operation import Failure
from longrunning.databases import postgres_dump
from longrunning.databases.servers import PostgresServer
from longrunning.engine.context import OperationCancelled, OperationFailed
from tests.integration.databases.processes import live_in_group, processes_mentioning
from tests.postgres_servers import require_admin_url
from tests.recording_work import RecordingWork, Report

BIG_ROWS = 2_500_000
WAIT_SECONDS = 60.0
CANCEL_SECONDS = 5.0
_ROWS_DONE = re.compile(r"\(([\d,]+) (?:of ~|rows so far)")

_SOURCE = """
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2));
INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 20000) g;
CREATE INDEX items_name ON items (name);
CREATE SCHEMA sales;
CREATE TABLE sales."Orders" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item int NOT NULL REFERENCES items,
    note text
);
INSERT INTO sales."Orders" (item, note) SELECT 1 + g % 20000, repeat('n', g % 7)
FROM generate_series(1, 5000) g;
CREATE TABLE empty (x int);
CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;
ANALYZE items;
"""


class Work(RecordingWork):
    """RecordingWork that a test can wait on, and act from, as reports arrive."""

    def __init__(self) -> None:
        super().__init__(str(uuid.uuid4()))
        self._reported = asyncio.Event()
        self.on_report: Callable[[Report], None] | None = None

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None:
        super().report_progress(percent, phase=phase, eta=eta)
        if self.on_report is not None and self.last is not None:
            self.on_report(self.last)
        self._reported.set()

    async def until(self, predicate: Callable[[Report], bool]) -> Report:
        """The first report that satisfies predicate, waiting for it at most WAIT_SECONDS."""
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                self._reported.clear()
                for report in self.reports:
                    if predicate(report):
                        return report
                await self._reported.wait()


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin() -> str:
    return require_admin_url()


@pytest.fixture(scope="module")
def prefix(admin: str) -> Iterator[str]:
    """Names every database of this run; all of them are dropped at the end."""
    prefix = f"lrt{uuid.uuid4().hex[:8]}_"
    yield prefix
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
        for (name,) in rows:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def dsn(admin: str) -> tuple[str, str]:
    """(the server's DSN, the password in it): the admin URL's own password, or a made-up one."""
    parts = conninfo_to_dict(admin)
    if parts.get("password"):
        return admin, str(parts["password"])
    secret = f"Pw-{uuid.uuid4().hex[:16]}"
    user = quote(str(parts.get("user", "postgres")), safe="")
    host, port = parts.get("host", "127.0.0.1"), parts.get("port", "5432")
    database = parts.get("dbname", "postgres")
    return f"postgresql://{user}:{quote(secret, safe='')}@{host}:{port}/{database}", secret


@pytest.fixture
def server(dsn: tuple[str, str], prefix: str, tmp_path: Path) -> PostgresServer:
    return PostgresServer(name="pg", dsn=dsn[0], files=tmp_path / "files", database_prefix=prefix)


def connect(admin: str, pg_name: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(make_conninfo(admin, dbname=pg_name), autocommit=True)


def create_database(admin: str, pg_name: str, script: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(pg_name)))
    with connect(admin, pg_name) as conn:
        conn.execute(script.encode())


@pytest.fixture(scope="module")
def source(admin: str, prefix: str) -> str:
    """A small database with a few kinds of object; returns its managed name."""
    create_database(admin, f"{prefix}source", _SOURCE)
    return "source"


@pytest.fixture(scope="module")
def big(admin: str, prefix: str) -> str:
    """One table of BIG_ROWS rows, never analysed (its estimate comes from its size)."""
    script = "CREATE TABLE big (id int, v int, s text);"
    script += (
        f"INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, {BIG_ROWS}) g"
    )
    create_database(admin, f"{prefix}big", script)
    return "big"


@pytest.fixture(scope="module")
def big_archive(
    admin: str, prefix: str, big: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An archive of `big`, uncompressed (quick to make; restoring it takes as long)."""
    path = tmp_path_factory.mktemp("archives") / "big.dump"
    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, "the PostgreSQL client tools are needed"
    conninfo = make_conninfo(admin, dbname=f"{prefix}{big}")
    subprocess.run(
        [pg_dump, "--format=custom", "--compress=0", f"--file={path}", f"--dbname={conninfo}"],
        check=True,
        capture_output=True,
        timeout=WAIT_SECONDS,
    )
    return path


# Helpers -------------------------------------------------------------------------------------


def database_exists(admin: str, pg_name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (pg_name,))
        return found.fetchone() is not None


def summary(admin: str, pg_name: str) -> dict[str, object]:
    """Row counts and checksums of the source's tables, and its other objects."""
    with connect(admin, pg_name) as conn:
        result: dict[str, object] = {}
        for name, table in (("items", "items"), ("orders", 'sales."Orders"'), ("empty", "empty")):
            query = (
                f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"
            )
            result[name] = conn.execute(query.encode()).fetchone()
        result["cheap"] = conn.execute("SELECT count(*) FROM cheap").fetchone()
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'items'")
        result["indexes"] = sorted(str(row[0]) for row in indexes.fetchall())
        return result


def failure_of(excinfo: pytest.ExceptionInfo[OperationFailed]) -> Failure:
    return excinfo.value.failure


def rows_done(report: Report) -> int:
    match = _ROWS_DONE.search(report.phase or "")
    return int(match[1].replace(",", "")) if match else 0


async def sessions_end(admin: str, application_name: str) -> bool:
    """Whether the server's sessions of that name are gone within WAIT_SECONDS (polled)."""
    deadline = time.monotonic() + WAIT_SECONDS
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            )
            if await cursor.fetchone() == (0,):
                return True
            await asyncio.sleep(0.05)
    return False


def assert_monotonic_to_100(work: RecordingWork) -> None:
    percents = work.percents
    assert percents, "no progress reported"
    assert all(a <= b for a, b in itertools.pairwise(percents)), percents
    assert percents[-1] == 100.0


def same_file(a: Path, b: Path) -> bool:
    return a.samefile(b) and a.stat().st_size == b.stat().st_size


def files_in(server: PostgresServer) -> list[str]:
    return sorted(p.name for p in server.files.iterdir()) if server.files.exists() else []


# Round trip ----------------------------------------------------------------------------------


async def test_dump_then_load_round_trip(server: PostgresServer, admin: str, source: str) -> None:
    dumping = Work()
    dumped = await postgres_dump.dump(dumping, server, source, "source.dump", title="BACKUP")
    archive = server.files / "source.dump"
    assert dumped == {
        "file": "source.dump",
        "bytes": archive.stat().st_size,
        "tables": 3,
        "rows": dumped["rows"],
    }
    # 25,000 rows, estimated: items analysed, Orders from the planner's guess by its size.
    assert isinstance(dumped["rows"], int) and 20000 < dumped["rows"] < 50000
    assert files_in(server) == ["source.dump"]  # no partial left beside it
    assert_monotonic_to_100(dumping)
    assert any((r.phase or "").startswith("dumping table public.items") for r in dumping.reports)

    loading = Work()
    loaded = await postgres_dump.load(loading, server, "source.dump", "copy", title="RESTORE")
    assert loaded == {"file": "source.dump", "tables": 3}
    assert_monotonic_to_100(loading)
    assert summary(admin, server.database_name("copy")) == summary(
        admin, server.database_name(source)
    )
    # The identity's sequence came along: the next order continues after the restored ones.
    with connect(admin, server.database_name("copy")) as conn:
        added = conn.execute('INSERT INTO sales."Orders" (item) VALUES (1) RETURNING id')
        assert added.fetchone() == (5001,)


# Failures ------------------------------------------------------------------------------------


async def test_dump_of_a_missing_database_fails_not_found(
    server: PostgresServer, dsn: tuple[str, str]
) -> None:
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.dump(Work(), server, "nothing", "x.dump", title="EXPORT DATABASE")
    failure = failure_of(excinfo)
    assert (failure.code, failure.is_user_error) == (Code.NOT_FOUND, True)
    assert "'nothing' does not exist" in failure.message
    assert dsn[1] not in failure.message
    assert files_in(server) == []


async def test_dump_never_overwrites_a_file(server: PostgresServer, source: str) -> None:
    server.files.mkdir(parents=True)
    (server.files / "taken.dump").write_bytes(b"precious")
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.dump(Work(), server, source, "taken.dump", title="EXPORT DATABASE")
    assert failure_of(excinfo).code == Code.ALREADY_EXISTS
    assert (server.files / "taken.dump").read_bytes() == b"precious"
    assert files_in(server) == ["taken.dump"]


async def test_dump_never_overwrites_a_file_made_meanwhile(
    server: PostgresServer, source: str
) -> None:
    server.files.mkdir(parents=True)
    work = Work()

    def made_meanwhile(report: Report) -> None:
        # The first report comes after the check for an existing file, before pg_dump runs.
        (server.files / "late.dump").touch(exist_ok=True)

    work.on_report = made_meanwhile
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.dump(work, server, source, "late.dump", title="EXPORT DATABASE")
    assert failure_of(excinfo).code == Code.ALREADY_EXISTS
    assert (server.files / "late.dump").read_bytes() == b""
    assert files_in(server) == ["late.dump"]


async def test_load_of_a_missing_file_fails_not_found(
    server: PostgresServer, admin: str, prefix: str
) -> None:
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.load(Work(), server, "absent.dump", "new", title="IMPORT DATABASE")
    failure = failure_of(excinfo)
    assert (failure.code, failure.is_user_error) == (Code.NOT_FOUND, True)
    assert "'absent.dump' does not exist" in failure.message
    assert not database_exists(admin, f"{prefix}new")


async def test_load_into_an_existing_database_leaves_it_untouched(
    server: PostgresServer, admin: str, prefix: str, source: str
) -> None:
    await postgres_dump.dump(Work(), server, source, "s.dump", title="EXPORT DATABASE")
    create_database(
        admin, f"{prefix}taken", "CREATE TABLE mine (x int); INSERT INTO mine VALUES (7)"
    )
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.load(Work(), server, "s.dump", "taken", title="IMPORT DATABASE")
    failure = failure_of(excinfo)
    assert (failure.code, failure.is_user_error) == (Code.ALREADY_EXISTS, True)
    with connect(admin, f"{prefix}taken") as conn:
        assert conn.execute("SELECT x FROM mine").fetchall() == [(7,)]
        assert conn.execute("SELECT to_regclass('items')").fetchone() == (None,)


async def test_load_of_a_file_that_is_no_archive_makes_nothing(
    server: PostgresServer, admin: str, prefix: str, dsn: tuple[str, str]
) -> None:
    server.files.mkdir(parents=True)
    (server.files / "plain.sql").write_text(
        "--\n-- PostgreSQL database dump\n--\n\n" + "CREATE TABLE t (x int);\n" * 20
    )
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.load(Work(), server, "plain.sql", "plain", title="IMPORT DATABASE")
    failure = failure_of(excinfo)
    assert (failure.code, failure.is_user_error) == (Code.INVALID_ARGUMENT, True)
    assert "text format dump" in failure.message
    assert dsn[1] not in failure.message
    assert not database_exists(admin, f"{prefix}plain")


async def test_a_load_failing_midway_drops_its_database(
    server: PostgresServer, admin: str, prefix: str, source: str, dsn: tuple[str, str]
) -> None:
    await postgres_dump.dump(Work(), server, source, "whole.dump", title="EXPORT DATABASE")
    whole = (server.files / "whole.dump").read_bytes()
    # The table of contents comes first, so pg_restore starts, then runs out of data.
    (server.files / "cut.dump").write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(OperationFailed) as excinfo:
        await postgres_dump.load(Work(), server, "cut.dump", "cut", title="IMPORT DATABASE")
    failure = failure_of(excinfo)
    assert (failure.code, failure.is_user_error) == (Code.INVALID_ARGUMENT, True)
    assert failure.message.startswith("IMPORT DATABASE 'cut' from file 'cut.dump' failed: ")
    assert "end of file" in failure.message
    assert dsn[1] not in failure.message and "PGPASSWORD" not in failure.message
    assert not database_exists(admin, f"{prefix}cut")


async def test_without_client_tools_nothing_is_made(
    server: PostgresServer,
    admin: str,
    prefix: str,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server.files.mkdir(parents=True)
    (server.files / "some.dump").write_bytes(b"PGDMP")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(OperationFailed) as dumping:
        await postgres_dump.dump(Work(), server, source, "new.dump", title="EXPORT DATABASE")
    with pytest.raises(OperationFailed) as loading:
        await postgres_dump.load(Work(), server, "some.dump", "tools", title="IMPORT DATABASE")
    for excinfo in (dumping, loading):
        failure = failure_of(excinfo)
        assert failure.code == Code.FAILED_PRECONDITION
        assert "PostgreSQL client tools" in failure.message
    assert files_in(server) == ["some.dump"]
    assert not database_exists(admin, f"{prefix}tools")


# Cancellation --------------------------------------------------------------------------------


async def test_an_export_cancelled_midway_leaves_no_file(
    server: PostgresServer, admin: str, prefix: str, big: str, dsn: tuple[str, str]
) -> None:
    work = Work()
    task = asyncio.create_task(postgres_dump.dump(work, server, big, "big.dump", title="EXPORT"))
    copying = await work.until(lambda report: rows_done(report) > 0)
    assert copying.percent > 0
    assert (copying.phase or "").startswith("dumping table public.big, 1 of 1 (")
    children = processes_mentioning(work.operation_id)
    assert children, "no pg_dump process found"
    assert processes_mentioning(dsn[1]) == []  # the password is in no command line
    groups = {os.getpgid(pid) for pid in children}
    assert groups <= set(children)  # each in a process group of its own

    asked = time.monotonic()
    work.cancel()
    with pytest.raises(OperationCancelled):
        await asyncio.wait_for(task, CANCEL_SECONDS)
    assert time.monotonic() - asked < CANCEL_SECONDS
    assert files_in(server) == []  # neither the file nor its partial
    assert all(not live_in_group(pgid) for pgid in groups)
    assert processes_mentioning(work.operation_id) == []
    with connect(admin, f"{prefix}{big}") as conn:
        assert conn.execute("SELECT count(*) FROM big").fetchone() == (BIG_ROWS,)
    # pg_dump's session ends with it, once the server notices the client is gone.
    app = f"longrunning-{work.operation_id}"
    assert await sessions_end(admin, app), f"a session {app} outlived pg_dump"


async def test_a_dump_whose_task_is_cancelled_stops_at_once(
    server: PostgresServer, big: str
) -> None:
    """The engine's last rung, after the cooperative grace: the task itself is cancelled."""
    work = Work()
    task = asyncio.create_task(postgres_dump.dump(work, server, big, "big.dump", title="EXPORT"))
    await work.until(lambda report: rows_done(report) > 0)
    groups = {os.getpgid(pid) for pid in processes_mentioning(work.operation_id)}
    assert groups
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, CANCEL_SECONDS)
    assert files_in(server) == []
    assert all(not live_in_group(pgid) for pgid in groups)


async def test_an_import_cancelled_midway_leaves_no_database(
    server: PostgresServer, admin: str, prefix: str, big_archive: Path
) -> None:
    server.files.mkdir(parents=True)
    os.link(big_archive, server.files / "big.dump")
    work = Work()
    task = asyncio.create_task(
        postgres_dump.load(work, server, "big.dump", "restored", title="IMPORT DATABASE")
    )
    copying = await work.until(lambda report: rows_done(report) > 0)
    assert (copying.phase or "").startswith("restoring table public.big, 1 of 1 (")
    assert database_exists(admin, f"{prefix}restored")
    groups = {os.getpgid(pid) for pid in processes_mentioning(work.operation_id)}
    assert groups

    asked = time.monotonic()
    work.cancel()
    with pytest.raises(OperationCancelled):
        await asyncio.wait_for(task, CANCEL_SECONDS)
    assert time.monotonic() - asked < CANCEL_SECONDS
    assert not database_exists(admin, f"{prefix}restored")
    assert all(not live_in_group(pgid) for pgid in groups)
    assert files_in(server) == ["big.dump"]
    assert same_file(server.files / "big.dump", big_archive)
