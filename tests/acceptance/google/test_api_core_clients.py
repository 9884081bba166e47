"""google-api-core's own operations clients, unmodified, against a real server over 127.0.0.1:
`OperationsClient` over gRPC, `AbstractOperationsClient` over REST, and `operation.from_gapic`
futures over both."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions, operation, operations_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, struct_pb2

from tests.acceptance.google.conftest import GoogleServer

pytestmark = pytest.mark.acceptance

Client = operations_v1.OperationsClient | operations_v1.AbstractOperationsClient


@pytest.fixture
def grpc_client(google_server: GoogleServer) -> Iterator[operations_v1.OperationsClient]:
    channel = google_server.channel()
    yield operations_v1.OperationsClient(channel)
    channel.close()


@pytest.fixture
def rest_client(google_server: GoogleServer) -> operations_v1.AbstractOperationsClient:
    return operations_v1.AbstractOperationsClient(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=google_server.http),
    )


@pytest.fixture(params=["grpc", "rest"])
def client(request: pytest.FixtureRequest) -> Client:
    value: Client = request.getfixturevalue(f"{request.param}_client")
    return value


def names(client: Client, parent: str, flt: str = "", **kw: Any) -> list[str]:
    return [op.name for op in client.list_operations(parent, flt, **kw)]


def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finished_at_once(server: GoogleServer, parent: str, count: int) -> set[str]:
    return {
        server.start("demo.sleep", {"duration_seconds": 0}, parent=parent).name
        for _ in range(count)
    }


def test_list_walks_every_page_and_filters_in_the_store(
    google_server: GoogleServer, client: Client, parent: str
) -> None:
    quick = {
        google_server.start("demo.sleep", {"duration_seconds": 0}, parent=parent).name
        for _ in range(55)
    }
    slow = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent).name
    until(lambda: len(names(client, parent, "done = true")) == 55)

    everything = names(client, parent)  # 56 > the default page of 50: the pager follows tokens
    assert sorted(everything) == sorted({*quick, slow})
    assert names(client, parent, "done = false") == [slow]
    assert names(client, parent, 'done:false AND metadata.verb = "demo.sleep"') == [slow]
    assert names(client, parent, f'name = "{slow[:-8]}*"') == [slow]
    assert names(client, parent, "NOT done = true OR error.code = 1") == [slow]
    assert names(client, parent, "-(done = true)") == [slow]
    client.cancel_operation(slow)
    until(lambda: client.get_operation(slow).done)
    assert names(client, parent, "error.code = 1") == [slow]  # cancelled stays listable
    assert names(client, parent, "error:*") == [slow]
    assert {slow, *quick} <= set(names(client, "operations", "done = false OR done = true"))
    # A different parent sees none of them.
    assert names(client, parent.replace("us-central1", "europe-west1")) == []


def test_rest_pages_honour_the_page_size(
    google_server: GoogleServer, rest_client: operations_v1.AbstractOperationsClient, parent: str
) -> None:
    started = {
        google_server.start("demo.sleep", {"duration_seconds": 0}, parent=parent).name
        for _ in range(9)
    }
    pager = rest_client.list_operations(parent, "", page_size=4)
    pages = [[op.name for op in page.operations] for page in pager.pages]
    assert [len(page) for page in pages] == [4, 4, 1]
    assert {name for page in pages for name in page} == started


def test_get_cancel_delete(google_server: GoogleServer, client: Client, parent: str) -> None:
    running = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent)
    got = client.get_operation(running.name)
    assert got.name == running.name and not got.done
    metadata = struct_pb2.Struct()
    assert got.metadata.Unpack(metadata)
    assert metadata["verb"] == "demo.sleep"
    assert metadata["requestedCancellation"] is False

    client.cancel_operation(running.name)
    until(lambda: client.get_operation(running.name).done)
    cancelled = client.get_operation(running.name)
    assert cancelled.error.code == 1 and not cancelled.HasField("response")
    assert struct_of(cancelled)["requestedCancellation"] is True
    client.cancel_operation(running.name)  # finished: a no-op, OK
    assert client.get_operation(running.name) == cancelled

    client.delete_operation(running.name)
    with pytest.raises(exceptions.NotFound) as missing:
        client.get_operation(running.name)
    assert missing.value.reason == "OPERATION_NOT_FOUND"
    with pytest.raises(exceptions.NotFound):
        client.cancel_operation(running.name)


def test_a_name_under_another_parent_is_not_found(
    google_server: GoogleServer, client: Client, parent: str
) -> None:
    op = google_server.start("demo.sleep", {"duration_seconds": 0}, parent=parent)
    elsewhere = op.name.replace("us-central1", "asia-east1")
    with pytest.raises(exceptions.NotFound):
        client.get_operation(elsewhere)


def test_cancel_of_a_kind_past_its_point_of_no_return_fails_precondition(
    google_server: GoogleServer, client: Client, parent: str
) -> None:
    op = google_server.start("test.point_of_no_return", {"seconds": 3}, parent=parent)
    until(lambda: struct_of(client.get_operation(op.name))["state"] == "RUNNING")
    with pytest.raises(exceptions.GoogleAPICallError) as refused:
        client.cancel_operation(op.name)
    assert refused.value.reason == "NOT_CANCELLABLE"
    assert refused.value.code in (400, grpc.StatusCode.FAILED_PRECONDITION)


def struct_of(op: operations_pb2.Operation) -> struct_pb2.Struct:
    metadata = struct_pb2.Struct()
    assert op.metadata.Unpack(metadata)
    return metadata


def test_wait_operation_over_grpc_is_bounded_by_timeout_and_deadline(
    google_server: GoogleServer, parent: str
) -> None:
    stub = operations_pb2_grpc.OperationsStub(google_server.channel())
    quick = google_server.start("demo.sleep", {"duration_seconds": 1}, parent=parent)
    done = stub.WaitOperation(operations_pb2.WaitOperationRequest(name=quick.name), timeout=30)
    assert done.done and done.HasField("response")

    slow = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent)
    began = time.monotonic()
    waited = stub.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=slow.name, timeout=duration_pb2.Duration(seconds=30)
        ),
        timeout=1.0,  # the deadline wins over the 30 s asked for, and we still get the state
    )
    assert not waited.done and time.monotonic() - began < 5
    began = time.monotonic()
    waited = stub.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=slow.name, timeout=duration_pb2.Duration(nanos=300_000_000)
        ),
        timeout=30,
    )
    assert not waited.done and time.monotonic() - began < 5


def test_wait_over_rest(google_server: GoogleServer, parent: str) -> None:
    op = google_server.start("demo.sleep", {"duration_seconds": 1}, parent=parent)
    reply = requests.post(
        f"{google_server.http}/v1/{op.name}:wait", json={"timeout": "20s"}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["done"] is True and body["response"]["@type"].endswith("google.protobuf.Struct")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_from_gapic_future_reports_progress_then_its_result(
    google_server: GoogleServer, parent: str, transport: str, request: pytest.FixtureRequest
) -> None:
    client: Client = request.getfixturevalue(f"{transport}_client")
    started = google_server.start("demo.sleep", {"duration_seconds": 2, "steps": 10}, parent=parent)
    future = operation.from_gapic(
        started, client, struct_pb2.Struct, metadata_type=struct_pb2.Struct
    )
    percents: list[float] = []
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline
        assert future.metadata is not None
        percents.append(future.metadata["progressPercent"])
        time.sleep(0.1)
    assert 0 < max(percents) < 100 and percents == sorted(percents)
    result = future.result(timeout=30)
    assert isinstance(result, struct_pb2.Struct)
    assert result["steps"] == 10
    assert float(result["slept_seconds"]) >= 2  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_from_gapic_future_cancel(
    google_server: GoogleServer, parent: str, transport: str, request: pytest.FixtureRequest
) -> None:
    client: Client = request.getfixturevalue(f"{transport}_client")
    started = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent)
    future = operation.from_gapic(
        started, client, struct_pb2.Struct, metadata_type=struct_pb2.Struct
    )
    assert future.cancel() is True
    until(future.cancelled)
    with pytest.raises(exceptions.Cancelled):
        future.result(timeout=30)
    assert future.cancel() is False  # already done: nothing sent


def test_delete_of_a_running_operation_forgets_it_but_not_its_work(
    google_server: GoogleServer, client: Client, parent: str, tmp_path: Path
) -> None:
    marker = tmp_path / "done"
    op = google_server.start("test.marker", {"seconds": 2, "path": str(marker)}, parent=parent)
    until(lambda: struct_of(client.get_operation(op.name))["state"] == "RUNNING")
    client.delete_operation(op.name)
    with pytest.raises(exceptions.NotFound):
        client.get_operation(op.name)
    assert names(client, parent) == []
    until(marker.exists)  # DeleteOperation "does not cancel the operation"
    assert marker.read_text() == op.name.rsplit("/", 1)[1]


@pytest.mark.parametrize("body", [None, b"", b"{}", "name"])
def test_rest_cancel_takes_every_body_the_clients_send(
    google_server: GoogleServer, parent: str, body: bytes | str | None
) -> None:
    op = google_server.start("demo.sleep", {"duration_seconds": 60}, parent=parent)
    data = f'{{"name": "{op.name}"}}'.encode() if body == "name" else body
    reply = requests.post(
        f"{google_server.http}/v1beta/{op.name}:cancel",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert (reply.status_code, reply.json()) == (200, {})
    assert reply.headers["content-type"] == "application/json"
    done = requests.post(f"{google_server.http}/v1alpha/{op.name}:wait", timeout=30).json()
    assert done["done"] is True and done["error"]["code"] == 1
