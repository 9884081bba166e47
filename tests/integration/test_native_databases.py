"""The native API's database routes and NativeClient's database methods, against a real service
and worker whose server `local` keeps SQLite files in tmp_path (uvicorn on 127.0.0.1); and the
CLI's follow of an operation through two Ctrl-C's.

The fixtures of conftest.py are overridden here so that the app knows database kinds and serves
the database routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from longrunning.cli.follow import follow
from longrunning.client import ClientError, NativeClient, index_name
from longrunning.databases.backends import Backends
from longrunning.databases.kinds import database_kinds
from longrunning.databases.servers import DatabaseServers, SqliteServer
from longrunning.databases.service import DatabaseService
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService
from longrunning.faces.native.rest import http_exception_handler, native_routes
from longrunning.stores.memory import MemoryStore

PARENT = "projects/p/locations/l"

pytestmark = pytest.mark.usefixtures("running_worker")


@pytest.fixture
def server(tmp_path: Path) -> SqliteServer:
    return SqliteServer(
        name="local", directory=tmp_path / "local", files=tmp_path / "files", parent=PARENT
    )


@pytest.fixture
def backends(server: SqliteServer) -> Backends:
    return Backends(DatabaseServers({server.name: server}))


@pytest.fixture
def native_service(native_store: MemoryStore, backends: Backends) -> OperationService:
    return OperationService(native_store, HandlerRegistry((*DEMO_KINDS, *database_kinds(backends))))


@pytest.fixture
def native_app(native_service: OperationService, backends: Backends) -> Starlette:
    return Starlette(
        routes=native_routes(
            native_service,
            databases=DatabaseService(native_service, backends),
            heartbeat_seconds=0.2,
        ),
        exception_handlers={HTTPException: http_exception_handler},
    )


async def test_servers_show_name_kind_and_parent_never_a_path(live_url: str) -> None:
    async with NativeClient(live_url) as client:
        assert await client.list_servers() == [
            {"name": "local", "kind": "sqlite", "parent": PARENT}
        ]


async def test_create_copy_describe_list_and_drop(live_url: str, server: SqliteServer) -> None:
    async with NativeClient(live_url) as client:
        created = await client.create_database("local", "sales")
        assert created["parent"] == PARENT  # the server's parent, as on every other face
        assert created["target"] == "servers/local/databases/sales"
        assert (await client.wait(created["id"], 10))["state"] == "SUCCEEDED"
        with contextlib.closing(sqlite3.connect(server.path("sales"))) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.commit()

        copied = await client.wait((await client.copy_database("local", "sales", "a b#c"))["id"])
        assert copied["result"]["database"] == "a b#c"

        described = await client.get_database("local", "a b#c")  # quoted in the path
        assert described["name"] == "a b#c"
        assert described["server"] == "local"
        assert described["sizeBytes"] == server.path("a b#c").stat().st_size
        assert described["createTime"].endswith("Z")
        listed = await client.list_databases("local")
        assert [db["name"] for db in listed] == ["a b#c", "sales"]
        assert listed[0]["databaseId"] == described["databaseId"]

        dropped = await client.wait((await client.drop_database("local", "a b#c"))["id"])
        assert dropped["state"] == "SUCCEEDED"
        with pytest.raises(ClientError) as missing:
            await client.get_database("local", "a b#c")
    assert (missing.value.status, missing.value.reason) == (404, "DATABASE_NOT_FOUND")


async def test_files_list_plain_files_only(live_url: str, server: SqliteServer) -> None:
    async with NativeClient(live_url) as client:
        assert await client.list_files("local") == []
        server.files.mkdir(parents=True)
        (server.files / "sales.sql").write_text("-- dump\n")
        (server.files / ".sales.sql.1234.partial").write_text("")
        files = await client.list_files("local")
    assert [(f["name"], f["sizeBytes"]) for f in files] == [("sales.sql", 8)]
    assert files[0]["modifyTime"].endswith("Z")


async def test_unknown_servers_and_bad_names_are_refused(live_url: str) -> None:
    async with NativeClient(live_url) as client:
        for call in (
            client.list_databases("nowhere"),
            client.list_files("nowhere"),
            client.get_database("nowhere", "x"),
        ):
            with pytest.raises(ClientError) as caught:
                await call
            assert (caught.value.status, caught.value.reason) == (404, "SERVER_NOT_FOUND")
        with pytest.raises(ClientError) as bad:
            await client.get_database("local", "trailing.")
        assert (bad.value.status, bad.value.reason) == (400, "INVALID_DATABASE_NAME")
        with pytest.raises(ClientError) as refused:
            await client.create_database("nowhere", "x")
        assert refused.value.reason == "SERVER_NOT_FOUND"


async def test_an_explicit_parent_is_kept(live_url: str) -> None:
    async with NativeClient(live_url) as client:
        request = {"server": "local", "database": "mine"}
        op = await client.start("db.create", parent="projects/x/locations/y", request=request)
    assert op["parent"] == "projects/x/locations/y"


def test_index_names_default_to_table_and_columns_within_63_bytes() -> None:
    assert index_name("items", ["name", "id"]) == "ix_items_name_id"
    long = index_name("t" * 40, ["é" * 20])
    assert len(long.encode()) <= 63
    assert long.startswith("ix_" + "t" * 40 + "_é")


async def test_ctrl_c_cancels_then_a_second_one_detaches(live_url: str) -> None:
    """A stubborn operation goes on after its cancel: the first Ctrl-C requests it, the second
    stops the follow, which leaves SIGINT as it found it."""
    before = signal.getsignal(signal.SIGINT)
    async with NativeClient(live_url) as client:
        request = {"duration_seconds": 2.5, "steps": 50, "ignore_cancel": True}
        op = await client.start("demo.sleep", request=request)
        console = Console(file=io.StringIO(), force_terminal=False)
        following = asyncio.create_task(follow(client, op, console, quiet=False))

        async def until(predicate: str) -> None:
            for _ in range(500):
                now = await client.get(op["id"])
                if now.get(predicate) and signal.getsignal(signal.SIGINT) is not before:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"never {predicate}")

        await until("startTime")
        signal.raise_signal(signal.SIGINT)
        await until("cancelRequested")
        signal.raise_signal(signal.SIGINT)
        followed = await asyncio.wait_for(following, 5)
        assert followed.detached
        assert followed.op is not None and not followed.op["done"]
        assert signal.getsignal(signal.SIGINT) is before
        final = await client.wait(op["id"], 10)
    assert (final["state"], final["cancelOutcome"]) == ("SUCCEEDED", "COMPLETED_BEFORE_CANCEL")


async def test_follow_on_a_terminal_draws_a_bar_and_elsewhere_plain_lines(
    live_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {"duration_seconds": 0.3, "steps": 3}
    async with NativeClient(live_url) as client:
        terminal = io.StringIO()
        console = Console(file=terminal, force_terminal=True, width=100)
        op = await client.start("demo.sleep", request=request)
        followed = await follow(client, op, console, quiet=False)
        assert followed.op is not None and followed.op["state"] == "SUCCEEDED"
        assert "\x1b[" in terminal.getvalue() and "100%" in terminal.getvalue()
        assert capsys.readouterr().out == ""

        plain = Console(file=io.StringIO(), force_terminal=False)
        op = await client.start("demo.sleep", request=request)
        await follow(client, op, plain, quiet=False)
        lines = capsys.readouterr().out.splitlines()
        assert lines and all(line.startswith(("PENDING", "RUNNING")) for line in lines)
        assert "\x1b" not in "".join(lines)

        op = await client.start("demo.sleep", request=request)
        quiet = await follow(client, op, plain, quiet=True)
        assert quiet.op is not None and quiet.op["state"] == "SUCCEEDED"
        assert capsys.readouterr().out == ""
