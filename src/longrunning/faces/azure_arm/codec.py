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

Exports and imports name a blob by `storageUri`; here it is a file of the server's files
directory: the URI's last path segment (see `storage_file`). The URI may hold a SAS token and the
request a storage key and a password: none of them is stored, logged or echoed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.operation import Failure, Operation, State
from longrunning.databases import kinds
from longrunning.databases.backend import check_file_name
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
        body["error"] = failure_error(op.error)
    return body


def failure_error(failure: Failure) -> Json:
    """An operation's failure as an ARM error: the code spelled as ARM does, and each ErrorInfo
    of the failure (the database's own error, e.g. `SQLITE_CANTOPEN`) both as a detail (which
    azure-core's pollers parse) and as additionalInfo (which its ARM error format parses)."""
    error: Json = {"code": code_name(failure.code), "message": failure.message}
    extra = additional_info(failure)
    if extra:
        error["details"] = [_detail(info["info"]) for info in extra]
        error["additionalInfo"] = extra
    return error


def _detail(info: Json) -> Json:
    metadata = info.get("metadata")
    pairs = metadata.items() if isinstance(metadata, dict) else ()
    text = ", ".join(f"{key}={value}" for key, value in pairs)
    return {"code": str(info.get("reason")), "message": text or str(info.get("reason"))}


def additional_info(failure: Failure) -> list[Json]:
    """ARM's ErrorAdditionalInfo ({type, info}) for each ErrorInfo detail of a failure."""
    found: list[Json] = []
    for detail in failure.details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(".ErrorInfo"):
            info = {key: value for key, value in detail.items() if key != "@type"}
            found.append({"type": "ErrorInfo", "info": info})
    return found


def accepted_body(op: Operation) -> Json:
    """The body of a 202, as Azure SQL sends it."""
    return {"operation": op.kind, "startTime": arm_time(op.create_time)}


def database_resource(db: Database, scope: Scope) -> Json:
    body: Json = {
        "id": scope.database_id(db.ref.server, db.ref.database),
        "name": db.ref.database,
        "type": "Microsoft.Sql/servers/databases",
        "location": LOCATION,
        "kind": "v12.0,user",
        "sku": {"name": db.engine, "tier": db.engine},
        "properties": {
            "status": "Online",
            "databaseId": db.database_id,
            "currentServiceObjectiveName": db.engine,
            "provisioningState": "Succeeded",
        },
    }
    if db.engine == "SQLite":
        body["properties"]["collation"] = "BINARY"
        # SQLite's limit with the default page size; PostgreSQL's is the disk's.
        body["properties"]["maxSizeBytes"] = 281474976710656
    if db.created is not None:
        body["properties"]["creationDate"] = arm_time(db.created)
    return body


def update_changes(body: Json, current: Json) -> list[str]:
    """What a DatabaseUpdate (PATCH) body would change in the database `current`: the paths
    of the properties it sets to other values than they have (null means unchanged)."""
    changes: list[str] = []
    if body.get("tags"):
        changes.append("tags")
    identity = body.get("identity")
    if isinstance(identity, dict) and identity.get("type") not in (None, "None"):
        changes.append("identity")
    for part in ("sku", "properties"):
        asked = body.get(part)
        if asked is None:
            continue
        if not isinstance(asked, dict):
            raise ArmError(400, "InvalidRequestContent", f"{part} must be an object")
        now = current.get(part) or {}
        changes += [
            f"{part}.{key}"
            for key, value in asked.items()
            if value is not None and value != now.get(key)
        ]
    return changes


_IMPORT_EXPORT_STATUS = {
    State.PENDING: "Pending",
    State.RUNNING: "InProgress",
    State.SUCCEEDED: "Completed",
    State.FAILED: "Failed",
    State.CANCELLED: "Cancelled",
}


def import_export_result(op: Operation, scope: Scope, ref: DatabaseRef) -> Json:
    """ImportExportOperationResult of an export or import: `blobUri` is the file's name, as the
    storage URI (it may carry a SAS token) is never stored."""
    file = op.request.get("file")
    properties: Json = {
        "requestId": op.id,
        "requestType": "Export" if op.kind == kinds.EXPORT else "Import",
        "queuedTime": arm_time(op.create_time),
        "lastModifiedTime": arm_time(op.update_time),
        "blobUri": file if isinstance(file, str) else None,
        "serverName": ref.server,
        "databaseName": ref.database,
        "status": _IMPORT_EXPORT_STATUS[op.state],
        "errorMessage": None if op.error is None else op.error.message,
    }
    return {
        "id": f"{scope.database_id(ref.server, ref.database)}/importExportOperationResults/{op.id}",
        "name": op.id,
        "type": "Microsoft.Sql/servers/databases/importExportOperationResults",
        "properties": properties,
    }


def storage_file(uri: object) -> str:
    """The file of the server's files directory a `storageUri` names: its last path segment,
    percent-decoded (`https://acct.blob.core.windows.net/bacpacs/sales.bacpac` is `sales.bacpac`).
    The query (a SAS token) is ignored and never shown."""
    if not isinstance(uri, str) or not uri.strip():
        raise ArmError(
            400, "InvalidStorageUri", "storageUri is required: a URI ending in a file name"
        )
    segment = unquote(urlsplit(uri.strip()).path.rpartition("/")[2])
    try:
        return check_file_name(segment)
    except InvalidRequest as exc:
        raise ArmError(
            400,
            "InvalidStorageUri",
            f"storageUri must end in a file name of the server's files directory: {exc.message}",
        ) from None


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
    details: list[Json] = field(default_factory=list)
    additional_info: list[Json] = field(default_factory=list)

    def body(self) -> Json:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": None,
                "details": self.details,
                "additionalInfo": self.additional_info,
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
