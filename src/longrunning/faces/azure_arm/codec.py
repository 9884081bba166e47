"""Operation and database records as ARM's Microsoft.Sql JSON, and errors as ARM ErrorResponse.

Pure translation, no I/O. One operation shows the same way on every face: its UUID is the ARM
operation name, the async-operation id and `x-ms-request-id`; its state maps as below.

    ours                        DatabaseOperation.state   async-operation status
    PENDING                     Pending                   InProgress
    RUNNING                     InProgress                InProgress
    RUNNING, cancel requested   CancelInProgress          InProgress
    SUCCEEDED                   Succeeded                 Succeeded
    FAILED                      Failed                    Failed (+ error)
    CANCELLED                   Cancelled                 Canceled (+ error OperationCancelled)

(SQL spells Cancelled; ARM's polling protocol, Canceled: ARMPolling keeps polling on Cancelled.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from longrunning.core.errors import Code, LongrunningError
from longrunning.core.operation import Operation, State
from longrunning.databases.names import DatabaseRef
from longrunning.databases.service import Database
from longrunning.faces.azure_arm.paths import Scope
from longrunning.faces.statuses import HTTP_STATUS

Json = dict[str, Any]
LOCATION = "local"
"""The Azure region our servers report; ARM puts it in async-operation URLs."""


def arm_time(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as ARM writes times."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def operation_state(op: Operation) -> str:
    if op.state is State.RUNNING and op.cancel_requested:
        return "CancelInProgress"
    return _STATES[op.state]


_STATES = {
    State.PENDING: "Pending",
    State.RUNNING: "InProgress",
    State.SUCCEEDED: "Succeeded",
    State.FAILED: "Failed",
    State.CANCELLED: "Cancelled",
}


def async_status(op: Operation) -> str:
    if not op.done:
        return "InProgress"
    return {State.SUCCEEDED: "Succeeded", State.FAILED: "Failed"}.get(op.state, "Canceled")


def percent_complete(op: Operation) -> int:
    return 100 if op.state is State.SUCCEEDED else int(op.progress.percent)


def is_cancellable(op: Operation) -> bool:
    """What `cancel` would accept now: a live operation of a cancellable kind, not yet asked."""
    return op.cancellable and not op.done and not op.cancel_requested


def _operation_properties(op: Operation) -> Json:
    properties: Json = {
        "operation": op.kind,
        "operationFriendlyName": op.display_title,
        "percentComplete": percent_complete(op),
        "startTime": arm_time(op.create_time),
        "state": operation_state(op),
        "isCancellable": is_cancellable(op),
    }
    ref = DatabaseRef.from_target(op.target)
    where = f" on database '{ref.database}'" if ref else f" on '{op.target}'" if op.target else ""
    properties["description"] = f"'{op.display_title}'{where}"
    if op.error is not None:
        properties |= {
            "errorCode": int(op.error.code),
            "errorDescription": op.error.message,
            "errorSeverity": op.error.severity,
            "isUserError": op.error.is_user_error,
        }
    if op.progress.eta is not None and not op.done:
        properties["estimatedCompletionTime"] = arm_time(op.progress.eta)
    if op.progress.phase and not op.done:
        properties["operationPhaseDetails"] = {"phaseInformation": {"detail": op.progress.phase}}
    return properties


def database_operation(op: Operation, scope: Scope, ref: DatabaseRef) -> Json:
    properties = _operation_properties(op)
    return {
        "id": f"{scope.database_id(ref.server, ref.database)}/operations/{op.id}",
        "name": op.id,
        "type": "Microsoft.Sql/servers/databases/operations",
        "properties": {"databaseName": ref.database, "serverName": ref.server, **properties},
    }


def server_operation(op: Operation, scope: Scope, server: str) -> Json:
    properties = _operation_properties(op)
    properties.pop("operationPhaseDetails", None)  # not in the ServerOperation model
    return {
        "id": f"{scope.server_id(server)}/operations/{op.id}",
        "name": op.id,
        "type": "Microsoft.Sql/servers/operations",
        "properties": {"serverName": server, **properties},
    }


def status_resource(op: Operation, scope: Scope) -> Json:
    """The async-operation status monitor ARMPolling reads."""
    body: Json = {
        "id": f"{scope.prefix}/locations/{LOCATION}/databaseAzureAsyncOperation/{op.id}",
        "name": op.id,
        "status": async_status(op),
        "percentComplete": percent_complete(op),
        "startTime": arm_time(op.create_time),
    }
    if op.end_time is not None:
        body["endTime"] = arm_time(op.end_time)
    if op.state is State.CANCELLED:
        body["error"] = {
            "code": "OperationCancelled",
            "message": "The operation was cancelled at the user's request.",
        }
    elif op.state is State.FAILED and op.error is not None:
        body["error"] = {"code": code_name(op.error.code), "message": op.error.message}
    return body


def accepted_body(op: Operation) -> Json:
    """The body of a 202, as Azure SQL sends it."""
    return {"operation": op.kind, "startTime": arm_time(op.create_time)}


def database_resource(db: Database, scope: Scope) -> Json:
    return {
        "id": scope.database_id(db.ref.server, db.ref.database),
        "name": db.ref.database,
        "type": "Microsoft.Sql/servers/databases",
        "location": LOCATION,
        "kind": "v12.0,user",
        "sku": {"name": "SQLite", "tier": "SQLite"},
        "properties": {
            "status": "Online",
            "databaseId": db.database_id,
            "creationDate": arm_time(db.modified),
            "collation": "BINARY",
            "maxSizeBytes": 281474976710656,  # SQLite's limit with the default page size
            "currentServiceObjectiveName": "SQLite",
            "provisioningState": "Succeeded",
        },
    }


def from_error_code(code: Code) -> int:
    return HTTP_STATUS.get(code, 500)


def code_name(code: Code) -> str:
    """`NOT_FOUND` as ARM spells error codes: `NotFound`."""
    return "".join(part.capitalize() for part in code.name.split("_"))


@dataclass(frozen=True, slots=True)
class ArmError(Exception):
    status: int
    code: str
    message: str

    def body(self) -> Json:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": None,
                "details": [],
                "additionalInfo": [],
            }
        }


_REASONS = {
    "OPERATION_NOT_FOUND": (404, "OperationIdNotFound"),
    "DATABASE_NOT_FOUND": (404, "DatabaseDoesNotExist"),
    "SERVER_NOT_FOUND": (404, "ServerNotInSubscriptionResourceGroup"),
    "NOT_CANCELLABLE": (409, "CannotCancelOperation"),
    "TARGET_BUSY": (409, "ConflictingDatabaseOperation"),
    "RESOURCE_EXISTS": (409, "DatabaseAlreadyExists"),
    "INVALID_OPERATION_ID": (400, "InvalidIdentifier"),
    "INVALID_DATABASE_NAME": (400, "InvalidIdentifier"),
    "INVALID_SERVER_NAME": (400, "InvalidIdentifier"),
}


def from_error(exc: LongrunningError) -> ArmError:
    """A core error as ARM answers it. Reasons the ARM face raises itself are ARM codes already."""
    status, code = _REASONS.get(exc.reason, (0, ""))
    if not code:
        status = HTTP_STATUS.get(exc.code, 500)
        # An ARM code is PascalCase: upper first letter, some lower ones, no underscore.
        spelled = exc.reason[:1].isupper() and not exc.reason.isupper() and "_" not in exc.reason
        code = exc.reason if spelled else code_name(exc.code)
    return ArmError(status, code, exc.message)
