"""AIP-193 errors through every transport: a malformed filter, page token, name or body gets
INVALID_ARGUMENT with exactly one ErrorInfo, and changes nothing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import unquote

import grpc
import pytest
import requests
from google.api_core import exceptions, operations_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.acceptance.google.conftest import GoogleServer

pytestmark = pytest.mark.acceptance

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_NAMES = [
    "projects/p/locations/l/operations/not-a-uuid",
    "projects/p/locations/l/operations/9F1D1B8A-0000-4000-8000-000000000000",  # not lowercase
    "projects//operations/9f1d1b8a-0000-4000-8000-000000000000",
    "projects/p/locations/operations/9f1d1b8a-0000-4000-8000-000000000000",  # odd segments
    "zzz",
    "projects/p/locations/l/operations/%FF%FE",  # not UTF-8 once decoded
]
BAD_FILTERS = [
    "done = maybe",
    "(done = true",
    "metadata.nonsense = 1",
    "kind = 'demo.sleep'",  # a native field, not one of Google's
    "done = true AND",
    'metadata.create_time > "yesterday"',
]


def rest_error(reply: requests.Response) -> dict[str, Any]:
    """The AIP-193 body, checked for its shape; the ErrorInfo returned."""
    body = reply.json()
    error = body["error"]
    assert set(error) == {"code", "message", "status", "details"}, body
    assert error["code"] == reply.status_code
    infos = [d for d in error["details"] if d["@type"] == ERROR_INFO]
    assert len(infos) == 1 and len(error["details"]) == 1
    assert infos[0]["domain"] and infos[0]["reason"].isupper()
    info: dict[str, Any] = infos[0]
    info["status"] = error["status"]
    return info


@pytest.fixture
def stub(google_server: GoogleServer) -> Iterator[operations_pb2_grpc.OperationsStub]:
    channel = google_server.channel()
    yield operations_pb2_grpc.OperationsStub(channel)
    channel.close()


def grpc_error(call: Callable[[], object]) -> error_details_pb2.ErrorInfo:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = cast(grpc.Call, raised.value)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    status = rpc_status.from_call(error)
    assert status is not None and len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def snapshot(server: GoogleServer, parent: str) -> list[tuple[str, bool, bool]]:
    """Each operation's name, done and requestedCancellation (progress moves on by itself)."""
    reply = requests.get(f"{server.http}/v1/{parent}/operations", timeout=30)
    assert reply.status_code == 200
    return [
        (op["name"], op.get("done", False), op["metadata"]["value"]["requestedCancellation"])
        for op in reply.json().get("operations", [])
    ]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_malformed_name(
    google_server: GoogleServer, stub: operations_pb2_grpc.OperationsStub, name: str
) -> None:
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", ":cancel"), ("POST", ":wait")]:
        reply = requests.request(method, f"{google_server.http}/v1/{name}{suffix}", timeout=30)
        assert reply.status_code == 400, (method, reply.text)
        info = rest_error(reply)
        assert (info["status"], info["reason"]) == ("INVALID_ARGUMENT", "INVALID_NAME")
        assert info["metadata"]["name"] == unquote(name)  # REST paths are percent-decoded
    calls: list[Callable[[], object]] = [
        lambda: stub.GetOperation(operations_pb2.GetOperationRequest(name=name)),
        lambda: stub.CancelOperation(operations_pb2.CancelOperationRequest(name=name)),
        lambda: stub.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name)),
        lambda: stub.WaitOperation(operations_pb2.WaitOperationRequest(name=name)),
    ]
    for call in calls:
        assert grpc_error(call).reason == "INVALID_NAME"


@pytest.mark.parametrize("flt", BAD_FILTERS)
def test_a_malformed_filter(
    google_server: GoogleServer, stub: operations_pb2_grpc.OperationsStub, parent: str, flt: str
) -> None:
    reply = requests.get(
        f"{google_server.http}/v1/{parent}/operations", params={"filter": flt}, timeout=30
    )
    assert reply.status_code == 400
    assert rest_error(reply)["reason"] == "INVALID_FILTER"
    request = operations_pb2.ListOperationsRequest(name=parent, filter=flt)
    assert grpc_error(lambda: stub.ListOperations(request)).reason == "INVALID_FILTER"
    rest = operations_v1.AbstractOperationsClient(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=google_server.http),
    )
    with pytest.raises(exceptions.BadRequest) as raised:
        list(rest.list_operations(parent, flt))
    assert raised.value.reason == "INVALID_FILTER"


def test_page_tokens_are_bound_to_parent_and_filter(
    google_server: GoogleServer, stub: operations_pb2_grpc.OperationsStub, parent: str
) -> None:
    for _ in range(3):
        google_server.start("demo.sleep", {"duration_seconds": 0}, parent=parent)
    first = stub.ListOperations(operations_pb2.ListOperationsRequest(name=parent, page_size=1))
    token = first.next_page_token
    assert token and token.replace("-", "").replace("_", "").isalnum()  # opaque and URL-safe
    second = stub.ListOperations(
        operations_pb2.ListOperationsRequest(name=parent, page_size=2, page_token=token)
    )
    assert len(second.operations) == 2  # a changed page size is honoured
    for changed in [
        operations_pb2.ListOperationsRequest(name=parent + "x", page_token=token),
        operations_pb2.ListOperationsRequest(name=parent, filter="done = true", page_token=token),
        operations_pb2.ListOperationsRequest(name=parent, page_token="not-a-token"),
        operations_pb2.ListOperationsRequest(name=parent, page_token=token[:-3]),
    ]:
        call: Callable[[], object] = functools.partial(stub.ListOperations, changed)
        assert grpc_error(call).reason == "INVALID_PAGE_TOKEN"
    reply = requests.get(
        f"{google_server.http}/v1/{parent}/operations",
        params={"pageToken": token, "filter": "done = false"},
        timeout=30,
    )
    assert reply.status_code == 400 and rest_error(reply)["reason"] == "INVALID_PAGE_TOKEN"
    negative = operations_pb2.ListOperationsRequest(name=parent, page_size=-1)
    assert grpc_error(lambda: stub.ListOperations(negative)).reason == "INVALID_PAGE_SIZE"
    reply = requests.get(
        f"{google_server.http}/v1/{parent}/operations", params={"pageSize": "-5"}, timeout=30
    )
    assert reply.status_code == 400 and rest_error(reply)["reason"] == "INVALID_PAGE_SIZE"


def test_a_malformed_body_changes_nothing(google_server: GoogleServer, parent: str) -> None:
    running = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent)
    before = snapshot(google_server, parent)
    url = f"{google_server.http}/v1/{running.name}"
    for suffix, body in [
        (":cancel", b"{not json"),
        (":cancel", b'{"name": "projects/other/locations/l/operations/x"}'),
        (":cancel", b'{"unknownField": 1}'),
        (":wait", b'{"timeout": "forever"}'),
        (":wait", b"[]"),
    ]:
        reply = requests.post(url + suffix, data=body, timeout=30)
        assert reply.status_code == 400, (suffix, body, reply.text)
        assert rest_error(reply)["status"] == "INVALID_ARGUMENT"
    start = f"{google_server.http}/v1/{parent}/operations:start"
    for body in [b"", b"[1]", b'{"kind": "no.such.kind"}', b'{"kind": "demo.sleep", "x": 1}']:
        reply = requests.post(start, data=body, timeout=30)
        assert reply.status_code in (400, 404), (body, reply.text)
        rest_error(reply)
    assert snapshot(google_server, parent) == before  # nothing was cancelled or started
    requests.post(url + ":cancel", timeout=30)


def test_the_grpc_start_method_checks_its_request(google_server: GoogleServer, parent: str) -> None:
    channel = google_server.channel()
    start = channel.unary_unary(
        "/longrunning.v1.OperationStarter/StartOperation",
        request_serializer=struct_pb2.Struct.SerializeToString,
        response_deserializer=operations_pb2.Operation.FromString,
    )
    request = struct_pb2.Struct()
    request.update({"parent": parent, "kind": "demo.sleep", "request": {"duration_seconds": 0}})
    op = start(request)
    assert op.name.startswith(f"{parent}/operations/")
    bad = struct_pb2.Struct()
    bad.update({"parent": parent, "kind": "demo.sleep", "bogus": True})
    assert grpc_error(lambda: start(bad)).reason == "UNKNOWN_FIELD"
    assert [name for name, _, _ in snapshot(google_server, parent)] == [op.name]
    channel.close()


def test_unknown_routes_and_methods_answer_in_the_google_shape(google_server: GoogleServer) -> None:
    name = "projects/p/locations/l/operations/9f1d1b8a-0000-4000-8000-000000000000"
    reply = requests.post(f"{google_server.http}/v1/{name}:explode", timeout=30)
    assert reply.status_code == 404 and rest_error(reply)["reason"] == "UNKNOWN_METHOD"
    reply = requests.put(f"{google_server.http}/v1/{name}", timeout=30)
    assert reply.status_code == 501 and rest_error(reply)["reason"] == "METHOD_NOT_ALLOWED"
    reply = requests.get(f"{google_server.http}/v1/{name}", timeout=30)
    assert reply.status_code == 404 and rest_error(reply)["reason"] == "OPERATION_NOT_FOUND"
    reply = requests.get(
        f"{google_server.http}/v1/projects/p/operations", params={"bogus": "1"}, timeout=30
    )
    assert reply.status_code == 400 and rest_error(reply)["reason"] == "UNKNOWN_PARAMETER"
