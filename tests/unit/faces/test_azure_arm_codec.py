"""The ARM face's pure parts: the state mapping, Microsoft.Sql operation JSON, the async-operation
status monitor, times, errors as ARM ErrorResponse, and resource paths."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from longrunning.core.errors import (
    Code,
    InvalidRequest,
    LongrunningError,
    NotCancellable,
    OperationNotFound,
    ResourceExists,
    ResourceNotFound,
    StoreConflict,
    StoreError,
    TargetBusy,
)
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.databases.names import DatabaseRef
from longrunning.databases.service import Database
from longrunning.faces.azure_arm import codec, paths
from longrunning.faces.azure_arm.paths import PathNotFound, Scope
from longrunning.testing import make_operation

SUB = "00000000-1111-2222-3333-444444444444"
SCOPE = Scope(SUB, "My-RG")
PREFIX = f"/subscriptions/{SUB}/resourceGroups/My-RG/providers/Microsoft.Sql"
OP_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"
T0 = datetime(2026, 11, 21, 13, 17, 49, 938257, tzinfo=UTC)
SALES = DatabaseRef("testsvr", "sales")
ARM_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FAILURE = Failure(
    code=Code.NOT_FOUND, message="source database missing", severity=16, is_user_error=True
)


def db_op(**changes: Any) -> Operation:
    base = make_operation(
        id=OP_ID,
        kind="db.copy",
        title="DATABASE COPY",
        state=State.RUNNING,
        target=SALES.target,
        create_time=T0,
        update_time=T0 + timedelta(seconds=5),
        start_time=T0 + timedelta(seconds=1),
        progress=Progress(
            percent=42.7, phase="copied 10 of 23 pages", eta=T0 + timedelta(minutes=3)
        ),
    )
    return dataclasses.replace(base, **changes)


def ended(state: State, **changes: Any) -> Operation:
    extra: dict[str, Any] = {"end_time": T0 + timedelta(seconds=9)}
    if state is State.FAILED:
        extra["error"] = FAILURE
    if state is State.CANCELLED:
        extra |= {
            "cancel_requested_at": T0 + timedelta(seconds=8),
            "cancel_outcome": CancelOutcome.STOPPED_COOPERATIVELY,
            "error": Failure(code=Code.CANCELLED, message="cancelled"),
        }
    return db_op(state=state, **(extra | changes))


# The state mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "state", "status", "percent", "cancellable"),
    [
        (db_op(state=State.PENDING, progress=Progress()), "Pending", "InProgress", 0, True),
        (db_op(), "InProgress", "InProgress", 42, True),
        (
            db_op(cancel_requested_at=T0 + timedelta(seconds=3)),
            "CancelInProgress",
            "InProgress",
            42,
            False,
        ),
        (ended(State.SUCCEEDED), "Succeeded", "Succeeded", 100, False),
        (ended(State.FAILED), "Failed", "Failed", 42, False),
        (ended(State.CANCELLED), "Cancelled", "Canceled", 42, False),
    ],
    ids=["pending", "running", "cancel-requested", "succeeded", "failed", "cancelled"],
)
def test_the_state_mapping_table(
    op: Operation, state: str, status: str, percent: int, cancellable: bool
) -> None:
    assert codec.operation_state(op) == state
    assert codec.async_status(op) == status
    assert codec.percent_complete(op) == percent
    assert codec.is_cancellable(op) is cancellable
    body = codec.database_operation(op, SCOPE, SALES)["properties"]
    assert (body["state"], body["percentComplete"], body["isCancellable"]) == (
        state,
        percent,
        cancellable,
    )
    assert codec.status_resource(op, SCOPE)["status"] == status


def test_success_is_100_percent_whatever_was_reported() -> None:
    assert codec.percent_complete(ended(State.SUCCEEDED, progress=Progress(percent=3.0))) == 100
    assert codec.percent_complete(db_op(progress=Progress(percent=99.99))) == 99


@pytest.mark.parametrize("state", [State.PENDING, State.RUNNING])
def test_an_uncancellable_kind_is_never_cancellable(state: State) -> None:
    op = db_op(state=state, kind="db.drop", title="DROP DATABASE", cancellable=False)
    assert not codec.is_cancellable(op)
    assert codec.database_operation(op, SCOPE, SALES)["properties"]["isCancellable"] is False


# Operations as JSON -------------------------------------------------------------------------

COMMON = {
    "operation",
    "operationFriendlyName",
    "percentComplete",
    "startTime",
    "state",
    "isCancellable",
    "description",
}
ERROR_KEYS = {"errorCode", "errorDescription", "errorSeverity", "isUserError"}


def test_a_running_database_operation() -> None:
    body = codec.database_operation(db_op(), SCOPE, SALES)
    assert body == {
        "id": f"{PREFIX}/servers/testsvr/databases/sales/operations/{OP_ID}",
        "name": OP_ID,
        "type": "Microsoft.Sql/servers/databases/operations",
        "properties": {
            "databaseName": "sales",
            "serverName": "testsvr",
            "operation": "db.copy",
            "operationFriendlyName": "DATABASE COPY",
            "percentComplete": 42,
            "startTime": "2026-11-21T13:17:49.938Z",
            "state": "InProgress",
            "isCancellable": True,
            "description": "'DATABASE COPY' on database 'sales'",
            "estimatedCompletionTime": "2026-11-21T13:20:49.938Z",
            "operationPhaseDetails": {"phaseInformation": {"detail": "copied 10 of 23 pages"}},
        },
    }


def test_a_failed_database_operation_carries_its_error_and_no_progress_details() -> None:
    properties = codec.database_operation(ended(State.FAILED), SCOPE, SALES)["properties"]
    assert set(properties) == {"databaseName", "serverName", *COMMON, *ERROR_KEYS}
    assert properties["errorCode"] == 5 and isinstance(properties["errorCode"], int)
    assert properties["errorDescription"] == "source database missing"
    assert properties["errorSeverity"] == 16
    assert properties["isUserError"] is True


@pytest.mark.parametrize("state", [State.SUCCEEDED, State.CANCELLED])
def test_finished_operations_carry_no_eta_nor_phase(state: State) -> None:
    properties = codec.database_operation(ended(state), SCOPE, SALES)["properties"]
    assert "estimatedCompletionTime" not in properties
    assert "operationPhaseDetails" not in properties
    if state is State.SUCCEEDED:
        assert not ERROR_KEYS & set(properties)


def test_error_fields_only_when_the_operation_has_an_error() -> None:
    properties = codec.database_operation(db_op(), SCOPE, SALES)["properties"]
    assert not ERROR_KEYS & set(properties)


def test_no_eta_nor_phase_when_none_was_reported() -> None:
    op = db_op(progress=Progress(percent=10.0))
    properties = codec.database_operation(op, SCOPE, SALES)["properties"]
    assert set(properties) == {"databaseName", "serverName", *COMMON}
    only_eta = db_op(progress=Progress(percent=10.0, eta=T0 + timedelta(hours=1)))
    properties = codec.database_operation(only_eta, SCOPE, SALES)["properties"]
    assert properties["estimatedCompletionTime"] == "2026-11-21T14:17:49.938Z"
    assert "operationPhaseDetails" not in properties


def test_the_friendly_name_falls_back_to_the_kind() -> None:
    op = db_op(title=None)
    properties = codec.database_operation(op, SCOPE, SALES)["properties"]
    assert properties["operationFriendlyName"] == "db.copy"
    assert properties["description"] == "'db.copy' on database 'sales'"


@pytest.mark.parametrize(
    ("target", "description"),
    [
        ("servers/testsvr/databases/Sales 2026", "'DATABASE COPY' on database 'Sales 2026'"),
        ("accounts/42", "'DATABASE COPY' on 'accounts/42'"),
        (None, "'DATABASE COPY'"),
    ],
)
def test_descriptions_name_the_target(target: str | None, description: str) -> None:
    properties = codec.server_operation(db_op(target=target), SCOPE, "testsvr")["properties"]
    assert properties["description"] == description


def test_a_server_operation() -> None:
    body = codec.server_operation(db_op(), SCOPE, "testsvr")
    assert body["id"] == f"{PREFIX}/servers/testsvr/operations/{OP_ID}"
    assert body["name"] == OP_ID
    assert body["type"] == "Microsoft.Sql/servers/operations"
    properties = body["properties"]
    assert properties["serverName"] == "testsvr"
    assert "databaseName" not in properties
    assert "operationPhaseDetails" not in properties  # not in the ServerOperation model
    assert set(properties) == {"serverName", *COMMON, "estimatedCompletionTime"}
    failed = codec.server_operation(ended(State.FAILED), SCOPE, "testsvr")["properties"]
    assert set(failed) >= ERROR_KEYS


def test_ids_keep_the_callers_spelling() -> None:
    scope = Scope(SUB.upper(), "rg.Mixed_Case(1)")
    body = codec.database_operation(db_op(), scope, DatabaseRef("testsvr", "Données"))
    assert body["id"] == (
        f"/subscriptions/{SUB.upper()}/resourceGroups/rg.Mixed_Case(1)/providers/Microsoft.Sql"
        f"/servers/testsvr/databases/Données/operations/{OP_ID}"
    )
    assert body["properties"]["databaseName"] == "Données"


# The async-operation status monitor ---------------------------------------------------------


def test_status_of_a_running_operation() -> None:
    assert codec.status_resource(db_op(), SCOPE) == {
        "id": f"{PREFIX}/locations/local/databaseAzureAsyncOperation/{OP_ID}",
        "name": OP_ID,
        "status": "InProgress",
        "percentComplete": 42,
        "startTime": "2026-11-21T13:17:49.938Z",
    }


def test_status_of_a_success_has_an_end_and_no_error() -> None:
    body = codec.status_resource(ended(State.SUCCEEDED), SCOPE)
    assert body["status"] == "Succeeded" and body["percentComplete"] == 100
    assert body["endTime"] == "2026-11-21T13:17:58.938Z"
    assert "error" not in body


def test_status_of_a_cancel_says_operation_cancelled() -> None:
    body = codec.status_resource(ended(State.CANCELLED), SCOPE)
    assert body["status"] == "Canceled"
    assert body["error"] == {
        "code": "OperationCancelled",
        "message": "The operation was cancelled at the user's request.",
    }
    assert ARM_TIME.fullmatch(body["endTime"])


def test_a_pending_operation_cancelled_before_it_started_has_the_same_error() -> None:
    op = db_op(
        state=State.CANCELLED,
        start_time=None,
        end_time=T0,
        cancel_requested_at=T0,
        cancel_outcome=CancelOutcome.NOT_STARTED,
        progress=Progress(),
    )
    body = codec.status_resource(op, SCOPE)
    assert body["status"] == "Canceled" and body["error"]["code"] == "OperationCancelled"
    assert body["percentComplete"] == 0


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (Code.NOT_FOUND, "NotFound"),
        (Code.ALREADY_EXISTS, "AlreadyExists"),
        (Code.FAILED_PRECONDITION, "FailedPrecondition"),
        (Code.INTERNAL, "Internal"),
        (Code.DEADLINE_EXCEEDED, "DeadlineExceeded"),
        (Code.INVALID_ARGUMENT, "InvalidArgument"),
    ],
)
def test_status_of_a_failure_names_its_code(code: Code, name: str) -> None:
    op = ended(State.FAILED, error=Failure(code=code, message=f"it went {code.name}"))
    body = codec.status_resource(op, SCOPE)
    assert body["status"] == "Failed"
    assert body["error"] == {"code": name, "message": f"it went {code.name}"}
    assert codec.code_name(code) == name


def test_accepted_body() -> None:
    assert codec.accepted_body(db_op()) == {
        "operation": "db.copy",
        "startTime": "2026-11-21T13:17:49.938Z",
    }


def test_database_resource() -> None:
    db = Database(SALES, 8192, T0)
    body = codec.database_resource(db, SCOPE)
    assert body["id"] == f"{PREFIX}/servers/testsvr/databases/sales"
    assert body["name"] == "sales"
    assert body["type"] == "Microsoft.Sql/servers/databases"
    assert body["location"] == codec.LOCATION == "local"
    properties = body["properties"]
    assert properties["status"] == "Online" and properties["provisioningState"] == "Succeeded"
    assert properties["creationDate"] == "2026-11-21T13:17:49.938Z"
    assert uuid.UUID(properties["databaseId"]).version == 5
    assert properties["databaseId"] == Database(SALES, 1, T0 + timedelta(days=1)).database_id
    assert properties["databaseId"] != Database(DatabaseRef("testsvr", "other"), 1, T0).database_id


# Times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (T0, "2026-11-21T13:17:49.938Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (
            datetime(2026, 11, 21, 15, 17, 49, 938257, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-21T13:17:49.938Z",
        ),
        (
            datetime(2026, 12, 31, 20, 30, 0, 1000, tzinfo=timezone(timedelta(hours=-5))),
            "2027-01-01T01:30:00.001Z",
        ),
    ],
)
def test_arm_time(value: datetime, text: str) -> None:
    assert codec.arm_time(value) == text
    assert ARM_TIME.fullmatch(text)


# Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OperationNotFound("no such operation"), 404, "OperationIdNotFound"),
        (NotCancellable("drops cannot be cancelled"), 409, "CannotCancelOperation"),
        (
            ResourceNotFound("no database", reason="DATABASE_NOT_FOUND"),
            404,
            "DatabaseDoesNotExist",
        ),
        (
            ResourceNotFound("no server", reason="SERVER_NOT_FOUND"),
            404,
            "ServerNotInSubscriptionResourceGroup",
        ),
        (ResourceNotFound("no such thing"), 404, "NotFound"),
        (ResourceExists("exists"), 409, "DatabaseAlreadyExists"),
        (TargetBusy("busy"), 409, "ConflictingDatabaseOperation"),
        (InvalidRequest("bad"), 400, "InvalidArgument"),
        (InvalidRequest("bad filter", reason="INVALID_FILTER"), 400, "InvalidArgument"),
        (InvalidRequest("bad id", reason="INVALID_OPERATION_ID"), 400, "InvalidIdentifier"),
        (InvalidRequest("bad name", reason="INVALID_DATABASE_NAME"), 400, "InvalidIdentifier"),
        (InvalidRequest("bad name", reason="INVALID_SERVER_NAME"), 400, "InvalidIdentifier"),
        (InvalidRequest("bad sub", reason="InvalidSubscriptionId"), 400, "InvalidSubscriptionId"),
        (StoreError("store down"), 503, "Unavailable"),
        (StoreConflict("raced"), 409, "Aborted"),
    ],
)
def test_from_error(error: LongrunningError, status: int, code: str) -> None:
    arm = codec.from_error(error)
    assert (arm.status, arm.code, arm.message) == (status, code, error.message)
    assert isinstance(arm, Exception)


def test_from_error_code_uses_the_shared_http_statuses() -> None:
    assert codec.from_error_code(Code.NOT_FOUND) == 404
    assert codec.from_error_code(Code.FAILED_PRECONDITION) == 400
    assert codec.from_error_code(Code.UNAVAILABLE) == 503
    assert codec.from_error_code(Code.CANCELLED) == 499


def test_the_arm_error_body() -> None:
    body = codec.ArmError(404, "OperationIdNotFound", "no such operation").body()
    assert list(body) == ["error"]
    assert body["error"] == {
        "code": "OperationIdNotFound",
        "message": "no such operation",
        "target": None,
        "details": [],
        "additionalInfo": [],
    }
    assert set(body["error"]) == {"code", "message", "target", "details", "additionalInfo"}


# Paths --------------------------------------------------------------------------------------


def segments(*rest: str, sub: str = SUB, rg: str = "My-RG") -> list[str]:
    return [sub, "resourceGroups", rg, "providers", "Microsoft.Sql", *rest]


def test_parse_a_database_operations_path() -> None:
    parsed = paths.parse(segments("servers", "S1", "databases", "Sales", "operations"))
    assert parsed.scope == SCOPE
    assert parsed.scope.prefix == PREFIX
    assert parsed.rest == ("servers", "S1", "databases", "Sales", "operations")
    assert parsed.shape() == ("servers", "*", "databases", "*", "operations")


def test_fixed_segments_match_case_insensitively_and_names_keep_their_spelling() -> None:
    parsed = paths.parse(
        [SUB.upper(), "RESOURCEGROUPS", "Rg", "Providers", "microsoft.SQL", "Servers", "S1"]
    )
    assert parsed.scope == Scope(SUB.upper(), "Rg")
    assert parsed.rest == ("Servers", "S1")
    assert parsed.shape() == ("servers", "*")
    assert paths.parse(segments()).rest == ()


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [SUB],
        [SUB, "resourceGroups", "rg", "providers"],
        [SUB, "resourceGroups", "rg", "providers", "Microsoft.Storage", "servers", "s"],
        [SUB, "resourceGroup", "rg", "providers", "Microsoft.Sql"],
        [SUB, "resourceGroups", "rg", "provider", "Microsoft.Sql"],
        [SUB, "resourceGroups", "rg", "providers", "Microsoft.Sql2"],
        ["not-a-guid", "resourceGroups", "rg.", "providers", "Microsoft.Web"],
    ],
)
def test_other_paths_are_not_found(parts: list[str]) -> None:
    with pytest.raises(PathNotFound):
        paths.parse(parts)


@pytest.mark.parametrize(
    "sub",
    [
        "not-a-guid",
        "",
        SUB.replace("-", ""),
        "{" + SUB + "}",
        "urn:uuid:" + SUB,
        SUB[:-1],
        SUB + "0",
        SUB[:-1] + "g",
    ],
)
def test_bad_subscription_ids(sub: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid GUID") as caught:
        paths.parse(segments("servers", "s", sub=sub))
    assert caught.value.reason == "InvalidSubscriptionId"
    assert codec.from_error(caught.value).code == "InvalidSubscriptionId"
    assert codec.from_error(caught.value).status == 400


@pytest.mark.parametrize("sub", ["urn:" + SUB.replace("-", ""), SUB.replace("-", "") + "----"])
def test_36_characters_that_are_not_a_guid(sub: str) -> None:
    assert len(sub) == 36
    with pytest.raises(InvalidRequest):
        paths.check_uuid(sub, "subscription id", reason="InvalidSubscriptionId")


def test_check_uuid_accepts_either_case_and_returns_the_value() -> None:
    assert paths.check_uuid(SUB, "id", reason="r") == SUB
    assert paths.check_uuid(SUB.upper(), "id", reason="r") == SUB.upper()
    with pytest.raises(InvalidRequest, match="the operation id 'x' is not a valid GUID") as caught:
        paths.check_uuid("x", "operation id", reason="InvalidIdentifier")
    assert caught.value.reason == "InvalidIdentifier"


@pytest.mark.parametrize(
    "rg", ["a", "-", "x" * 90, "rg.with.dots", "rg_(1)", "Ünïcødé-rg", "ends-with_(x)", ".a"]
)
def test_good_resource_group_names(rg: str) -> None:
    assert paths.parse(segments(rg=rg)).scope.resource_group == rg


@pytest.mark.parametrize(
    "rg", ["", "x" * 91, "rg.", "x" * 89 + ".", "rg space", "rg*", "rg#1", "rg+", "rg\n", "."]
)
def test_bad_resource_group_names(rg: str) -> None:
    with pytest.raises(InvalidRequest, match="resource group name") as caught:
        paths.parse(segments(rg=rg))
    assert caught.value.reason == "InvalidResourceGroupName"
    assert codec.from_error(caught.value).status == 400


def test_scope_ids() -> None:
    assert SCOPE.server_id("s1") == f"{PREFIX}/servers/s1"
    assert SCOPE.database_id("s1", "d b") == f"{PREFIX}/servers/s1/databases/d b"
