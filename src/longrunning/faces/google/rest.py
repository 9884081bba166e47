"""google.longrunning.Operations over HTTP/JSON (gRPC transcoding), under any version prefix:

    GET    /{version}/{parent}/operations          ListOperations (parent `operations`: all)
    GET    /{version}/{name}                       GetOperation
    DELETE /{version}/{name}                       DeleteOperation
    POST   /{version}/{name}:cancel                CancelOperation (body absent, {} or {"name"})
    POST   /{version}/{name}:wait                  WaitOperation ({"timeout": "5s"})
    POST   /{version}/{parent}/operations:start    start an operation (AIP-136 custom method)

and the database methods on `/{version}/{parent}/servers/{server}/databases...` (databases.py;
which paths are theirs: database_names.py), answering Database JSON or an Operation.

Strict proto3 JSON out (`json_format`), AIP-193 errors. Routing only: the methods live in
`operations.py` and `databases.py`, the wire shapes in `codec.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.json_values import JsonObject
from longrunning.core.operation import Operation
from longrunning.databases.service import DatabaseService
from longrunning.engine.service import OperationService
from longrunning.faces.google import codec, database_names
from longrunning.faces.google.database_names import DatabasePath, Shape
from longrunning.faces.google.databases import GoogleDatabases
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


def _json_object(raw: bytes) -> JsonObject:
    """A request body as a JSON object; empty is `{}`."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}", reason="INVALID_BODY") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", reason="INVALID_BODY")
    return body


_Handler = TypeVar("_Handler")
_DatabaseHandler = Callable[[Request, DatabasePath], Awaitable[Response]]


def _dispatch(handlers: Mapping[str, Mapping[str, _Handler]], verb: str, method: str) -> _Handler:
    """The handler of `:verb` for `method`; NOT_FOUND for an unknown verb, UNIMPLEMENTED for a
    method the verb does not take."""
    by_method = handlers.get(verb)
    if by_method is None:
        known = ", ".join(f":{v}" for v in handlers if v)
        raise _NoRoute(
            f"unknown method ':{verb}'; known: {known or 'none'}", metadata={"method": verb}
        )
    handler = by_method.get(method)
    if handler is None:
        raise _BadMethod(
            f"{method} is not allowed here; allowed: {', '.join(by_method)}",
            metadata={"method": method},
        )
    return handler


def _database_verbs(
    databases: GoogleDatabases, body_of: Callable[[Request], Awaitable[bytes]]
) -> dict[Shape, dict[str, dict[str, _DatabaseHandler]]]:
    """The database methods by path shape, custom verb and HTTP method."""

    def read(
        method: Callable[[DatabasePath, Mapping[str, str]], Awaitable[JsonObject]],
    ) -> _DatabaseHandler:
        async def handle(request: Request, path: DatabasePath) -> Response:
            return JSONResponse(await method(path, request.query_params))

        return handle

    def change(
        method: Callable[[DatabasePath, Mapping[str, str], JsonObject], Awaitable[Operation]],
    ) -> _DatabaseHandler:
        async def handle(request: Request, path: DatabasePath) -> Response:
            body = _json_object(await body_of(request))
            return _json(codec.to_operation(await method(path, request.query_params, body)))

        return handle

    async def delete(request: Request, path: DatabasePath) -> Response:
        return _json(codec.to_operation(await databases.delete(path, request.query_params)))

    get, listed = read(databases.get), read(databases.list)
    return {
        Shape.DATABASES: {
            "": {"GET": listed, "HEAD": listed, "POST": change(databases.create)},
            "import": {"POST": change(databases.import_)},
            "restore": {"POST": change(databases.restore)},
        },
        Shape.DATABASE: {
            "": {"GET": get, "HEAD": get, "DELETE": delete},
            "export": {"POST": change(databases.export)},
            "backup": {"POST": change(databases.backup)},
            "alter": {"POST": change(databases.alter)},
        },
        Shape.INDEXES: {"": {"POST": change(databases.create_index)}},
    }


def google_routes(
    service: OperationService,
    *,
    max_body_bytes: int = 1_048_576,
    databases: DatabaseService | None = None,
) -> list[BaseRoute]:
    """The transcoded google.longrunning.Operations routes, under `/{version}/...`, and the
    database methods if `databases` is given."""
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
    database_verbs = (
        None if databases is None else _database_verbs(GoogleDatabases(databases), body_of)
    )

    async def endpoint(request: Request) -> Response:
        try:
            # HTTP paths are ASCII; stray bytes become characters no name allows (INVALID_NAME).
            raw = request.scope.get("raw_path") or request.url.path.encode()
            raw_path = raw.decode("latin-1").split("?", 1)[0]
            found = database_names.match(raw_path) if database_verbs is not None else None
            if database_verbs is not None and found is not None:
                handler = _dispatch(database_verbs[found.shape], found.verb, request.method)
                return await handler(request, found)
            name, verb = _split(raw_path)
            return await _dispatch(verbs, verb, request.method)(request, name)
        except LongrunningError as exc:
            return _error(exc)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(codec.InternalError("internal error; see the server log"))

    return [Route("/{version:google_version}/{name:path}", endpoint, methods=_METHODS)]
