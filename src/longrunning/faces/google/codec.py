"""The Google face's codec: operations as `google.longrunning.Operation` messages, errors as
`google.rpc.Status` with one ErrorInfo (AIP-193), and Google list and start requests as engine
arguments. Pure functions over protobuf messages: no I/O, no Starlette, no gRPC server.

Every payload is packed as a well-known type (`google.protobuf.Struct`, `Value` or `Empty`), never
a type of our own: a client that cannot resolve an `@type` fails to parse the whole response,
listing included. (Over REST, Struct must be loaded in the client; see docs/reference/google.md.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from google.longrunning import operations_pb2
from google.protobuf import any_pb2, duration_pb2, empty_pb2, json_format, struct_pb2
from google.rpc import error_details_pb2, status_pb2

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.listing import OperationQuery, Page, build_query
from longrunning.core.operation import Failure, Operation, State
from longrunning.core.timestamps import format_timestamp
from longrunning.engine.service import StartRequest
from longrunning.faces.google.names import list_scope
from longrunning.faces.statuses import HTTP_STATUS

ERROR_DOMAIN = "longrunning.local"
"""ErrorInfo.domain of every error this server raises."""

API_VERSION = "v1"
"""OperationMetadata.apiVersion: the version of the operations API that runs them."""

FILTER_ALIASES: Mapping[str, str] = {
    "done": "done",
    "name": "name",
    "error": "error.code",
    "error.code": "error.code",
    **{
        f"metadata.{spelled}": field
        for snake, camel, field in [
            ("create_time", "createTime", "create_time"),
            ("update_time", "updateTime", "update_time"),
            ("start_time", "startTime", "start_time"),
            ("end_time", "endTime", "end_time"),
            ("target", "target", "target"),
            ("verb", "verb", "kind"),
            ("state", "state", "state"),
            ("requested_cancellation", "requestedCancellation", "cancel_requested"),
            ("progress_percent", "progressPercent", "percent"),
            ("cancel_outcome", "cancelOutcome", "cancel_outcome"),
            ("cancellable", "cancellable", "cancellable"),
            ("attempt", "attempt", "attempt"),
            ("queue", "queue", "queue"),
            ("labels", "labels", "labels"),
        ]
        for spelled in (snake, camel)
    },
    "metadata.labels.": "labels.",
}
"""The filter fields of ListOperations (AIP-160), each mapped to the engine's own field."""


class InternalError(LongrunningError):
    """An unexpected failure, logged where it happened; the client learns only that."""

    code = Code.INTERNAL
    default_reason = "INTERNAL"


def _any(message: struct_pb2.Struct | struct_pb2.Value | empty_pb2.Empty) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def json_to_any(value: JsonValue) -> any_pb2.Any:
    """A JSON object as Struct, null as Empty, anything else as Value."""
    if isinstance(value, dict):
        struct = struct_pb2.Struct()
        struct.update(value)
        return _any(struct)
    if value is None:
        return _any(empty_pb2.Empty())
    holder = struct_pb2.Struct()
    holder.update({"value": value})
    wrapped = holder.fields["value"]
    return _any(wrapped)


def metadata_of(op: Operation) -> JsonObject:
    """Google's OperationMetadata pattern (AIP-151) plus what longrunning knows besides."""
    body: JsonObject = {
        "createTime": format_timestamp(op.create_time),
        "updateTime": format_timestamp(op.update_time),
    }
    if op.start_time is not None:
        body["startTime"] = format_timestamp(op.start_time)
    if op.end_time is not None:
        body["endTime"] = format_timestamp(op.end_time)
    if op.target is not None:
        body["target"] = op.target
    body["verb"] = op.kind
    body["title"] = op.display_title
    if op.progress.phase is not None:
        body["statusMessage"] = op.progress.phase
    body["requestedCancellation"] = op.cancel_requested
    body["apiVersion"] = API_VERSION
    body["progressPercent"] = op.progress.percent
    if op.progress.eta is not None:
        body["estimatedCompletionTime"] = format_timestamp(op.progress.eta)
    body["state"] = op.state.value
    if op.cancel_outcome is not None:
        body["cancelOutcome"] = op.cancel_outcome.value
    body["cancellable"] = op.cancellable
    body["attempt"] = op.attempt
    body["queue"] = op.queue
    if op.labels:
        body["labels"] = dict(op.labels)
    if op.metadata:
        body["handlerMetadata"] = op.metadata
    return body


def failure_to_status(failure: Failure) -> status_pb2.Status:
    status = status_pb2.Status(code=int(failure.code), message=failure.message)
    for detail in failure.details:
        status.details.append(_detail_to_any(detail))
    return status


def _detail_to_any(detail: JsonValue) -> any_pb2.Any:
    """A detail stored as proto JSON (`{"@type": ...}`) of a known type stays that type."""
    if isinstance(detail, dict) and isinstance(detail.get("@type"), str):
        try:
            return json_format.ParseDict(detail, any_pb2.Any())
        except json_format.ParseError:
            pass
    return json_to_any(detail)


def to_operation(op: Operation) -> operations_pb2.Operation:
    message = operations_pb2.Operation(name=op.name, done=op.done)
    message.metadata.CopyFrom(json_to_any(metadata_of(op)))
    if op.state is State.SUCCEEDED:
        message.response.CopyFrom(json_to_any(op.result))
    elif op.done:
        # Done must carry a result or an error; a terminal failure always has one.
        failure = op.error or Failure(code=Code.UNKNOWN, message="ended without an error")
        message.error.CopyFrom(failure_to_status(failure))
    return message


def to_list_response(page: Page) -> operations_pb2.ListOperationsResponse:
    return operations_pb2.ListOperationsResponse(
        operations=[to_operation(op) for op in page.operations],
        next_page_token=page.next_page_token or "",
    )


def error_status(exc: LongrunningError) -> status_pb2.Status:
    """AIP-193: the canonical code, the message, and exactly one ErrorInfo."""
    info = error_details_pb2.ErrorInfo(
        reason=exc.reason, domain=ERROR_DOMAIN, metadata=dict(exc.metadata)
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    return status_pb2.Status(code=int(exc.code), message=exc.message, details=[packed])


def error_json(exc: LongrunningError) -> tuple[int, JsonObject]:
    """The HTTP status and body of an error over REST: `{"error": {code, message, status,
    details}}`, code being the HTTP status as Google's REST APIs send it."""
    http = HTTP_STATUS[exc.code]
    status = error_status(exc)
    details: list[JsonValue] = [json_format.MessageToDict(d) for d in status.details]
    return http, {
        "error": {
            "code": http,
            "message": exc.message,
            "status": exc.code.name,
            "details": details,
        }
    }


def list_query(
    name: str, filter_text: str, page_size: int, page_token: str, *, partial_success: bool
) -> OperationQuery:
    """A ListOperations request as an engine query. `return_partial_success` is accepted: every
    location lives in the one store, so none is ever unreachable."""
    del partial_success
    scope = list_scope(name)
    return build_query(
        parent=scope.parent,
        filter_text=filter_text,
        page_size=page_size,
        page_token=page_token or None,
        aliases=FILTER_ALIASES,
        within=scope.within,
    )


_Body = TypeVar("_Body", operations_pb2.WaitOperationRequest, operations_pb2.CancelOperationRequest)


def parse_body(raw: bytes, message: _Body) -> _Body:
    """Strict proto3 JSON object into `message`; an empty body is the empty message."""
    if not raw.strip():
        return message
    what = message.DESCRIPTOR.full_name
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}", reason="INVALID_BODY") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON {what} object", reason="INVALID_BODY")
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise InvalidRequest(
            f"the body is not a valid {what}: {exc}", reason="INVALID_BODY"
        ) from None
    return message


START_FIELDS = frozenset({"kind", "request", "requestId", "labels", "target", "queue", "timeout"})


def start_request(parent: str, body: object) -> StartRequest:
    """The body of `POST /{version}/{parent}/operations:start` as a StartRequest:
    `{"kind": "demo.sleep", "request": {...}, "requestId": "...", "labels": {...},
    "target": "...", "queue": "...", "timeout": "30s"}`; only `kind` is required."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", reason="INVALID_BODY")
    unknown = sorted(str(key) for key in body if key not in START_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(START_FIELDS))}",
            reason="UNKNOWN_FIELD",
            metadata={"fields": ",".join(unknown)},
        )
    kind, request, labels = body.get("kind"), body.get("request", {}), body.get("labels", {})
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest('kind is required, e.g. "demo.sleep"', reason="MISSING_FIELD")
    if not isinstance(request, dict):
        raise InvalidRequest("request must be a JSON object", reason="INVALID_FIELD")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidRequest("labels must map keys to strings", reason="INVALID_FIELD")
    strings = {key: body.get(key) for key in ("requestId", "target", "queue", "timeout")}
    for key, value in strings.items():
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{key} must be a string", reason="INVALID_FIELD")
    timeout = strings["timeout"]
    return StartRequest(
        kind=kind,
        parent=parent,
        request=request,
        request_id=strings["requestId"],
        labels=labels,
        target=strings["target"],
        queue=strings["queue"] or "default",
        timeout_seconds=None if timeout is None else duration_seconds(timeout),
    )


def duration_seconds(text: str) -> float:
    """Seconds from the JSON form of google.protobuf.Duration ("30s", "1.5s")."""
    duration = duration_pb2.Duration()
    try:
        duration.FromJsonString(text)
    except ValueError:
        raise InvalidRequest(
            f'{text[:40]!r} is not a duration like "30s"', reason="INVALID_DURATION"
        ) from None
    return duration.ToTimedelta().total_seconds()
