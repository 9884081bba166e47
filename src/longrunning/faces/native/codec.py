"""The native face's codec: Operation to camelCase JSON, wire requests to service arguments, and
errors to HTTP statuses. Pure functions only: no I/O, no Starlette, no service calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.json_values import JsonObject
from longrunning.core.listing import OperationQuery, Page, build_query
from longrunning.core.operation import Failure, Operation, Progress, State
from longrunning.core.timestamps import format_timestamp
from longrunning.databases.backend import FileInfo
from longrunning.databases.servers import DatabaseServer, PostgresServer
from longrunning.databases.service import Database
from longrunning.engine.service import DEFAULT_PARENT, StartRequest, check_parent
from longrunning.faces.statuses import HTTP_STATUS

DEFAULT_WAIT_SECONDS = 30.0

START_FIELDS = frozenset(
    {"kind", "parent", "request", "requestId", "labels", "target", "queue", "timeoutSeconds"}
)
"""The keys a start request body may hold."""

_NEWEST_FIRST = {"": True, "create_time desc": True, "create_time": False, "create_time asc": False}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)s?")


def operation_to_json(op: Operation) -> JsonObject:
    """The wire form of an operation. Lease fields and the request fingerprint stay inside."""
    body: JsonObject = {
        "id": op.id,
        "name": op.name,
        "parent": op.parent,
        "kind": op.kind,
        "title": op.display_title,
        "state": op.state.value,
        "done": op.done,
        "cancellable": op.cancellable,
        "cancelRequested": op.cancel_requested,
    }
    if op.cancel_requested_at is not None:
        body["cancelRequestTime"] = format_timestamp(op.cancel_requested_at)
    if op.cancel_outcome is not None:
        body["cancelOutcome"] = op.cancel_outcome.value
    body["progress"] = progress_to_json(op.progress)
    body["metadata"] = op.metadata
    body["request"] = op.request
    if op.state is State.SUCCEEDED:
        # Present exactly when the operation succeeded, even if the handler returned null.
        body["result"] = op.result
    if op.error is not None:
        body["error"] = failure_to_json(op.error)
    body["createTime"] = format_timestamp(op.create_time)
    body["updateTime"] = format_timestamp(op.update_time)
    if op.start_time is not None:
        body["startTime"] = format_timestamp(op.start_time)
    if op.end_time is not None:
        body["endTime"] = format_timestamp(op.end_time)
    body["attempt"] = op.attempt
    body["maxAttempts"] = op.max_attempts
    body["labels"] = dict(op.labels)
    if op.request_id is not None:
        body["requestId"] = op.request_id
    if op.target is not None:
        body["target"] = op.target
    body["queue"] = op.queue
    if op.deadline is not None:
        body["deadline"] = format_timestamp(op.deadline)
    body["version"] = op.version
    return body


def progress_to_json(progress: Progress) -> JsonObject:
    body: JsonObject = {"percent": progress.percent}
    if progress.phase is not None:
        body["phase"] = progress.phase
    if progress.eta is not None:
        body["estimatedCompletionTime"] = format_timestamp(progress.eta)
    return body


def failure_to_json(failure: Failure) -> JsonObject:
    return {
        "code": int(failure.code),
        "status": failure.code.name,
        "message": failure.message,
        "details": list(failure.details),
        "severity": failure.severity,
        "isUserError": failure.is_user_error,
    }


def page_to_json(page: Page) -> JsonObject:
    body: JsonObject = {"operations": [operation_to_json(op) for op in page.operations]}
    if page.next_page_token:
        body["nextPageToken"] = page.next_page_token
    return body


def server_to_json(server: DatabaseServer) -> JsonObject:
    """A database server as clients see it: never its DSN, directory or options."""
    kind = "postgresql" if isinstance(server, PostgresServer) else "sqlite"
    return {"name": server.name, "kind": kind, "parent": server.parent}


def database_to_json(database: Database) -> JsonObject:
    return {
        "name": database.ref.database,
        "server": database.ref.server,
        "sizeBytes": database.size_bytes,
        "createTime": None if database.created is None else format_timestamp(database.created),
        "databaseId": database.database_id,
    }


def file_to_json(file: FileInfo) -> JsonObject:
    return {
        "name": file.name,
        "sizeBytes": file.size_bytes,
        "modifyTime": format_timestamp(file.modified),
    }


def _field_error(message: str) -> InvalidRequest:
    return InvalidRequest(message, reason="INVALID_FIELD")


def _optional_string(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _field_error(f"{key} must be a string, not {_json_type(value)}")
    return value


def start_request_from_json(body: object) -> StartRequest:
    """Validate the shape of a start request body (the service checks the values)."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"the request body must be a JSON object, not {_json_type(body)}",
            reason="INVALID_BODY",
        )
    unknown = sorted(str(key) for key in body if key not in START_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(START_FIELDS))}",
            reason="UNKNOWN_FIELD",
        )
    kind = body.get("kind")
    if kind is None:
        raise InvalidRequest('kind is required, e.g. "demo.sleep"', reason="MISSING_FIELD")
    if not isinstance(kind, str):
        raise _field_error(f"kind must be a string, not {_json_type(kind)}")
    request = body.get("request")
    if request is not None and not isinstance(request, dict):
        raise _field_error(f"request must be a JSON object, not {_json_type(request)}")
    labels = body.get("labels")
    if labels is not None and not (
        isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())
    ):
        raise _field_error("labels must be a JSON object whose values are strings")
    return StartRequest(
        kind=kind,
        parent=_optional_string(body, "parent") or DEFAULT_PARENT,
        request=request or {},
        request_id=_optional_string(body, "requestId"),
        labels=labels or {},
        target=_optional_string(body, "target"),
        queue=_optional_string(body, "queue") or "default",
        timeout_seconds=_timeout_seconds(body.get("timeoutSeconds")),
    )


def batch_start_from_json(body: object) -> list[tuple[StartRequest, bool]]:
    """Validate a batch start body, `{"requests": [start request, ...]}`; each start request
    with whether it named its parent. A bad one fails the batch, naming its position."""
    if not isinstance(body, dict) or set(body) - {"requests"}:
        raise InvalidRequest(
            'the body must be a JSON object with one field, "requests"', reason="INVALID_BODY"
        )
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise _field_error(f"requests must be a JSON array, not {_json_type(requests)}")
    starts: list[tuple[StartRequest, bool]] = []
    for position, item in enumerate(requests):
        try:
            starts.append(
                (start_request_from_json(item), isinstance(item, dict) and "parent" in item)
            )
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"requests[{position}]: {exc.message}", reason=exc.reason
            ) from None
    return starts


def _timeout_seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _field_error(f"timeoutSeconds must be a number, not {_json_type(value)}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest("timeoutSeconds must be a positive number", reason="INVALID_TIMEOUT")
    return float(value)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def list_query_from_params(params: Mapping[str, str]) -> OperationQuery:
    """`parent`, `filter`, `pageSize`, `pageToken` and `orderBy` query parameters to a query."""
    parent = params.get("parent") or None
    if parent is not None:
        check_parent(parent)
    raw_size = params.get("pageSize", "").strip()
    page_size: int | None = None
    if raw_size:
        try:
            page_size = int(raw_size)
        except ValueError:
            raise InvalidRequest(
                f"pageSize must be an integer, got {raw_size[:40]!r}", reason="INVALID_PAGE_SIZE"
            ) from None
    order = " ".join(params.get("orderBy", "").lower().split())
    if order not in _NEWEST_FIRST:
        raise InvalidRequest(
            "orderBy must be 'create_time desc' (the default) or 'create_time asc'",
            reason="INVALID_ORDER_BY",
        )
    return build_query(
        parent=parent,
        filter_text=params.get("filter", ""),
        page_size=page_size,
        page_token=params.get("pageToken") or None,
        newest_first=_NEWEST_FIRST[order],
    )


def parse_duration(text: str | None, *, default: float = DEFAULT_WAIT_SECONDS) -> float:
    """Seconds from `30`, `30s` or `1.5s` (the JSON form of google.protobuf.Duration)."""
    if text is None or not text.strip():
        return default
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidRequest(
            f"timeout must be seconds like 30, 30s or 1.5s, got {text[:40]!r}",
            reason="INVALID_TIMEOUT",
        )
    return float(match.group(1))


def error_json(http_status: int, code: Code, reason: str, message: str) -> JsonObject:
    """The one error shape every native response uses."""
    return {
        "error": {"code": http_status, "status": code.name, "reason": reason, "message": message}
    }


def error_to_json(exc: LongrunningError) -> tuple[int, JsonObject]:
    status = HTTP_STATUS[exc.code]
    return status, error_json(status, exc.code, exc.reason, exc.message)
