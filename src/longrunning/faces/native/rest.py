"""The native HTTP API over Starlette: parse and check each request, call OperationService (and
DatabaseService for the read-only database routes), and answer through the codec. Wire shapes
live in codec.py; no store or lifecycle logic here.

Database work is started like any other operation, `POST /api/v1/operations` with a `db.*`
kind; the server routes only read what exists (servers, databases, files).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NoReturn

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import Code, InvalidRequest, LongrunningError
from longrunning.core.json_values import JsonObject
from longrunning.core.operation import Operation
from longrunning.databases.names import DatabaseRef
from longrunning.databases.service import DatabaseService
from longrunning.engine.service import OperationService, StartRequest
from longrunning.faces.native import codec
from longrunning.faces.native.openapi import OPENAPI
from longrunning.faces.statuses import HTTP_STATUS

log = logging.getLogger("longrunning.faces.native")

PREFIX = "/api/v1/operations"
SERVERS = "/api/v1/servers"
HEARTBEAT_SECONDS = 15.0
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _WireError(Exception):
    """An HTTP-level refusal the canonical codes cannot express (415, 413)."""

    def __init__(self, status: int, code: Code, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.reason, self.message = status, code, reason, message


def error_response(
    status: int, code: Code, reason: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(codec.error_json(status, code, reason, message), status, headers=headers)


def _guarded(handler: Endpoint) -> Endpoint:
    """Every LongrunningError through the codec; anything else a generic 500, logged here."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except LongrunningError as exc:
            status, body = codec.error_to_json(exc)
            return JSONResponse(body, status)
        except _WireError as exc:
            return error_response(exc.status, exc.code, exc.reason, exc.message)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(500, Code.INTERNAL, "INTERNAL", "internal error; see server log")

    return endpoint


def _dispatch(handlers: Mapping[str, Endpoint]) -> Endpoint:
    """One endpoint per path that answers wrong methods with 405 in the error JSON shape."""
    table = dict(handlers)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def endpoint(request: Request) -> Response:
        handler = table.get(request.method)
        if handler is None:
            return _method_not_allowed(request.method, table)
        return await handler(request)

    return _guarded(endpoint)


def _method_not_allowed(method: str, allowed: Mapping[str, object]) -> JSONResponse:
    allow = ", ".join(sorted(allowed))
    return error_response(
        405,
        Code.UNIMPLEMENTED,
        "METHOD_NOT_ALLOWED",
        f"method {method} is not allowed here; allowed: {allow}",
        headers={"Allow": allow},
    )


def _operation(
    op: Operation, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(codec.operation_to_json(op), status, headers=headers)


def _location(op: Operation) -> str:
    return f"{PREFIX}/{op.id}"


async def read_json_object(request: Request, max_body_bytes: int) -> object:
    """The request body as parsed JSON, after the content type and size checks."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise _WireError(
                415,
                Code.INVALID_ARGUMENT,
                "UNSUPPORTED_MEDIA_TYPE",
                f"send the body as application/json, not {media_type or 'an empty type'!r}",
            )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        _too_large(max_body_bytes)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body_bytes:  # the declared length may lie, or be absent (chunked)
            _too_large(max_body_bytes)
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object", reason="INVALID_JSON")
    try:
        return json.loads(bytes(raw), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", reason="INVALID_JSON") from None


def _too_large(limit: int) -> NoReturn:
    raise _WireError(
        413, Code.OUT_OF_RANGE, "BODY_TOO_LARGE", f"the body is larger than {limit} bytes"
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def native_routes(
    service: OperationService,
    *,
    databases: DatabaseService | None = None,
    max_body_bytes: int = 1_048_576,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> list[BaseRoute]:
    """The routes of the native API, health probes and the OpenAPI document; with `databases`,
    the database servers' routes too."""

    async def start(request: Request) -> Response:
        body = await read_json_object(request, max_body_bytes)
        start = codec.start_request_from_json(body)
        if databases is not None and isinstance(body, dict) and "parent" not in body:
            start = dataclasses.replace(start, parent=_database_parent(databases, start))
        started = await service.start(start)
        status = 201 if started.created else 200
        return _operation(started.operation, status, {"Location": _location(started.operation)})

    async def batch_start(request: Request) -> Response:
        starts = codec.batch_start_from_json(await read_json_object(request, max_body_bytes))
        requests = [
            start
            if named or databases is None
            else dataclasses.replace(start, parent=_database_parent(databases, start))
            for start, named in starts
        ]
        started = await service.start_many(requests)
        return JSONResponse(
            {"operations": [codec.operation_to_json(one.operation) for one in started]}
        )

    async def list_operations(request: Request) -> Response:
        page = await service.list(codec.list_query_from_params(request.query_params))
        return JSONResponse(codec.page_to_json(page))

    async def get(request: Request, op_id: str) -> Response:
        return _operation(await service.get(op_id))

    async def delete(request: Request, op_id: str) -> Response:
        await service.delete(op_id)
        return Response(status_code=204)

    async def cancel(request: Request, op_id: str) -> Response:
        return _operation(await service.cancel(op_id))

    async def wait(request: Request, op_id: str) -> Response:
        timeout = codec.parse_duration(request.query_params.get("timeout"))
        return _operation(await service.wait(op_id, timeout))

    async def watch(request: Request, op_id: str) -> Response:
        first = await service.get(op_id)  # a bad or unknown id fails here, before the stream
        return StreamingResponse(
            _events(service, first, heartbeat_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    members: dict[str, dict[str, Callable[[Request, str], Awaitable[Response]]]] = {
        "": {"GET": get, "DELETE": delete},
        "cancel": {"POST": cancel},
        "wait": {"POST": wait},
        "watch": {"GET": watch},
    }

    async def member(request: Request) -> Response:
        op_id, colon, verb = request.path_params["name"].partition(":")
        handlers = members.get(verb)
        if handlers is None or (colon and not verb):
            known = ", ".join(f":{v}" for v in members if v)
            return error_response(
                404,
                Code.NOT_FOUND,
                "UNKNOWN_METHOD",
                f"unknown method {':' + verb!r}; known: {known}",
            )
        handler = handlers.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            return _method_not_allowed(request.method, handlers)
        return await handler(request, op_id)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await service.ping()
        except LongrunningError as exc:
            return error_response(503, Code.UNAVAILABLE, exc.reason, exc.message)
        except Exception:
            log.exception("readiness check failed")
            return error_response(503, Code.UNAVAILABLE, "NOT_READY", "the store does not answer")
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    def route(path: str, handlers: Mapping[str, Endpoint]) -> Route:
        return Route(path, _dispatch(handlers), methods=_ALL_METHODS)

    routes: list[BaseRoute] = [
        route(PREFIX, {"GET": list_operations, "POST": start}),
        route(PREFIX + ":batchStart", {"POST": batch_start}),
        Route(PREFIX + "/{name}", _guarded(member), methods=_ALL_METHODS),
        route("/openapi.json", {"GET": openapi}),
        route("/healthz", {"GET": healthz}),
        route("/readyz", {"GET": readyz}),
    ]
    if databases is not None:
        routes += database_routes(databases)
    return routes


def _database_parent(databases: DatabaseService, start: StartRequest) -> str:
    """A database operation started without a parent is listed where its server's operations
    are (the server's `parent`), as when a face starts it through DatabaseService."""
    server = start.request.get("server")
    if not start.kind.startswith("db.") or not isinstance(server, str):
        return start.parent
    try:
        return databases.server(server).parent
    except LongrunningError:  # an unknown server: the kind's own check says so
        return start.parent


def database_routes(databases: DatabaseService) -> list[BaseRoute]:
    """Read-only routes: the servers, their databases and their export and backup files."""

    async def list_servers(request: Request) -> Response:
        return JSONResponse({"servers": [codec.server_to_json(s) for s in databases.servers()]})

    async def list_databases(request: Request) -> Response:
        found = await databases.list(request.path_params["server"])
        return JSONResponse({"databases": [codec.database_to_json(db) for db in found]})

    async def get_database(request: Request) -> Response:
        ref = DatabaseRef.checked(request.path_params["server"], request.path_params["database"])
        return JSONResponse(codec.database_to_json(await databases.get(ref)))

    async def list_files(request: Request) -> Response:
        found = await databases.files(request.path_params["server"])
        return JSONResponse({"files": [codec.file_to_json(file) for file in found]})

    def route(path: str, handler: Endpoint) -> Route:
        return Route(path, _dispatch({"GET": handler}), methods=_ALL_METHODS)

    return [
        route(SERVERS, list_servers),
        route(SERVERS + "/{server}/databases", list_databases),
        route(SERVERS + "/{server}/databases/{database}", get_database),
        route(SERVERS + "/{server}/files", list_files),
    ]


async def _events(
    service: OperationService, first: Operation, heartbeat_seconds: float
) -> AsyncIterator[str]:
    """Server-sent events: `operation` per change, `end` once done, a comment while quiet.

    Each round watches for at most one heartbeat interval, so a quiet operation costs one store
    read per interval and no task juggling; a disconnect simply closes this generator.
    """
    yield _event("operation", codec.operation_to_json(first))
    last = first
    try:
        while not last.done:
            quiet = True
            async for op in service.watch(last.id, timeout=heartbeat_seconds):
                if op.version != last.version:
                    last, quiet = op, False
                    yield _event("operation", codec.operation_to_json(op))
            if quiet and not last.done:
                yield ": keep-alive\n\n"
    except LongrunningError as exc:  # e.g. deleted meanwhile: the status line is long gone
        yield _event("error", codec.error_to_json(exc)[1])
        return
    yield _event("end", {"state": last.state.value, "done": last.done})


def _event(name: str, data: JsonObject) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405, in the native error shape. Register it on the app
    with `exception_handlers={HTTPException: http_exception_handler}`."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return _method_not_allowed(request.method, dict.fromkeys(allow.split(", ")))
    if exc.status_code == 404:
        return error_response(
            404, Code.NOT_FOUND, "UNKNOWN_PATH", f"no route for {request.url.path}"
        )
    code = next((c for c, s in HTTP_STATUS.items() if s == exc.status_code), Code.UNKNOWN)
    return error_response(exc.status_code, code, code.name, exc.detail, headers=exc.headers)
