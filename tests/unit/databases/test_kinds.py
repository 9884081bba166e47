"""The database operation kinds: their rules, request checks and targets, and a run end to end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longrunning.core import lifecycle
from longrunning.core.errors import Code, InvalidRequest, NotCancellable, ResourceNotFound
from longrunning.core.json_values import JsonObject
from longrunning.core.operation import CancelOutcome, Operation, State
from longrunning.databases import kinds
from longrunning.databases.backends import Backends
from longrunning.databases.kinds import database_kinds, database_request, ref_of, source_field
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import DatabaseServers, SqliteServer
from longrunning.engine.kinds import HandlerRegistry, OperationKind
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from longrunning.stores import open_store
from longrunning.testing import FAST_ENGINE


def make_servers(tmp_path: Path, *, pages: int = 256, pause: float = 0.0) -> Backends:
    local = SqliteServer(
        name="local",
        directory=tmp_path / "local",
        files=tmp_path / "files",
        copy_pages_per_step=pages,
        copy_step_pause_seconds=pause,
    )
    other = SqliteServer(name="other", directory=tmp_path / "other", files=tmp_path / "f2")
    return Backends(DatabaseServers({server.name: server for server in (local, other)}))


def sqlite_path(backends: Backends, ref: DatabaseRef) -> Path:
    server = backends.get(ref.server).server
    assert isinstance(server, SqliteServer)
    return server.path(ref.database)


def names(backends: Backends, server: str) -> list[str]:
    found = backends.get(server).server
    assert isinstance(found, SqliteServer)
    return found.database_names()


def by_name(backends: Backends) -> dict[str, OperationKind]:
    return {kind.name: kind for kind in database_kinds(backends)}


def test_the_kinds(tmp_path: Path) -> None:
    found = by_name(make_servers(tmp_path))
    assert {name: kind.title for name, kind in found.items()} == {
        kinds.CREATE: "CREATE DATABASE",
        kinds.DROP: "DROP DATABASE",
        kinds.COPY: "DATABASE COPY",
        kinds.BACKUP: "BACKUP DATABASE",
        kinds.RESTORE: "DATABASE RESTORE",
        kinds.EXPORT: "EXPORT DATABASE",
        kinds.IMPORT: "IMPORT DATABASE",
        kinds.ALTER: "ALTER DATABASE",
        kinds.INDEX: "CREATE INDEX",
    }
    assert list(found) == [
        "db.create",
        "db.drop",
        "db.copy",
        "db.backup",
        "db.restore",
        "db.export",
        "db.import",
        "db.alter",
        "db.index",
    ]
    assert [name for name, kind in found.items() if not kind.cancellable] == ["db.drop"]
    for kind in found.values():
        assert not kind.blocking  # async: the backends choose threads or async I/O
        assert kind.validate is not None and kind.target is not None
        assert kind.description
        assert kind.cooperative_grace_seconds >= 30  # time to clean up after a cancel
    HandlerRegistry(found.values())  # registrable together


@pytest.mark.parametrize("kind", ["db.create", "db.drop"])
def test_targets_name_the_database(tmp_path: Path, kind: str) -> None:
    found = by_name(make_servers(tmp_path))[kind]
    assert found.target is not None
    request: JsonObject = {"server": "local", "database": "Sales 2026"}
    assert found.target(request) == "servers/local/databases/Sales 2026"


def test_the_target_of_a_copy_is_the_new_database(tmp_path: Path) -> None:
    copy = by_name(make_servers(tmp_path))["db.copy"]
    assert copy.target is not None
    request = database_request(
        DatabaseRef("local", "copy"), source=source_field(DatabaseRef("local", "orders"))
    )
    assert request == {
        "server": "local",
        "database": "copy",
        "source": {"server": "local", "database": "orders"},
    }
    assert copy.target(request) == "servers/local/databases/copy"


@pytest.mark.parametrize("kind", ["db.export", "db.backup", "db.alter", "db.index"])
def test_work_on_a_database_targets_it(tmp_path: Path, kind: str) -> None:
    found = by_name(make_servers(tmp_path))[kind]
    assert found.target is not None
    assert found.target({"server": "local", "database": "s"}) == "servers/local/databases/s"


def test_valid_requests_pass(tmp_path: Path) -> None:
    found = by_name(make_servers(tmp_path))
    plain = database_request(DatabaseRef("local", "sales"))
    copy = database_request(
        DatabaseRef("local", "sales"), source=source_field(DatabaseRef("local", "orders"))
    )
    file = database_request(DatabaseRef("local", "sales"), file="sales-2026.sql")
    index: JsonObject = {"name": "ix", "table": "t", "columns": ["a", "b c"], "unique": True}
    for name, request in [
        ("db.create", plain),
        ("db.drop", plain),
        ("db.copy", copy),
        ("db.export", file),
        ("db.import", file),
        ("db.backup", file),
        ("db.restore", file),
        ("db.index", database_request(DatabaseRef("local", "sales"), index=index)),
    ]:
        validate = found[name].validate
        assert validate is not None
        validate(request)  # raises nothing
    assert not (tmp_path / "local").exists()  # checking touches no file


@pytest.mark.parametrize(
    ("kind", "request_", "error", "match"),
    [
        ("db.create", {"server": "local", "database": "a", "x": 1}, InvalidRequest, "'x'"),
        ("db.drop", {"server": "local", "database": "a", "source": {}}, InvalidRequest, "source"),
        (
            "db.copy",
            {
                "server": "local",
                "database": "a",
                "source": {"server": "local", "database": "b"},
                "extra": True,
            },
            InvalidRequest,
            "unknown request field 'extra'",
        ),
        ("db.create", {"server": "local"}, InvalidRequest, "request.database must be"),
        ("db.create", {"database": "a"}, InvalidRequest, "request.server and"),
        ("db.create", {"server": "local", "database": 5}, InvalidRequest, "strings"),
        ("db.create", {}, InvalidRequest, "strings"),
        ("db.create", {"server": "nowhere", "database": "a"}, ResourceNotFound, "'nowhere'"),
        ("db.drop", {"server": "nowhere", "database": "a"}, ResourceNotFound, "'nowhere'"),
        ("db.create", {"server": "Local", "database": "a"}, InvalidRequest, "server name"),
        ("db.create", {"server": "local", "database": "a."}, InvalidRequest, "database name"),
        ("db.drop", {"server": "local", "database": "a/b"}, InvalidRequest, "database name"),
        ("db.create", {"server": "local", "database": "x" * 129}, InvalidRequest, "database"),
        ("db.copy", {"server": "local", "database": "a"}, InvalidRequest, "request.source must"),
        (
            "db.copy",
            {"server": "local", "database": "a", "source": "local/b"},
            InvalidRequest,
            "request.source must name a server and a database",
        ),
        (
            "db.copy",
            {"server": "local", "database": "a", "source": {"server": "local"}},
            InvalidRequest,
            "request.source.server and request.source.database must be strings",
        ),
        (
            "db.copy",
            {"server": "local", "database": "a", "source": {"server": "far", "database": "b"}},
            ResourceNotFound,
            "'far'",
        ),
        (
            "db.copy",
            {"server": "far", "database": "a", "source": {"server": "local", "database": "b"}},
            ResourceNotFound,
            "'far'",
        ),
        (
            "db.copy",
            {"server": "other", "database": "a", "source": {"server": "local", "database": "b"}},
            InvalidRequest,
            "a copy must stay on its server",
        ),
        ("db.export", {"server": "local", "database": "a"}, InvalidRequest, "request.file"),
        ("db.import", {"server": "local", "database": "a", "file": 5}, InvalidRequest, "file"),
        (
            "db.export",
            {"server": "local", "database": "a", "file": "../etc/passwd"},
            InvalidRequest,
            "file name '../etc/passwd' is not valid",
        ),
        ("db.backup", {"server": "local", "database": "a", "file": ".x"}, InvalidRequest, "file"),
        (
            "db.restore",
            {"server": "local", "database": "a", "file": "a.partial"},
            InvalidRequest,
            "file name",
        ),
        ("db.alter", {"server": "local", "database": "a"}, InvalidRequest, "request.changes"),
        (
            "db.alter",
            {"server": "local", "database": "a", "changes": {}},
            InvalidRequest,
            "at least one change",
        ),
        ("db.index", {"server": "local", "database": "a"}, InvalidRequest, "request.index"),
        (
            "db.index",
            {"server": "local", "database": "a", "index": {"name": "i", "table": "t"}},
            InvalidRequest,
            "columns",
        ),
        (
            "db.index",
            {
                "server": "local",
                "database": "a",
                "index": {"name": "i", "table": "t", "columns": ["a"], "where": "x"},
            },
            InvalidRequest,
            "request.index.where",
        ),
        (
            "db.index",
            {
                "server": "local",
                "database": "a",
                "index": {"name": "", "table": "t", "columns": ["a"]},
            },
            InvalidRequest,
            "request.index.name",
        ),
        (
            "db.index",
            {
                "server": "local",
                "database": "a",
                "index": {"name": "i", "table": "t", "columns": ["a"], "unique": "yes"},
            },
            InvalidRequest,
            "unique must be a boolean",
        ),
        (
            "db.copy",
            {"server": "local", "database": "a", "source": {"server": "local", "database": "b?"}},
            InvalidRequest,
            "database name",
        ),
    ],
)
def test_invalid_requests(
    tmp_path: Path,
    kind: str,
    request_: JsonObject,
    error: type[Exception],
    match: str,
) -> None:
    validate = by_name(make_servers(tmp_path))[kind].validate
    assert validate is not None
    with pytest.raises(error) as caught:
        validate(request_)
    assert type(caught.value) is error
    assert match in str(caught.value)


def test_ref_of_reads_the_request_or_a_member() -> None:
    request: JsonObject = {
        "server": "local",
        "database": "copy",
        "source": {"server": "other", "database": "orders"},
    }
    assert ref_of(request) == DatabaseRef("local", "copy")
    assert ref_of(request, "source") == DatabaseRef("other", "orders")
    with pytest.raises(InvalidRequest, match=r"request\.missing must name"):
        ref_of(request, "missing")


# End to end, through the engine with the memory store ----------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[OperationService, Backends]]:
    servers = make_servers(tmp_path, pages=1, pause=0.02)
    store = open_store("memory://")
    await store.open()
    registry = HandlerRegistry(database_kinds(servers))
    service = OperationService(store, registry)
    worker = Worker(store, registry, config=FAST_ENGINE, signals=service.signals)
    task = asyncio.create_task(worker.run())
    try:
        yield service, servers
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
        await store.close()


async def start(service: OperationService, kind: str, request: JsonObject) -> Operation:
    return (await service.start(StartRequest(kind=kind, request=request))).operation


def fill(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)")
        conn.executemany("INSERT INTO t VALUES (?, randomblob(200))", [(i,) for i in range(rows)])
        conn.commit()


async def test_create_copy_and_drop_through_the_engine(
    engine: tuple[OperationService, Backends],
) -> None:
    service, servers = engine
    sales = DatabaseRef("local", "sales")
    created = await start(service, "db.create", database_request(sales))
    assert created.title == "CREATE DATABASE" and created.target == sales.target
    done = await service.wait(created.id, timeout=10)
    assert done.state is State.SUCCEEDED, done.error
    assert done.result == {"server": "local", "database": "sales"}
    assert names(servers, "local") == ["sales"]

    again = await service.wait((await start(service, "db.create", database_request(sales))).id, 10)
    assert again.state is State.FAILED
    assert again.error is not None and again.error.code is Code.ALREADY_EXISTS

    fill(sqlite_path(servers, DatabaseRef("local", "orders")), 200)
    copy_ref = DatabaseRef("local", "orders copy")
    copied = await start(
        service,
        "db.copy",
        database_request(copy_ref, source=source_field(DatabaseRef("local", "orders"))),
    )
    assert copied.target == "servers/local/databases/orders copy"
    done = await service.wait(copied.id, timeout=30)
    assert done.state is State.SUCCEEDED, done.error
    assert isinstance(done.result, dict) and done.result["database"] == "orders copy"
    assert isinstance(done.result["pages"], int) and done.result["pages"] > 5
    assert done.progress.percent == 100.0
    with contextlib.closing(sqlite3.connect(sqlite_path(servers, copy_ref))) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (200,)

    dropped = await start(service, "db.drop", database_request(sales))
    assert not dropped.cancellable and dropped.title == "DROP DATABASE"
    done = await service.wait(dropped.id, timeout=10)
    assert done.state is State.SUCCEEDED, done.error
    assert names(servers, "local") == ["orders", "orders copy"]

    missing = await service.wait((await start(service, "db.drop", database_request(sales))).id, 10)
    assert missing.state is State.FAILED
    assert missing.error is not None and missing.error.code is Code.NOT_FOUND


async def test_a_cancelled_copy_leaves_no_file(
    engine: tuple[OperationService, Backends],
) -> None:
    service, servers = engine
    source = DatabaseRef("local", "orders")
    fill(
        sqlite_path(servers, source), 2000
    )  # hundreds of pages, one per 20 ms step: seconds to copy
    target = DatabaseRef("local", "copy")
    op = await start(service, "db.copy", database_request(target, source=source_field(source)))
    async with asyncio.timeout(10):
        while (seen := await service.get(op.id)).progress.percent <= 0:
            await asyncio.sleep(0.02)
    assert seen.state is State.RUNNING
    assert seen.progress.phase is not None and seen.progress.phase.startswith("copied ")
    assert seen.progress.eta is not None
    await service.cancel(op.id)
    done = await service.wait(op.id, timeout=10)
    assert done.state is State.CANCELLED
    assert done.cancel_outcome is CancelOutcome.STOPPED_COOPERATIVELY
    directory = sqlite_path(servers, source).parent
    assert sorted(p.name for p in directory.iterdir()) == ["orders.sqlite3"]


async def test_a_drop_is_cancellable_only_until_it_runs(
    engine: tuple[OperationService, Backends],
) -> None:
    service, servers = engine
    ref, orders = DatabaseRef("local", "sales"), DatabaseRef("local", "orders")
    fill(sqlite_path(servers, orders), 300)
    # A slow copy holds the target, so the drop queued behind it stays PENDING meanwhile.
    copy = await start(service, "db.copy", database_request(ref, source=source_field(orders)))
    drop = await start(service, "db.drop", database_request(ref))
    assert drop.state is State.PENDING and not drop.cancellable
    running = dataclasses.replace(drop, state=State.RUNNING, start_time=drop.create_time)
    with pytest.raises(NotCancellable):
        lifecycle.request_cancel(running, now=drop.create_time)
    cancelled = await service.cancel(drop.id)
    assert cancelled.state is State.CANCELLED
    assert cancelled.cancel_outcome is CancelOutcome.NOT_STARTED
    assert (await service.wait(copy.id, timeout=30)).state is State.SUCCEEDED
    assert names(servers, "local") == ["orders", "sales"]  # never dropped
