"""The classic "Database Operation Status" XML API, read by Microsoft's own legacy Python client
(`azure-servicemanagement-legacy`: `perform_get` and its own XML parser) over HTTPS, against a
real `serve` and `worker`: get by GUID, list by database and by server, the states a client
sees, and the refusals. What it reads must be what the native API says of the same operation.
"""

from __future__ import annotations

import re
import time
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from azure.common import AzureHttpError  # type: ignore[import-untyped]

from tests.acceptance.azure.conftest import SERVER, SUBSCRIPTION, AzureServer

# Compiling the 2015 package warns of invalid escapes in its docstrings, which this suite makes
# errors; the warnings are not ours to fix.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", SyntaxWarning)
    from azure.servicemanagement import (  # type: ignore[import-untyped]
        SqlDatabaseManagementService,
    )
    from azure.servicemanagement._common_serialization import (  # type: ignore[import-untyped]
        _KNOWN_SERIALIZATION_XFORMS,
    )
    from azure.servicemanagement._serialization import (  # type: ignore[import-untyped]
        _MinidomXmlToObject,
    )
    from azure.servicemanagement.models import WindowsAzureData  # type: ignore[import-untyped]

pytestmark = pytest.mark.acceptance

VERSION = "2012-03-01"
NS = "{http://schemas.microsoft.com/windowsazure}"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
SERVER_PATH = f"/{SUBSCRIPTION}/services/sqlservers/servers/{SERVER}"

# The client turns state_id into StateID; RDFE spells it StateId (azure-ops.md §5.3).
_KNOWN_SERIALIZATION_XFORMS.update(
    {"state_id": "StateId", "session_activity_id": "SessionActivityId"}
)


class DatabaseOperation(WindowsAzureData):  # type: ignore[misc]
    """The fields of the .NET client's DatabaseOperation, as the legacy parser fills them."""

    _xml_name = "ServiceResource"

    def __init__(self) -> None:
        self.name = self.type = self.state = self.self_link = self.parent_link = ""
        self.id = self.session_activity_id = self.database_name = self.error = ""
        self.state_id = self.percent_complete = self.error_code = 0
        self.error_severity = self.error_state = 0
        # Strings: the client's own datetime parser cannot read seven fractional digits.
        self.start_time = self.last_modify_time = ""


@pytest.fixture
def classic(azure_server: AzureServer) -> Iterator[SqlDatabaseManagementService]:
    session = requests.Session()
    # Without this, a REQUESTS_CA_BUNDLE in the environment would override `verify`.
    session.trust_env = False
    session.verify = str(azure_server.ca)
    host = azure_server.url.removeprefix("https://")
    yield SqlDatabaseManagementService(
        subscription_id=SUBSCRIPTION, request_session=session, host=host
    )
    session.close()


def get_one(sms: SqlDatabaseManagementService, op_id: str) -> DatabaseOperation:
    response = sms.perform_get(f"{SERVER_PATH}/databaseoperations/{op_id}", x_ms_version=VERSION)
    result: DatabaseOperation = _MinidomXmlToObject.parse_response(response, DatabaseOperation)
    return result


def list_of(sms: SqlDatabaseManagementService, query: str) -> list[DatabaseOperation]:
    # The client's own path builder, which doubles the slash before the server's name.
    path = sms._get_path("services/sqlservers/servers/", SERVER) + "/databaseoperations"
    response = sms.perform_get(f"{path}?{query}", x_ms_version=VERSION)
    return list(_MinidomXmlToObject.parse_service_resources_response(response, DatabaseOperation))


def native(azure_server: AzureServer, op_id: str, verb: str = "") -> dict[str, Any]:
    with azure_server.native() as client:
        if verb:
            reply = client.post(f"/api/v1/operations/{op_id}:{verb}", params={"timeout": "30s"})
        else:
            reply = client.get(f"/api/v1/operations/{op_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def until(azure_server: AzureServer, op_id: str, check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check(native(azure_server, op_id)):
        assert time.monotonic() < deadline, native(azure_server, op_id)
        time.sleep(0.05)


def database(name: str) -> str:
    return f"servers/{SERVER}/databases/{name}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def dotnet_time(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}0Z", text), text
    return datetime.fromisoformat(text[:-2] + "+00:00")


def test_a_failed_operation_reads_as_the_native_api_has_it(
    azure_server: AzureServer, classic: SqlDatabaseManagementService
) -> None:
    db = unique("failing")
    request: dict[str, object] = {
        "after_seconds": 0,
        "code": "NOT_FOUND",
        "message": "no <source> & no luck",
    }
    op_id = azure_server.start("demo.fail", request, target=database(db))
    truth = native(azure_server, op_id, "wait")

    got = get_one(classic, op_id)

    assert (truth["state"], truth["title"]) == ("FAILED", "demo.fail")
    assert (got.id, got.session_activity_id, got.name) == (op_id, op_id, truth["title"])
    assert (got.state, got.state_id, got.database_name) == ("FAILED", 3, db)
    assert got.percent_complete == int(truth["progress"]["percent"])
    assert (got.error_code, got.error, got.error_severity, got.error_state) == (
        truth["error"]["code"],
        "no <source> & no luck",
        truth["error"]["severity"],
        0,
    )
    assert got.type == "Microsoft.SqlAzure.DatabaseOperation"
    link = f"https://management.core.windows.net:8443{SERVER_PATH}"
    assert (got.self_link, got.parent_link) == (f"{link}/databaseoperations/{op_id}", link)
    assert dotnet_time(got.start_time) == datetime.fromisoformat(truth["createTime"])
    assert dotnet_time(got.last_modify_time) == datetime.fromisoformat(truth["updateTime"])


def test_a_created_database_is_a_completed_create_database_listed_under_its_name(
    azure_server: AzureServer, classic: SqlDatabaseManagementService
) -> None:
    db = unique("created")
    op_id = azure_server.start("db.create", {"server": SERVER, "database": db})
    assert native(azure_server, op_id, "wait")["state"] == "SUCCEEDED"

    got = get_one(classic, op_id)
    listed = list_of(classic, f"databaseName={db}")

    assert (got.name, got.state, got.state_id, got.percent_complete) == (
        "CREATE DATABASE",
        "COMPLETED",
        2,
        100,
    )
    # The client reads `<Error i:nil="true"/>` as its default, an empty string.
    assert (got.error_code, got.error, got.database_name) == (0, "", db)
    assert [(item.id, item.name, item.state) for item in listed] == [
        (op_id, "CREATE DATABASE", "COMPLETED")
    ]


def test_running_cancel_in_progress_pending_and_cancelled_as_the_client_sees_them(
    azure_server: AzureServer, classic: SqlDatabaseManagementService
) -> None:
    target = database(unique("busy"))
    slow: dict[str, object] = {"duration_seconds": 4, "steps": 40, "ignore_cancel": True}
    holder = azure_server.start("demo.sleep", slow, target=target)
    until(azure_server, holder, lambda op: op["progress"]["percent"] > 0)
    queued = azure_server.start("demo.sleep", {"duration_seconds": 30}, target=target)

    before = native(azure_server, holder)["progress"]["percent"]
    running = get_one(classic, holder)
    after = native(azure_server, holder)["progress"]["percent"]
    assert (running.state, running.state_id) == ("IN_PROGRESS", 1)
    assert int(before) <= running.percent_complete <= int(after)
    pending = get_one(classic, queued)
    assert (pending.state, pending.state_id, pending.percent_complete) == ("PENDING", 0, 0)

    with azure_server.native() as client:
        assert client.post(f"/api/v1/operations/{holder}:cancel").status_code == 200
    cancelling = get_one(classic, holder)
    assert (cancelling.state, cancelling.state_id) == ("CANCEL_IN_PROGRESS", 4)

    # The handler ignores the cancel: the classic view tells the truth, it completed.
    assert native(azure_server, holder, "wait")["state"] == "SUCCEEDED"
    assert (get_one(classic, holder).state, get_one(classic, holder).state_id) == ("COMPLETED", 2)

    until(azure_server, queued, lambda op: op["state"] == "RUNNING")
    with azure_server.native() as client:
        assert client.post(f"/api/v1/operations/{queued}:cancel").status_code == 200
    truth = native(azure_server, queued, "wait")
    cancelled = get_one(classic, queued)
    assert (truth["state"], cancelled.state, cancelled.state_id) == ("CANCELLED", "CANCELLED", 5)
    assert cancelled.percent_complete == int(truth["progress"]["percent"])
    assert (cancelled.error_code, cancelled.error) == (
        truth["error"]["code"],
        truth["error"]["message"],
    )


def test_lists_by_database_and_by_server_hold_their_own_operations_newest_first(
    azure_server: AzureServer, classic: SqlDatabaseManagementService
) -> None:
    first_db, second_db = unique("listed"), unique("listed")
    quick: dict[str, object] = {"duration_seconds": 0}
    first = azure_server.start("demo.sleep", quick, target=database(first_db))
    second = azure_server.start("demo.sleep", quick, target=database(first_db))
    other_db = azure_server.start("demo.sleep", quick, target=database(second_db))
    server_wide = azure_server.start("demo.sleep", quick, target=f"servers/{SERVER}")
    elsewhere = azure_server.start("demo.sleep", quick, target="servers/othersvr/databases/x")
    lookalike = azure_server.start("demo.sleep", quick, target=f"servers/{SERVER}x")
    untargeted = azure_server.start("demo.sleep", quick)

    by_database = list_of(classic, f"databaseName={first_db}")
    by_server = list_of(classic, "contentview=generic")

    assert [item.id for item in by_database] == [second, first]
    assert {item.database_name for item in by_database} == {first_db}
    server_ids = [item.id for item in by_server]
    assert {first, second, other_db, server_wide} <= set(server_ids)
    assert not {elsewhere, lookalike, untargeted} & set(server_ids)
    assert server_ids.index(server_wide) < server_ids.index(other_db) < server_ids.index(first)
    starts = [dotnet_time(item.start_time) for item in by_server]
    assert starts == sorted(starts, reverse=True)
    assert next(item for item in by_server if item.id == server_wide).database_name == ""


def test_operations_not_on_the_server_and_unknown_guids_are_not_found(
    azure_server: AzureServer, classic: SqlDatabaseManagementService
) -> None:
    foreign = azure_server.start("demo.sleep", {"duration_seconds": 0}, target="servers/othersvr")

    for op_id in (foreign, str(uuid.uuid4())):
        with pytest.raises(AzureHttpError) as caught:
            get_one(classic, op_id)
        assert caught.value.status_code == 404
        assert "<Code>ResourceNotFound</Code>" in str(caught.value)
    with pytest.raises(AzureHttpError) as bad:
        get_one(classic, "not-a-guid")
    assert bad.value.status_code == 400


def test_an_old_x_ms_version_is_refused(classic: SqlDatabaseManagementService) -> None:
    with pytest.raises(AzureHttpError) as caught:
        classic.perform_get(f"{SERVER_PATH}/databaseoperations?contentview=generic", "2011-08-18")
    assert caught.value.status_code == 400
    assert "<Code>MissingOrIncorrectVersionHeader</Code>" in str(caught.value)


def test_every_answer_is_utf8_xml_with_a_fresh_request_id(azure_server: AzureServer) -> None:
    base = f"{azure_server.url}{SERVER_PATH}/databaseoperations"
    cases = [
        (f"{base}?contentview=generic", {"x-ms-version": "2014-10-01"}, 200, None),
        (f"{base}?contentview=generic", {}, 400, "MissingOrIncorrectVersionHeader"),
        (f"{base}/{uuid.uuid4()}", {"x-ms-version": VERSION}, 404, "ResourceNotFound"),
        (
            f"{azure_server.url}/not-a-subscription/services/sqlservers/servers/{SERVER}"
            "/databaseoperations?contentview=generic",
            {"x-ms-version": VERSION},
            400,
            "BadRequest",
        ),
    ]
    seen = set()
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(azure_server.ca)
        for url, headers, status, code in cases:
            reply = session.get(url, headers=headers)
            assert reply.status_code == status, reply.text
            assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
            assert REQUEST_ID.fullmatch(reply.headers["x-ms-request-id"])
            seen.add(reply.headers["x-ms-request-id"])
            root = ET.fromstring(reply.content)
            if code is None:
                assert root.tag == NS + "ServiceResources"
            else:
                assert root.tag == NS + "Error"
                assert root.findtext(NS + "Code") == code
                assert root.findtext(NS + "Message")
    assert len(seen) == len(cases)
