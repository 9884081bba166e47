"""The generated clients of the seed systems, unmodified, against a real server over 127.0.0.1,
each over REST and gRPC: AlloyDB v1beta and v1 and Dataplex v1 through their operations mixins
(`client.list_operations(request=...)` and friends), Optimization v1 through its
`transport.operations_client` (and its one mixin, `get_operation`)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from google.api_core import exceptions, operations_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import alloydb_v1, alloydb_v1beta, dataplex_v1, optimization_v1
from google.cloud.alloydb_v1.services.alloy_db_admin.transports import (
    AlloyDBAdminGrpcTransport as AlloyDBV1GrpcTransport,
)
from google.cloud.alloydb_v1beta.services.alloy_db_admin.transports import (
    AlloyDBAdminGrpcTransport as AlloyDBV1betaGrpcTransport,
)
from google.cloud.dataplex_v1.services.dataplex_service.transports import (
    DataplexServiceGrpcTransport,
)
from google.cloud.optimization_v1.services.fleet_routing.transports import (
    FleetRoutingGrpcTransport,
)
from google.longrunning import operations_pb2
from google.protobuf import struct_pb2

from tests.acceptance.google.conftest import GoogleServer

pytestmark = pytest.mark.acceptance

MixinClient = (
    alloydb_v1beta.AlloyDBAdminClient
    | alloydb_v1.AlloyDBAdminClient
    | dataplex_v1.DataplexServiceClient
)
OpsClient = operations_v1.OperationsClient | operations_v1.AbstractOperationsClient

SYSTEMS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "alloydb_v1beta": (alloydb_v1beta.AlloyDBAdminClient, AlloyDBV1betaGrpcTransport),
    "alloydb_v1": (alloydb_v1.AlloyDBAdminClient, AlloyDBV1GrpcTransport),
    "dataplex_v1": (dataplex_v1.DataplexServiceClient, DataplexServiceGrpcTransport),
    "optimization_v1": (optimization_v1.FleetRoutingClient, FleetRoutingGrpcTransport),
}
TRANSPORTS = ["rest", "grpc"]
MIXINS = ["alloydb_v1beta", "alloydb_v1", "dataplex_v1"]
MIXIN_CASES = [pytest.param(s, t, id=f"{s}-{t}") for s in MIXINS for t in TRANSPORTS]
STRUCT_URL = "type.googleapis.com/google.protobuf.Struct"
QUICK = {"duration_seconds": 0}
LONG = {"duration_seconds": 20, "steps": 100}  # cancelled long before it would end
DEADLINE = 30.0


@contextmanager
def generated(system: str, transport: str, server: GoogleServer) -> Iterator[Any]:
    """The system's generated client: REST with the scheme in api_endpoint and anonymous
    credentials; gRPC through an insecure channel handed to the generated transport."""
    client_cls, grpc_transport_cls = SYSTEMS[system]
    if transport == "rest":
        client = client_cls(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options=ClientOptions(api_endpoint=server.http),
        )
    else:
        client = client_cls(transport=grpc_transport_cls(channel=server.channel()))
    assert client.transport.kind == transport
    try:
        yield client
    finally:
        client.transport.close()


@pytest.fixture(params=[pytest.param((s, t), id=f"{s}-{t}") for s in MIXINS for t in TRANSPORTS])
def mixin(request: pytest.FixtureRequest, google_server: GoogleServer) -> Iterator[MixinClient]:
    system, transport = request.param
    with generated(system, transport, google_server) as client:
        yield client


def until(check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def metadata_of(op: operations_pb2.Operation) -> struct_pb2.Struct:
    assert op.metadata.type_url == STRUCT_URL
    metadata = struct_pb2.Struct()
    assert op.metadata.Unpack(metadata)
    return metadata


def listed(client: MixinClient, parent: str, flt: str = "") -> list[str]:
    reply = client.list_operations(request={"name": parent, "filter": flt})
    assert reply.next_page_token == ""  # everything fits in the default page of 50
    return sorted(op.name for op in reply.operations)


def ops_listed(ops: OpsClient, parent: str, flt: str = "") -> list[str]:
    return sorted(op.name for op in ops.list_operations(parent, flt))


def assert_named(op: operations_pb2.Operation, parent: str) -> None:
    assert re.fullmatch(
        rf"{re.escape(parent)}/operations/[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}",
        op.name,
    )


def assert_not_found(call: Callable[[], object]) -> None:
    with pytest.raises(exceptions.NotFound) as missing:
        call()
    assert missing.value.reason == "OPERATION_NOT_FOUND", missing.value
    assert missing.value.domain


def organization() -> str:
    return f"organizations/o-{uuid.uuid4().hex[:12]}/locations/global"


def run_lifecycle(google_server: GoogleServer, client: MixinClient, parent: str) -> None:
    """Start, list, filter, page, get, cancel, cancel again, delete: all through the mixins."""
    quick = [google_server.start("demo.sleep", QUICK, parent=parent) for _ in range(3)]
    running = google_server.start("demo.sleep", LONG, parent=parent)
    for op in (*quick, running):
        assert_named(op, parent)
    finished = sorted(op.name for op in quick)
    until(lambda: listed(client, parent, "done = true") == finished)

    # Listing sees exactly the operations started under this parent, and filters narrow it.
    everything = sorted([*finished, running.name])
    assert listed(client, parent) == everything
    assert listed(client, parent, "done = false") == [running.name]
    assert listed(client, parent, 'done:false AND metadata.verb = "demo.sleep"') == [running.name]
    assert listed(client, parent, f'name = "{finished[0]}"') == [finished[0]]
    assert listed(client, parent, 'metadata.verb = "demo.fail"') == []
    assert listed(client, parent, 'metadata.create_time > "2000-01-01T00:00:00Z"') == everything
    assert listed(client, parent, 'metadata.create_time < "2000-01-01T00:00:00Z"') == []
    partial = client.list_operations(request={"name": parent, "return_partial_success": True})
    assert sorted(op.name for op in partial.operations) == everything and not partial.unreachable
    # The mixins return one page; following next_page_token by hand walks them all.
    pages: list[list[str]] = []
    token = ""
    for _ in range(10):
        page = client.list_operations(request={"name": parent, "page_size": 3, "page_token": token})
        pages.append([op.name for op in page.operations])
        token = page.next_page_token
        if not token:
            break
    assert [len(names) for names in pages] == [3, 1]
    assert sorted(name for names in pages for name in names) == everything

    # Get returns the current state, with Struct metadata.
    got = client.get_operation(request={"name": running.name})
    assert got.name == running.name and not got.done
    assert not got.HasField("error") and not got.HasField("response")
    metadata = metadata_of(got)
    assert metadata.fields["verb"].string_value == "demo.sleep"
    assert metadata.fields["requestedCancellation"].bool_value is False
    done = client.get_operation(request={"name": finished[0]})
    assert done.name == finished[0] and done.done and not done.HasField("error")
    assert done.response.type_url == STRUCT_URL
    result = struct_pb2.Struct()
    assert done.response.Unpack(result)
    assert result.fields["steps"].number_value == 100
    assert metadata_of(done).fields["progressPercent"].number_value == 100

    # Cancel of a finished operation is a no-op; of a running one, it ends CANCELLED.
    client.cancel_operation(request={"name": finished[0]})
    again = client.get_operation(request={"name": finished[0]})
    assert again.done and again.response == done.response and not again.HasField("error")
    client.cancel_operation(request={"name": running.name})
    until(lambda: client.get_operation(request={"name": running.name}).done)
    cancelled = client.get_operation(request={"name": running.name})
    assert cancelled.error.code == 1 and not cancelled.HasField("response")
    assert metadata_of(cancelled).fields["requestedCancellation"].bool_value is True
    client.cancel_operation(request={"name": running.name})  # done now: a no-op
    assert client.get_operation(request={"name": running.name}).error.code == 1
    assert listed(client, parent, "error.code = 1") == [running.name]
    assert listed(client, parent, "done = false") == []

    # Delete of a finished operation forgets it.
    client.delete_operation(request={"name": finished[0]})
    assert_not_found(lambda: client.get_operation(request={"name": finished[0]}))
    assert_not_found(lambda: client.cancel_operation(request={"name": finished[0]}))
    assert_not_found(lambda: client.delete_operation(request={"name": finished[0]}))
    client.delete_operation(request={"name": running.name})  # cancelled is finished too
    assert listed(client, parent) == finished[1:]


@pytest.mark.parametrize(("system", "transport"), MIXIN_CASES)
def test_mixins_list_get_cancel_delete(
    google_server: GoogleServer, parent: str, system: str, transport: str
) -> None:
    with generated(system, transport, google_server) as client:
        run_lifecycle(google_server, client, parent)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dataplex_mixins_under_an_organization(
    google_server: GoogleServer, parent: str, transport: str
) -> None:
    org = organization()
    with generated("dataplex_v1", transport, google_server) as client:
        run_lifecycle(google_server, client, org)
        # Projects and organizations do not see each other's operations.
        mine = google_server.start("demo.sleep", QUICK, parent=parent)
        assert listed(client, parent) == [mine.name]
        assert mine.name not in listed(client, org)
        swapped = f"{org}/operations/{mine.name.rsplit('/', 1)[1]}"
        assert_not_found(lambda: client.get_operation(request={"name": swapped}))


def test_unknown_operation_is_not_found(
    google_server: GoogleServer, mixin: MixinClient, parent: str
) -> None:
    unknown = f"{parent}/operations/{uuid.uuid4()}"
    assert_not_found(lambda: mixin.get_operation(request={"name": unknown}))
    assert_not_found(lambda: mixin.cancel_operation(request={"name": unknown}))
    assert_not_found(lambda: mixin.delete_operation(request={"name": unknown}))
    # An operation that exists, named under another parent, is not found either.
    op = google_server.start("demo.sleep", QUICK, parent=parent)
    elsewhere = op.name.replace("/locations/us-central1/", "/locations/europe-west1/")
    assert_not_found(lambda: mixin.get_operation(request={"name": elsewhere}))
    assert mixin.get_operation(request={"name": op.name}).name == op.name


def test_cancel_past_the_point_of_no_return_fails_precondition(
    google_server: GoogleServer, mixin: MixinClient, parent: str
) -> None:
    op = google_server.start("test.point_of_no_return", {"seconds": 5}, parent=parent)

    def running() -> bool:
        got = mixin.get_operation(request={"name": op.name})
        return metadata_of(got).fields["state"].string_value == "RUNNING"

    until(running)
    with pytest.raises(exceptions.GoogleAPICallError) as refused:
        mixin.cancel_operation(request={"name": op.name})
    error = refused.value
    assert error.reason == "NOT_CANCELLABLE", error
    if mixin.transport.kind == "grpc":
        assert isinstance(error, exceptions.FailedPrecondition)
        assert error.grpc_status_code == grpc.StatusCode.FAILED_PRECONDITION
    else:
        assert isinstance(error, exceptions.BadRequest)  # REST: the class comes from HTTP 400
    still = mixin.get_operation(request={"name": op.name})
    assert not still.done and not metadata_of(still).fields["requestedCancellation"].bool_value


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_optimization_operations_client(google_server: GoogleServer, transport: str) -> None:
    project = f"projects/p-{uuid.uuid4().hex[:12]}"
    located = f"{project}/locations/us-central1"
    quick = google_server.start("demo.sleep", QUICK, parent=project)
    running = google_server.start("demo.sleep", LONG, parent=project)
    nearby = google_server.start("demo.sleep", QUICK, parent=located)
    assert_named(quick, project)
    assert_named(running, project)
    assert_named(nearby, located)
    with generated("optimization_v1", transport, google_server) as client:
        ops: OpsClient = client.transport.operations_client
        assert isinstance(
            ops,
            operations_v1.AbstractOperationsClient
            if transport == "rest"
            else operations_v1.OperationsClient,
        )
        until(lambda: ops_listed(ops, project, "done = true") == [quick.name])
        # `projects/p` lists its own operations, not those of its locations.
        assert ops_listed(ops, project) == sorted([quick.name, running.name])
        assert ops_listed(ops, project, "done = false") == [running.name]
        assert ops_listed(ops, located) == [nearby.name]

        # Both GetOperation bindings, through the operations client and the mixin.
        for name in (running.name, nearby.name):
            assert ops.get_operation(name).name == name
            assert client.get_operation(request={"name": name}).name == name
        got = ops.get_operation(running.name)
        assert not got.done
        assert metadata_of(got).fields["verb"].string_value == "demo.sleep"
        finished = client.get_operation(request={"name": quick.name})
        assert finished.done and finished.response.type_url == STRUCT_URL

        ops.cancel_operation(quick.name)  # finished: a no-op
        assert ops.get_operation(quick.name).response == finished.response
        ops.cancel_operation(running.name)
        until(lambda: ops.get_operation(running.name).done)
        cancelled = client.get_operation(request={"name": running.name})
        assert cancelled.error.code == 1 and not cancelled.HasField("response")
        assert ops_listed(ops, project, "error.code = 1") == [running.name]
        assert ops_listed(ops, project, "done = false") == []

        unknown = f"{project}/operations/{uuid.uuid4()}"
        assert_not_found(lambda: ops.get_operation(unknown))
        assert_not_found(lambda: ops.cancel_operation(unknown))
        assert_not_found(lambda: client.get_operation(request={"name": unknown}))
