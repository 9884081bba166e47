"""Microsoft's own azure-mgmt-sql, unmodified, against a real server over HTTPS: database
operations listed (every page) and cancelled, server operations, and the ARM asynchronous
operations of `begin_create_or_update` (empty and copy) and `begin_delete` driven to the end."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.sql import SqlManagementClient
from azure.mgmt.sql.models import Database, DatabaseOperation, DatabaseProperties

from tests.acceptance.azure.conftest import SERVER, SUBSCRIPTION, AzureServer
from tests.acceptance.processes import wait_for

pytestmark = pytest.mark.acceptance

TOKEN = "test-token-never-logged-7f3a"
RG = "rg1"


class StaticCredential:
    """The smallest TokenCredential: azure-core only calls get_token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def client(azure_server: AzureServer) -> Iterator[SqlManagementClient]:
    sql = SqlManagementClient(
        StaticCredential(),
        SUBSCRIPTION,
        base_url=azure_server.url,
        connection_verify=str(azure_server.ca),
        retry_total=0,
    )
    with sql:
        yield sql


def _database_ops(client: SqlManagementClient, database: str) -> list[DatabaseOperation]:
    return list(client.database_operations.list_by_database(RG, SERVER, database))


def _op(client: SqlManagementClient, database: str, op_id: str) -> DatabaseOperation:
    for op in _database_ops(client, database):
        if op.name == op_id:
            return op
    raise AssertionError(f"operation {op_id} is not listed for {database}")


def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _copy_of(source_id: str) -> Database:
    return Database(
        location="local",
        properties=DatabaseProperties(create_mode="Copy", source_database_id=source_id),
    )


def _make_source(path: os.PathLike[str] | str, megabytes: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)")
        conn.executemany("INSERT INTO t (blob) VALUES (randomblob(4000))", [()] * (megabytes * 256))
        conn.commit()


def test_create_get_and_delete_a_database_through_pollers(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    poller = client.databases.begin_create_or_update(
        RG, SERVER, "created", Database(location="local")
    )
    db = poller.result(timeout=60)
    assert poller.status() == "Succeeded"
    assert db.name == "created" and db.status == "Online"
    assert db.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Sql"
        f"/servers/{SERVER}/databases/created"
    )
    path = azure_server.server_dir / "created.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert client.databases.get(RG, SERVER, "created").database_id == db.database_id
    assert "created" in [d.name for d in client.databases.list_by_server(RG, SERVER)]
    # The operation that made it is listed, finished, under its friendly name.
    (create,) = _database_ops(client, "created")
    assert create.operation == "db.create" and create.operation_friendly_name == "CREATE DATABASE"
    assert create.state == "Succeeded" and create.percent_complete == 100
    assert create.is_cancellable is False and create.database_name == "created"

    again = client.databases.begin_create_or_update(
        RG, SERVER, "created", Database(location="local")
    )
    assert again.result(timeout=30).name == "created"  # it exists: done at once, no new work
    assert len(_database_ops(client, "created")) == 1

    deleting = client.databases.begin_delete(RG, SERVER, "created")
    assert deleting.result(timeout=60) is None
    assert deleting.status() == "Succeeded"
    assert not path.exists()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.databases.get(RG, SERVER, "created")
    assert missing.value.error is not None and missing.value.error.code == "DatabaseDoesNotExist"
    states = {op.operation_friendly_name: op.state for op in _database_ops(client, "created")}
    assert states == {"CREATE DATABASE": "Succeeded", "DROP DATABASE": "Succeeded"}


def test_list_by_database_follows_next_links_through_every_page(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    target = f"servers/{SERVER}/databases/paged"
    started = {
        azure_server.start("demo.sleep", {"duration_seconds": 0, "steps": 1}, target=target)
        for _ in range(56)
    }
    pages = [list(page) for page in client.database_operations.list_by_database(
        RG, SERVER, "paged"
    ).by_page()]  # fmt: skip
    assert [len(page) for page in pages] == [50, 6]
    listed = [op for page in pages for op in page]
    assert {op.name for op in listed} == started
    assert all(str(op.id).endswith(f"/databases/paged/operations/{op.name}") for op in listed)
    by_server = {op.name for op in client.server_operations.list_by_server(RG, SERVER)}
    assert started <= by_server


def test_a_copy_cancelled_midway_goes_cancel_in_progress_then_cancelled(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    azure_server.server_dir.mkdir(parents=True, exist_ok=True)
    source = azure_server.server_dir / "source.sqlite3"
    _make_source(source, megabytes=8)
    source_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Sql"
        f"/servers/{SERVER}/databases/source"
    )
    poller = client.databases.begin_create_or_update(
        RG,
        SERVER,
        "copy",
        _copy_of(source_id),
    )
    op_id = _database_ops(client, "copy")[0].name
    assert op_id is not None
    _until(lambda: (_op(client, "copy", op_id).percent_complete or 0) > 0)
    running = _op(client, "copy", op_id)
    assert running.state == "InProgress" and running.is_cancellable is True
    assert running.operation_friendly_name == "DATABASE COPY"

    # Freeze the worker: the cancel is recorded but the copy cannot have stopped yet, so every
    # view must say CancelInProgress, never Cancelled.
    os.kill(azure_server.worker.proc.pid, signal.SIGSTOP)
    try:
        client.database_operations.cancel(RG, SERVER, "copy", op_id)
        asked = _op(client, "copy", op_id)
        assert asked.state == "CancelInProgress" and asked.is_cancellable is False
        assert poller.status() == "InProgress"
        with azure_server.native() as native:
            seen = native.get(f"/api/v1/operations/{op_id}").json()
        assert seen["state"] == "RUNNING" and seen["cancelRequested"] is True
    finally:
        os.kill(azure_server.worker.proc.pid, signal.SIGCONT)

    with pytest.raises(HttpResponseError) as cancelled:
        poller.result(timeout=60)
    assert poller.status() == "Canceled"
    assert cancelled.value.error is not None
    assert cancelled.value.error.code == "OperationCancelled"
    done = _op(client, "copy", op_id)
    assert done.state == "Cancelled" and 0 < (done.percent_complete or 0) < 100
    assert sorted(p.name for p in azure_server.server_dir.iterdir()) == ["source.sqlite3"]
    with contextlib.closing(sqlite3.connect(source)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # A finished operation cannot be cancelled: 409, which azure-core maps to ResourceExistsError.
    with pytest.raises(ResourceExistsError) as refused:
        client.database_operations.cancel(RG, SERVER, "copy", op_id)
    assert refused.value.error is not None
    assert refused.value.error.code == "CannotCancelOperation"


def test_a_copy_runs_to_completion_with_progress(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    azure_server.server_dir.mkdir(parents=True, exist_ok=True)
    source = azure_server.server_dir / "small.sqlite3"
    _make_source(source, megabytes=1)
    source_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Sql"
        f"/servers/{SERVER}/databases/small"
    )
    poller = client.databases.begin_create_or_update(
        RG, SERVER, "small-copy",
        _copy_of(source_id),
    )  # fmt: skip
    seen: list[int] = []
    while not poller.done():
        ops = _database_ops(client, "small-copy")
        if ops and ops[0].percent_complete is not None:
            seen.append(ops[0].percent_complete)
        time.sleep(0.05)
    assert poller.result().name == "small-copy"
    assert seen == sorted(seen) and len(set(seen)) > 1, seen
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(azure_server.server_dir / "small-copy.sqlite3")) as dst,
    ):
        assert (
            dst.execute("SELECT count(*) FROM t").fetchone()
            == src.execute("SELECT count(*) FROM t").fetchone()
        )


def test_cancel_of_an_unknown_operation_is_404_operation_id_not_found(
    client: SqlManagementClient,
) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        client.database_operations.cancel(
            RG, SERVER, "nowhere", "11111111-1111-1111-1111-111111111111"
        )
    assert missing.value.error is not None and missing.value.error.code == "OperationIdNotFound"


def test_failed_operations_carry_their_error_in_every_shape(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    op_id = azure_server.start(
        "demo.fail",
        {"code": "RESOURCE_EXHAUSTED", "message": "disk quota reached"},
        target=f"servers/{SERVER}/databases/failing",
    )
    with azure_server.native() as native:
        wait_for(native, op_id, lambda op: op["done"] is True)
    (failed,) = _database_ops(client, "failing")
    assert failed.state == "Failed" and failed.error_code == 8
    assert failed.error_description == "disk quota reached"
    assert failed.error_severity == 16 and failed.is_user_error is True
    status = _arm(azure_server, "GET", f"/locations/local/databaseAzureAsyncOperation/{op_id}")
    assert status.status_code == 200
    assert status.json()["status"] == "Failed"
    assert status.json()["error"] == {"code": "ResourceExhausted", "message": "disk quota reached"}


def _arm(
    azure_server: AzureServer,
    method: str,
    path: str,
    *,
    api_version: str | None = "2025-01-01",
    subscription: str = SUBSCRIPTION,
    group: str = RG,
) -> httpx.Response:
    url = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Sql{path}"
    params = {} if api_version is None else {"api-version": api_version}
    with azure_server.native() as native:
        return native.request(method, url, params=params)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"api_version": None}, 400, "MissingApiVersionParameter"),
        ({"api_version": "2014-04-01"}, 400, "InvalidApiVersionParameter"),
        ({"subscription": "not-a-guid"}, 400, "InvalidSubscriptionId"),
        ({"group": "g" * 91}, 400, "InvalidResourceGroupName"),
        ({"group": "ends-with-dot."}, 400, "InvalidResourceGroupName"),
    ],
)
def test_bad_requests_get_arm_errors_and_change_nothing(
    azure_server: AzureServer, change: dict[str, Any], status: int, code: str
) -> None:
    reply = _arm(azure_server, "PUT", f"/servers/{SERVER}/databases/never", **change)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) == {"code", "message", "target", "details", "additionalInfo"}
    assert reply.headers["x-ms-request-id"]
    assert not (azure_server.server_dir / "never.sqlite3").exists()


def test_names_are_checked_and_case_insensitive_where_arm_is(azure_server: AzureServer) -> None:
    lower = _arm(azure_server, "GET", f"/servers/{SERVER}/databases/x/operations", group="RG1")
    assert lower.status_code == 200 and lower.json() == {"value": []}
    upper_path = f"/SERVERS/{SERVER.upper()}/Databases/x/Operations"
    assert _arm(azure_server, "GET", upper_path).status_code == 200
    unknown = _arm(azure_server, "GET", "/servers/nosuchserver/operations")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ServerNotInSubscriptionResourceGroup"
    bad_op = _arm(azure_server, "POST", f"/servers/{SERVER}/databases/x/operations/42/cancel")
    assert bad_op.status_code == 400 and bad_op.json()["error"]["code"] == "InvalidIdentifier"
    nowhere = _arm(azure_server, "GET", f"/servers/{SERVER}/elasticPools/p/operations")
    assert nowhere.status_code == 404


def test_the_bearer_token_is_never_logged(azure_server: AzureServer) -> None:
    log = azure_server.url  # the server's log is beside its data; read it through the fixture
    assert log
    for name in ("serve.log", "worker.log"):
        text = (azure_server.server_dir.parent / name).read_text()
        assert TOKEN not in text
