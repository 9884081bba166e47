"""google.longrunning.Operations over HTTP/JSON (gRPC transcoding), under any version prefix:

    GET    /{version}/{parent}/operations          ListOperations (parent `operations`: all)
    GET    /{version}/{name}                       GetOperation
    DELETE /{version}/{name}                       DeleteOperation
    POST   /{version}/{name}:cancel                CancelOperation (body absent, {} or {"name"})
    POST   /{version}/{name}:wait                  WaitOperation ({"timeout": "5s"})
    POST   /{version}/{parent}/operations:start    start an operation (AIP-136 custom method)

Strict proto3 JSON out (`json_format`), AIP-193 errors. Routing only: the methods live in
`operations.py`, the wire shapes in `codec.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.engine.service import OperationService
from longrunning.faces.google import codec
from longrunning.faces.google.names import VERSION
from longrunning.faces.google.operations import GoogleOperations

log = logging.getLogger("longrunning.faces.google")

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_LIST_PARAMS = {
    "filter": "filter",
    "pageSize": "page_size",
    "page_size": "page_size",
    "pageToken": "page_token",
    "page_token": "page_token",
    "returnPartialSuccess": "return_partial_success",
    "return_partial_success": "return_partial_success",
}
_SYSTEM_PARAMS = frozenset(
    {"alt", "prettyPrint", "fields", "key", "quotaUser", "callback", "access_token", "name"}
)
"""Google's system parameters (also with a `$` prefix), accepted and ignored."""


class _VersionConvertor(Convertor[str]):
    regex = VERSION.pattern

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("google_version", _VersionConvertor())


class _NoRoute(LongrunningError):
    code = Code.NOT_FOUND
    default_reason = "UNKNOWN_METHOD"


class _BadMethod(LongrunningError):
    code = Code.UNIMPLEMENTED
    default_reason = "METHOD_NOT_ALLOWED"


def _json(message: Message, status: int = 200) -> Response:
    return Response(
        json_format.MessageToJson(message, indent=None),
        status,
        media_type="application/json",
    )


def _error(exc: LongrunningError) -> JSONResponse:
    status, body = codec.error_json(exc)
    return JSONResponse(body, status)


def _split(raw_path: str) -> tuple[str, str]:
    """`/{version}/{name}[:verb]` (raw, still percent-encoded) to the decoded name and verb.
    The verb is split off before decoding, so an encoded `%3A` in a name is never a verb."""
    rest = raw_path.split("/", 2)[2] if raw_path.count("/") >= 2 else ""
    last = rest.rfind("/")
    head, colon, verb = rest[last + 1 :].partition(":")
    name = rest[: last + 1] + head
    if colon and not verb:
        raise _NoRoute(f"no method after ':' in {raw_path!r}")
    return unquote(name), verb


def _check_same_name(in_body: str, in_path: str) -> None:
    if in_body and in_body != in_path:
        raise InvalidRequest(
            f"the body names {in_body!r} but the path names {in_path!r}",
            reason="NAME_MISMATCH",
            metadata={"name": in_path},
        )


def _list_request(name: str, params: Mapping[str, str]) -> operations_pb2.ListOperationsRequest:
    fields: dict[str, Any] = {"name": name}
    for key, value in params.items():
        field = _LIST_PARAMS.get(key)
        if field is None:
            if key.removeprefix("$") in _SYSTEM_PARAMS:
                continue
            raise InvalidRequest(
                f"unknown query parameter {key[:60]!r}; known: filter, pageSize, pageToken, "
                "returnPartialSuccess",
                reason="UNKNOWN_PARAMETER",
                metadata={"parameter": key[:60]},
            )
        fields[field] = value
    if "page_size" in fields:
        try:
            fields["page_size"] = int(fields["page_size"])
        except ValueError:
            raise InvalidRequest(
                f"pageSize must be an integer, not {fields['page_size'][:40]!r}",
                reason="INVALID_PAGE_SIZE",
            ) from None
        if not -(2**31) <= fields["page_size"] < 2**31:
            raise InvalidRequest("pageSize is out of range", reason="INVALID_PAGE_SIZE")
    if "return_partial_success" in fields:
        flag = fields["return_partial_success"].lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidRequest(
                "returnPartialSuccess must be true or false", reason="INVALID_ARGUMENT"
            )
        fields["return_partial_success"] = flag in ("true", "1")
    return operations_pb2.ListOperationsRequest(**fields)


def google_routes(service: OperationService, *, max_body_bytes: int = 1_048_576) -> list[BaseRoute]:
    """The transcoded google.longrunning.Operations routes, under `/{version}/...`."""
    operations = GoogleOperations(service)

    async def body_of(request: Request) -> bytes:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_body_bytes:
                raise InvalidRequest(
                    f"the body is larger than {max_body_bytes} bytes", reason="BODY_TOO_LARGE"
                )
        return bytes(raw)

    async def cancel(request: Request, name: str) -> Response:
        body = codec.parse_body(await body_of(request), operations_pb2.CancelOperationRequest())
        _check_same_name(body.name, name)
        await operations.cancel(name)
        return JSONResponse({})

    async def wait(request: Request, name: str) -> Response:
        body = codec.parse_body(await body_of(request), operations_pb2.WaitOperationRequest())
        _check_same_name(body.name, name)
        timeout = body.timeout.ToTimedelta().total_seconds() if body.HasField("timeout") else None
        return _json(await operations.wait(name, timeout))

    async def start(request: Request, name: str) -> Response:
        raw = await body_of(request)
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise InvalidRequest(f"the body is not JSON: {exc}", reason="INVALID_BODY") from None
        return _json(await operations.start(name, body))

    async def delete(request: Request, name: str) -> Response:
        await operations.delete(name)
        return JSONResponse({})

    async def get_or_list(request: Request, name: str) -> Response:
        if name == "operations" or name.endswith("/operations"):
            listed = _list_request(name, request.query_params)
            return _json(await operations.list(listed))
        return _json(await operations.get(name))

    verbs = {
        "": {"GET": get_or_list, "HEAD": get_or_list, "DELETE": delete},
        "cancel": {"POST": cancel},
        "wait": {"POST": wait},
        "start": {"POST": start},
    }

    async def endpoint(request: Request) -> Response:
        try:
            # HTTP paths are ASCII; stray bytes become characters no name allows (INVALID_NAME).
            raw = request.scope.get("raw_path") or request.url.path.encode()
            raw_path = raw.decode("latin-1")
            name, verb = _split(raw_path.split("?", 1)[0])
            handlers = verbs.get(verb)
            if handlers is None:
                raise _NoRoute(
                    f"unknown method ':{verb}'; known: :cancel, :wait, :start",
                    metadata={"method": verb},
                )
            handler = handlers.get(request.method)
            if handler is None:
                raise _BadMethod(
                    f"{request.method} is not allowed here; allowed: {', '.join(handlers)}",
                    metadata={"method": request.method},
                )
            return await handler(request, name)
        except LongrunningError as exc:
            return _error(exc)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(codec.InternalError("internal error; see the server log"))

    return [Route("/{version:google_version}/{name:path}", endpoint, methods=_METHODS)]
