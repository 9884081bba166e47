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
from longrunning.databases.kinds import database_kinds, database_request, ref_of
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import DatabaseServers, SqliteServer
from longrunning.engine.kinds import HandlerRegistry, OperationKind
from longrunning.engine.service import OperationService, StartRequest
from longrunning.engine.worker import Worker
from longrunning.stores import open_store
from longrunning.testing import FAST_ENGINE


def make_servers(tmp_path: Path, *, pages: int = 256, pause: float = 0.0) -> DatabaseServers:
    local = SqliteServer(
        name="local",
        directory=tmp_path / "local",
        copy_pages_per_step=pages,
        copy_step_pause_seconds=pause,
    )
    other = SqliteServer(name="other", directory=tmp_path / "other")
    return DatabaseServers({server.name: server for server in (local, other)})


def by_name(servers: DatabaseServers) -> dict[str, OperationKind]:
    return {kind.name: kind for kind in database_kinds(servers)}


def test_the_three_kinds(tmp_path: Path) -> None:
    found = by_name(make_servers(tmp_path))
    assert (
        list(found) == [kinds.CREATE, kinds.COPY, kinds.DROP] == ["db.create", "db.copy", "db.drop"]
    )
    assert {name: kind.title for name, kind in found.items()} == {
        "db.create": "CREATE DATABASE",
        "db.copy": "DATABASE COPY",
        "db.drop": "DROP DATABASE",
    }
    assert found["db.create"].cancellable and found["db.copy"].cancellable
    assert not found["db.drop"].cancellable
    for kind in found.values():
        assert kind.blocking  # plain functions: run in a worker's thread
        assert kind.validate is not None and kind.target is not None
        assert kind.description
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
    request = database_request(DatabaseRef("other", "copy"), DatabaseRef("local", "orders"))
    assert request == {
        "server": "other",
        "database": "copy",
        "source": {"server": "local", "database": "orders"},
    }
    assert copy.target(request) == "servers/other/databases/copy"


def test_valid_requests_pass(tmp_path: Path) -> None:
    found = by_name(make_servers(tmp_path))
    plain = database_request(DatabaseRef("local", "sales"))
    copy = database_request(DatabaseRef("other", "sales"), DatabaseRef("local", "orders"))
    for name, request in [("db.create", plain), ("db.drop", plain), ("db.copy", copy)]:
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
async def engine(tmp_path: Path) -> AsyncIterator[tuple[OperationService, DatabaseServers]]:
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
    engine: tuple[OperationService, DatabaseServers],
) -> None:
    service, servers = engine
    sales = DatabaseRef("local", "sales")
    created = await start(service, "db.create", database_request(sales))
    assert created.title == "CREATE DATABASE" and created.target == sales.target
    done = await service.wait(created.id, timeout=10)
    assert done.state is State.SUCCEEDED, done.error
    assert done.result == {"server": "local", "database": "sales"}
    assert servers.get("local").database_names() == ["sales"]

    again = await service.wait((await start(service, "db.create", database_request(sales))).id, 10)
    assert again.state is State.FAILED
    assert again.error is not None and again.error.code is Code.ALREADY_EXISTS

    fill(servers.path(DatabaseRef("local", "orders")), 200)
    copy_ref = DatabaseRef("other", "orders copy")
    copied = await start(
        service, "db.copy", database_request(copy_ref, DatabaseRef("local", "orders"))
    )
    assert copied.target == "servers/other/databases/orders copy"
    done = await service.wait(copied.id, timeout=30)
    assert done.state is State.SUCCEEDED, done.error
    assert isinstance(done.result, dict) and done.result["database"] == "orders copy"
    assert isinstance(done.result["pages"], int) and done.result["pages"] > 5
    assert done.progress.percent == 100.0
    with contextlib.closing(sqlite3.connect(servers.path(copy_ref))) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (200,)

    dropped = await start(service, "db.drop", database_request(sales))
    assert not dropped.cancellable and dropped.title == "DROP DATABASE"
    done = await service.wait(dropped.id, timeout=10)
    assert done.state is State.SUCCEEDED, done.error
    assert servers.get("local").database_names() == ["orders"]

    missing = await service.wait((await start(service, "db.drop", database_request(sales))).id, 10)
    assert missing.state is State.FAILED
    assert missing.error is not None and missing.error.code is Code.NOT_FOUND


async def test_a_cancelled_copy_leaves_no_file(
    engine: tuple[OperationService, DatabaseServers],
) -> None:
    service, servers = engine
    source = DatabaseRef("local", "orders")
    fill(servers.path(source), 2000)  # hundreds of pages, one per 20 ms step: seconds to copy
    target = DatabaseRef("local", "copy")
    op = await start(service, "db.copy", database_request(target, source))
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
    directory = servers.get("local").directory
    assert sorted(p.name for p in directory.iterdir()) == ["orders.sqlite3"]


async def test_a_drop_is_cancellable_only_until_it_runs(
    engine: tuple[OperationService, DatabaseServers],
) -> None:
    service, servers = engine
    ref, orders = DatabaseRef("local", "sales"), DatabaseRef("local", "orders")
    fill(servers.path(orders), 300)
    # A slow copy holds the target, so the drop queued behind it stays PENDING meanwhile.
    copy = await start(service, "db.copy", database_request(ref, orders))
    drop = await start(service, "db.drop", database_request(ref))
    assert drop.state is State.PENDING and not drop.cancellable
    running = dataclasses.replace(drop, state=State.RUNNING, start_time=drop.create_time)
    with pytest.raises(NotCancellable):
        lifecycle.request_cancel(running, now=drop.create_time)
    cancelled = await service.cancel(drop.id)
    assert cancelled.state is State.CANCELLED
    assert cancelled.cancel_outcome is CancelOutcome.NOT_STARTED
    assert (await service.wait(copy.id, timeout=30)).state is State.SUCCEEDED
    assert servers.get("local").database_names() == ["orders", "sales"]  # never dropped
