"""The database methods of the Google face against a real server over 127.0.0.1, driven the way a
Google client library drives them: a real google-auth HTTP session sends the request, and the
Operation it returns becomes a real google-api-core future (`from_gapic` with the REST operations
client, or `from_http_json`) whose `.result()` polls to the end and whose `.cancel()` stops it."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions, operation, operations_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.longrunning import operations_pb2
from google.protobuf import json_format, struct_pb2

from tests.acceptance.google.conftest import DB_PARENT, GoogleServer

pytestmark = pytest.mark.acceptance

SERVER = f"{DB_PARENT}/servers/local"
COLLECTION = f"{SERVER}/databases"

Json = dict[str, Any]


class Api:
    """JSON calls under /v1 through a google-auth session; errors raised as api-core does."""

    def __init__(self, server: GoogleServer, session: AuthorizedSession) -> None:
        self.base = f"{server.http}/v1"
        self.session = session

    def __call__(self, method: str, path: str, *, json: Json | None = None, **params: str) -> Json:
        reply = self.session.request(
            method, f"{self.base}/{path}", json=json, params=params or None, timeout=30
        )
        if reply.status_code >= 400:
            raise exceptions.from_http_response(reply)
        body: Json = reply.json()
        return body

    def api_request(self, method: str, path: str) -> Json:
        """What `operation.from_http_json` calls to refresh and cancel."""
        return self(method, path)


@pytest.fixture
def api(google_server: GoogleServer) -> Iterator[Api]:
    session = AuthorizedSession(AnonymousCredentials())
    yield Api(google_server, session)
    session.close()


@pytest.fixture
def operations(google_server: GoogleServer) -> operations_v1.AbstractOperationsClient:
    return operations_v1.AbstractOperationsClient(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=google_server.http),
    )


def future(body: Json, client: operations_v1.AbstractOperationsClient) -> operation.Operation:
    started = json_format.ParseDict(body, operations_pb2.Operation())
    made: operation.Operation = operation.from_gapic(
        started, client, struct_pb2.Struct, metadata_type=struct_pb2.Struct
    )
    return made


def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def content(conn: sqlite3.Connection) -> dict[str, Any]:
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    tables = [name for kind, name, _ in schema if kind == "table"]
    rows = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}
    return {"schema": schema, "rows": rows}


def content_of(path: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return content(conn)


def fill(path: Path, *, blob_megabytes: int = 0) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, photo BLOB);"
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total REAL);"
        )
        conn.executemany(
            "INSERT INTO customers (name, photo) VALUES (?, ?)",
            [("Zoë O'Brien", b"\x00\xff"), ("李", None)],
        )
        conn.executemany(
            "INSERT INTO orders (customer, total) VALUES (?, ?)",
            [(i % 2 + 1, i) for i in range(50)],
        )
        conn.executemany(
            "INSERT INTO customers (name, photo) VALUES ('big', randomblob(4000))",
            [()] * (blob_megabytes * 256),
        )
        conn.commit()


def test_create_export_import_and_delete_through_api_core_futures(
    api: Api, operations: operations_v1.AbstractOperationsClient, google_server: GoogleServer
) -> None:
    db = new_id("sales")
    creating = future(api("POST", COLLECTION, json={}, databaseId=db), operations)
    result = creating.result(timeout=30)
    assert isinstance(result, struct_pb2.Struct)
    assert (result["server"], result["database"]) == ("local", db)
    assert creating.metadata is not None
    assert creating.metadata["verb"] == "db.create"
    assert creating.metadata["target"] == f"servers/local/databases/{db}"
    assert creating.metadata["progressPercent"] == 100
    assert creating.operation.name.startswith(f"{DB_PARENT}/operations/")

    name = f"{COLLECTION}/{db}"
    got = api("GET", name)
    assert got["name"] == name and int(got["sizeBytes"]) > 0
    assert set(got) == {"name", "uid", "sizeBytes", "createTime"}
    fill(google_server.databases / f"{db}.sqlite3")
    expected = content_of(google_server.databases / f"{db}.sqlite3")

    # from_http_json: the older JSON future, polling `operations/{name}` through api_request.
    started = api("POST", f"{name}:export", json={"uri": f"gs://bucket/dumps/{db}.sql"})
    exporting = operation.from_http_json(
        started, api.api_request, struct_pb2.Struct, metadata_type=struct_pb2.Struct
    )
    exported = exporting.result(timeout=30)
    assert (exported["server"], exported["database"]) == ("local", db)
    assert exporting.metadata is not None and exporting.metadata["verb"] == "db.export"
    assert exporting.metadata["title"] == "EXPORT DATABASE"
    with contextlib.closing(sqlite3.connect(":memory:")) as memory:
        memory.executescript((google_server.files / f"{db}.sql").read_text())
        assert content(memory) == expected

    copy = f"{db}-imported"
    body = {"databaseId": copy, "file": f"{db}.sql"}
    future(api("POST", f"{COLLECTION}:import", json=body), operations).result(timeout=30)
    assert content_of(google_server.databases / f"{copy}.sqlite3") == expected

    listed = [d["name"] for d in api("GET", COLLECTION, pageSize="1000")["databases"]]
    assert {name, f"{COLLECTION}/{copy}"} <= set(listed)

    for gone in (name, f"{COLLECTION}/{copy}"):
        deleting = future(api("DELETE", gone), operations)
        deleting.result(timeout=30)
        assert deleting.metadata is not None and deleting.metadata["verb"] == "db.drop"
        with pytest.raises(exceptions.NotFound) as missing:
            api("GET", gone)
        assert missing.value.reason == "DATABASE_NOT_FOUND"
    assert not (google_server.databases / f"{db}.sqlite3").exists()


def test_a_copy_is_cancelled_through_its_future(
    api: Api, operations: operations_v1.AbstractOperationsClient, google_server: GoogleServer
) -> None:
    source, copy = new_id("big"), new_id("big-copy")
    google_server.databases.mkdir(parents=True, exist_ok=True)
    fill(google_server.databases / f"{source}.sqlite3", blob_megabytes=8)
    body = {"sourceDatabase": f"{COLLECTION}/{source}"}
    copying = future(api("POST", COLLECTION, json=body, databaseId=copy), operations)

    def progressed() -> bool:
        copying.done()  # refreshes the operation
        return copying.metadata is not None and copying.metadata["progressPercent"] > 0

    until(progressed)
    assert copying.metadata is not None and copying.metadata["verb"] == "db.copy"
    assert copying.cancel() is True
    until(copying.cancelled)
    with pytest.raises(exceptions.Cancelled):
        copying.result(timeout=30)
    assert copying.metadata["requestedCancellation"] is True
    assert 0 < copying.metadata["progressPercent"] < 100
    assert not (google_server.databases / f"{copy}.sqlite3").exists()
    with pytest.raises(exceptions.NotFound):
        api("GET", f"{COLLECTION}/{copy}")
    assert content_of(google_server.databases / f"{source}.sqlite3")["rows"]["orders"]


def test_backup_restore_index_and_alter(
    api: Api, operations: operations_v1.AbstractOperationsClient, google_server: GoogleServer
) -> None:
    db = new_id("kept")
    future(api("POST", COLLECTION, databaseId=db), operations).result(timeout=30)
    fill(google_server.databases / f"{db}.sqlite3")
    name = f"{COLLECTION}/{db}"

    index = {"table": "orders", "columns": ["customer", "total"], "unique": False}
    indexing = future(api("POST", f"{name}/indexes", json=index, indexId="by_customer"), operations)
    indexing.result(timeout=30)
    assert indexing.metadata is not None and indexing.metadata["title"] == "CREATE INDEX"
    with contextlib.closing(sqlite3.connect(google_server.databases / f"{db}.sqlite3")) as conn:
        found = conn.execute("SELECT tbl_name FROM sqlite_master WHERE name = 'by_customer'")
        assert found.fetchall() == [("orders",)]

    altering = future(api("POST", f"{name}:alter", json={"changes": {"vacuum": True}}), operations)
    altering.result(timeout=30)
    assert altering.metadata is not None and altering.metadata["verb"] == "db.alter"

    future(api("POST", f"{name}:backup", json={"file": f"{db}.bak"}), operations).result(timeout=30)
    assert (google_server.files / f"{db}.bak").is_file()
    restored = f"{db}-restored"
    body = {"databaseId": restored, "file": f"{db}.bak"}
    future(api("POST", f"{COLLECTION}:restore", json=body), operations).result(timeout=30)
    assert content_of(google_server.databases / f"{restored}.sqlite3") == content_of(
        google_server.databases / f"{db}.sqlite3"
    )


def test_errors_are_google_statuses_and_change_nothing(
    api: Api, google_server: GoogleServer
) -> None:
    db = new_id("err")
    api("POST", COLLECTION, databaseId=db)
    name = f"{COLLECTION}/{db}"
    until(lambda: (google_server.databases / f"{db}.sqlite3").exists())

    def raises(
        kind: type[exceptions.GoogleAPICallError], reason: str, *args: Any, **kw: Any
    ) -> None:
        with pytest.raises(kind) as error:
            api(*args, **kw)
        assert error.value.reason == reason, error.value.message

    raises(exceptions.NotFound, "SERVER_NOT_FOUND", "GET", f"{DB_PARENT}/servers/nowhere/databases")
    raises(
        exceptions.NotFound,
        "SERVER_NOT_FOUND",
        "GET",
        f"projects/x/locations/y/servers/local/databases/{db}",
    )
    raises(
        exceptions.BadRequest,
        "INVALID_SERVER_NAME",
        "GET",
        f"{DB_PARENT}/servers/Bad_Name/databases",
    )
    raises(exceptions.NotFound, "DATABASE_NOT_FOUND", "GET", f"{COLLECTION}/nothing-here")
    raises(exceptions.NotFound, "DATABASE_NOT_FOUND", "DELETE", f"{COLLECTION}/nothing-here")
    raises(
        exceptions.NotFound,
        "DATABASE_NOT_FOUND",
        "POST",
        f"{COLLECTION}/nothing-here:export",
        json={"file": "x.sql"},
    )
    raises(exceptions.Conflict, "DATABASE_ALREADY_EXISTS", "POST", COLLECTION, databaseId=db)
    raises(
        exceptions.BadRequest, "INVALID_DATABASE_NAME", "POST", COLLECTION, databaseId="trailing."
    )
    raises(exceptions.BadRequest, "MISSING_FIELD", "POST", COLLECTION)
    raises(exceptions.BadRequest, "INVALID_DATABASE_NAME", "GET", f"{COLLECTION}/a%3Fb")
    raises(
        exceptions.BadRequest, "INVALID_FILE_NAME", "POST", f"{name}:export", json={"file": "../x"}
    )
    raises(
        exceptions.BadRequest,
        "INVALID_FILE_NAME",
        "POST",
        f"{name}:export",
        json={"uri": "gs://bucket/"},
    )
    raises(
        exceptions.BadRequest,
        "MISSING_FIELD",
        "POST",
        f"{name}:export",
        json={"file": "a", "uri": "gs://b/a"},
    )
    raises(exceptions.BadRequest, "UNKNOWN_FIELD", "POST", f"{name}:export", json={"path": "/etc"})
    raises(exceptions.BadRequest, "UNKNOWN_PARAMETER", "GET", name, view="FULL")
    raises(exceptions.BadRequest, "INVALID_PAGE_TOKEN", "GET", COLLECTION, pageToken="%%%")
    raises(
        exceptions.BadRequest,
        "INVALID_NAME",
        "POST",
        COLLECTION,
        json={"sourceDatabase": db},
        databaseId=new_id("c"),
    )
    raises(exceptions.NotFound, "UNKNOWN_METHOD", "POST", f"{name}:frobnicate", json={})
    raises(exceptions.BadRequest, "INVALID_BODY", "POST", f"{name}:export", json=["file"])
    raises(
        exceptions.Conflict,
        "DATABASE_ALREADY_EXISTS",
        "POST",
        f"{COLLECTION}:import",
        json={"databaseId": db, "file": "x.sql"},
    )
    assert sorted(p.name for p in google_server.files.glob("x*")) == []  # fmt: skip


def test_database_routes_and_operation_routes_live_side_by_side(
    api: Api, operations: operations_v1.AbstractOperationsClient, google_server: GoogleServer
) -> None:
    # A database may be called `operations`: no operations route has that shape.
    started = api("POST", COLLECTION, databaseId="operations")
    future(started, operations).result(timeout=30)
    assert api("GET", f"{COLLECTION}/operations")["name"] == f"{COLLECTION}/operations"

    # Its operation is an ordinary one: Get, List (filtered), Wait, under the server's parent.
    assert api("GET", started["name"])["done"] is True
    assert operations.get_operation(started["name"]).done
    target = 'metadata.target = "servers/local/databases/operations"'
    listed = [op.name for op in operations.list_operations(DB_PARENT, target)]
    assert listed == [started["name"]]
    assert api("POST", f"{started['name']}:wait", json={"timeout": "1s"})["done"] is True

    future(api("DELETE", f"{COLLECTION}/operations"), operations).result(timeout=30)
    assert not (google_server.databases / "operations.sqlite3").exists()


def test_databases_list_in_pages(
    api: Api, operations: operations_v1.AbstractOperationsClient
) -> None:
    made = sorted(new_id("page") for _ in range(3))
    for db in made:
        future(api("POST", COLLECTION, databaseId=db), operations).result(timeout=30)
    seen: list[str] = []
    token = ""
    for _ in range(100):
        page = api("GET", COLLECTION, pageSize="2", pageToken=token)
        assert len(page["databases"]) <= 2
        seen += [d["name"].rsplit("/", 1)[1] for d in page["databases"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == sorted(seen) and set(made) <= set(seen)


def test_a_retried_start_gets_its_operation_back_whatever_the_database_is_now(
    api: Api, operations: operations_v1.AbstractOperationsClient
) -> None:
    """AIP-155: the existence checks (ALREADY_EXISTS, NOT_FOUND) never stand in a retry's way."""
    database = new_id("retried")
    made = api("POST", COLLECTION, json={}, databaseId=database, requestId="retry-create-1")
    future(made, operations).result(timeout=30)
    again = api("POST", COLLECTION, json={}, databaseId=database, requestId="retry-create-1")
    assert again["name"] == made["name"]  # the same operation, not ALREADY_EXISTS
    with pytest.raises(exceptions.Conflict):  # a new request for it is refused up front
        api("POST", COLLECTION, json={}, databaseId=database, requestId="retry-create-2")

    dropped = api("DELETE", f"{COLLECTION}/{database}", requestId="retry-drop-1")
    future(dropped, operations).result(timeout=30)
    assert (
        api("DELETE", f"{COLLECTION}/{database}", requestId="retry-drop-1")["name"]
        == (dropped["name"])
    )
    with pytest.raises(exceptions.NotFound):
        api("DELETE", f"{COLLECTION}/{database}", requestId="retry-drop-2")
    with pytest.raises(exceptions.NotFound):
        api("POST", f"{COLLECTION}/{database}:export", json={"file": "x.sql"}, requestId="e-1")
