"""The Google face's pure parts: names, the Operation projection, filters and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format, struct_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from longrunning.core.errors import Code, InvalidRequest, NotCancellable, OperationNotFound
from longrunning.core.filtering import And, Comparator, Comparison, Not, Or, matches
from longrunning.core.json_values import JsonValue
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.faces.google import codec
from longrunning.faces.google.names import ListScope, list_scope, operation_ref

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OP_ID = "9f1d1b8a-0000-4000-8000-000000000000"


def make(**changes: object) -> Operation:
    fields: dict[str, object] = {
        "id": OP_ID,
        "parent": "projects/p/locations/l",
        "kind": "demo.sleep",
        "state": State.RUNNING,
        "create_time": T0,
        "update_time": T0,
    }
    fields.update(changes)
    return Operation(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "parent"),
    [
        (f"projects/p/locations/l/operations/{OP_ID}", "projects/p/locations/l"),
        (f"projects/p/operations/{OP_ID}", "projects/p"),
        (
            f"organizations/o/locations/global/operations/{OP_ID}",
            "organizations/o/locations/global",
        ),
        (f"operations/{OP_ID}", None),
        (f"operations/projects/p/locations/l/operations/{OP_ID}", "projects/p/locations/l"),
    ],
)
def test_operation_names(name: str, parent: str | None) -> None:
    ref = operation_ref(name)
    assert (ref.id, ref.parent, ref.spelled) == (OP_ID, parent, name)
    assert ref.covers(parent or "projects/any")
    assert not ref.covers("projects/other/locations/l") or parent is None


def test_a_dash_stands_for_any_last_id() -> None:
    ref = operation_ref(f"projects/p/locations/-/operations/{OP_ID}")
    assert ref.covers("projects/p/locations/l") and ref.covers("projects/p/locations/m")
    for elsewhere in ["projects/q/locations/l", "projects/p", "projects/p/locations/l/x/y"]:
        assert not ref.covers(elsewhere)
    with pytest.raises(InvalidRequest):
        operation_ref(f"projects/-/locations/l/operations/{OP_ID}")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "operations",
        f"projects/p/locations/l/{OP_ID}",
        "projects/p/locations/l/operations/x",
        f"projects/p/locations/operations/{OP_ID}",
        f"projects/p/locations/l/xoperations/{OP_ID}",
        f"projects/p/locations/l/operations/{OP_ID.upper()}",
        f"projects/p/locations/l/operations/{OP_ID}/extra",
    ],
)
def test_malformed_operation_names(name: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        operation_ref(name)
    assert raised.value.reason == "INVALID_NAME"
    assert raised.value.metadata["name"] == name


def test_list_scopes() -> None:
    for everything in ["operations", "operations/operations", ""]:
        assert list_scope(everything) == ListScope(parent=None)
    assert list_scope("projects/p/locations/l").parent == "projects/p/locations/l"
    assert list_scope("projects/p/locations/l/operations").parent == "projects/p/locations/l"
    wild = list_scope("projects/p/locations/-")
    assert wild.parent is None and wild.within is not None
    under = {
        "projects/p/locations/a": True,
        "projects/p/locations/b": True,
        "projects/q/locations/a": False,
        "projects/p/locations/a/instances/i": False,
        "projects/p": False,
    }
    for parent, expected in under.items():
        assert matches(wild.within, make(parent=parent)) is expected, parent
    for bad in ["projects/-/locations/l", "-", "projects", "projects/p/locations/l/x", "a b"]:
        with pytest.raises(InvalidRequest):
            list_scope(bad)


def test_a_running_operation_has_metadata_and_neither_result_nor_error() -> None:
    op = make(
        progress=Progress(percent=42.5, phase="copying"),
        target="projects/p/locations/l/clusters/c",
        labels={"team": "db"},
        metadata={"pages": 10},
        title="COPY CLUSTER",
    )
    message = codec.to_operation(op)
    assert message.name == f"projects/p/locations/l/operations/{OP_ID}" and not message.done
    assert message.WhichOneof("result") is None
    metadata = struct_pb2.Struct()
    assert message.metadata.Unpack(metadata)
    assert json_format.MessageToDict(metadata) == {
        "createTime": "2026-11-21T12:00:00Z",
        "updateTime": "2026-11-21T12:00:00Z",
        "target": "projects/p/locations/l/clusters/c",
        "verb": "demo.sleep",
        "title": "COPY CLUSTER",
        "statusMessage": "copying",
        "requestedCancellation": False,
        "apiVersion": "v1",
        "progressPercent": 42.5,
        "state": "RUNNING",
        "cancellable": True,
        "attempt": 0.0,
        "queue": "default",
        "labels": {"team": "db"},
        "handlerMetadata": {"pages": 10.0},
    }


@pytest.mark.parametrize(
    ("result", "packed"),
    [
        ({"rows": 3}, struct_pb2.Struct),
        (None, empty_pb2.Empty),
        ([1, "two"], struct_pb2.Value),
        ("text", struct_pb2.Value),
    ],
)
def test_results_are_packed_as_well_known_types(result: object, packed: type[Message]) -> None:
    message = codec.to_operation(make(state=State.SUCCEEDED, end_time=T0, result=result))
    assert message.done and message.WhichOneof("result") == "response"
    assert message.response.TypeName() == packed.DESCRIPTOR.full_name
    # What a strict REST client does with it: parse it back without ignoring anything.
    as_json = json_format.MessageToDict(message)
    parsed = json_format.ParseDict(as_json, operations_pb2.Operation())
    assert json_format.MessageToDict(parsed) == as_json


def test_a_cancelled_operation_carries_code_1() -> None:
    op = make(
        state=State.CANCELLED,
        end_time=T0,
        cancel_requested_at=T0,
        cancel_outcome=CancelOutcome.STOPPED_COOPERATIVELY,
        error=Failure(code=Code.CANCELLED, message="cancelled", details=({"why": "asked"},)),
    )
    message = codec.to_operation(op)
    assert message.done and message.error.code == 1 and message.error.message == "cancelled"
    detail = struct_pb2.Struct()
    assert message.error.details[0].Unpack(detail) and detail["why"] == "asked"
    info: dict[str, JsonValue] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "DISK_FULL",
    }
    failed = make(
        state=State.FAILED,
        end_time=T0,
        error=Failure(code=Code.INTERNAL, message="x", details=(info,)),
    )
    kept = error_details_pb2.ErrorInfo()
    assert codec.to_operation(failed).error.details[0].Unpack(kept) and kept.reason == "DISK_FULL"


def test_google_filter_fields_map_onto_the_engine_fields() -> None:
    query = codec.list_query(
        "projects/p/locations/l",
        'done = false AND (metadata.verb = "demo.sleep" OR -metadata.requestedCancellation = true)'
        ' AND metadata.create_time > "2026-01-01T00:00:00Z" AND metadata.labels.team = db',
        0,
        "",
        partial_success=True,
    )
    assert query.parent == "projects/p/locations/l" and query.page_size == 50
    assert query.filter == And(
        (
            Comparison("done", Comparator.EQ, False),
            Or(
                (
                    Comparison("kind", Comparator.EQ, "demo.sleep"),
                    Not(Comparison("cancel_requested", Comparator.EQ, True)),
                )
            ),
            Comparison("create_time", Comparator.GT, datetime(2026, 1, 1, tzinfo=UTC)),
            Comparison("labels.team", Comparator.EQ, "db"),
        )
    )
    assert codec.list_query("operations", "error:*", 5000, "", partial_success=False).filter == (
        Comparison("error.code", Comparator.NE, None)
    )
    assert codec.list_query("operations", "", 5000, "", partial_success=False).page_size == 1000


@pytest.mark.parametrize("flt", ["kind = x", "metadata = 1", "metadata.labels.", "state = RUNNING"])
def test_only_google_field_names_are_accepted(flt: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        codec.list_query("operations", flt, 0, "", partial_success=False)
    assert raised.value.reason == "INVALID_FILTER"


def test_errors_have_exactly_one_error_info() -> None:
    exc = OperationNotFound("operation 'x' was not found", metadata={"name": "x"})
    status, body = codec.error_json(exc)
    assert status == 404
    assert body == {
        "error": {
            "code": 404,
            "message": "operation 'x' was not found",
            "status": "NOT_FOUND",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "OPERATION_NOT_FOUND",
                    "domain": codec.ERROR_DOMAIN,
                    "metadata": {"name": "x"},
                }
            ],
        }
    }
    grpc_status = codec.error_status(NotCancellable())
    assert grpc_status.code == Code.FAILED_PRECONDITION and len(grpc_status.details) == 1
    assert codec.error_json(NotCancellable())[0] == 400


def test_start_bodies() -> None:
    start = codec.start_request(
        "projects/p",
        {"kind": "demo.sleep", "request": {"a": 1}, "timeout": "1.5s", "labels": {"k": "v"}},
    )
    assert (start.parent, start.kind, start.timeout_seconds) == ("projects/p", "demo.sleep", 1.5)
    for bad in [
        [],
        {"request": {}},
        {"kind": 1},
        {"kind": "k", "timeout": "soon"},
        {"kind": "k", "x": 1},
    ]:
        with pytest.raises(InvalidRequest):
            codec.start_request("projects/p", json.loads(json.dumps(bad)))
