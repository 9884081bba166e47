"""The classic (RDFE, Service Management) "Database Operation Status" API over Starlette:

    GET /{subscriptionId}/services/sqlservers/servers/{serverName}/databaseoperations/{guid}
    GET /{subscriptionId}/services/sqlservers/servers/{serverName}/databaseoperations
        ?databaseName={name}         that database's operations
        ?contentview=generic         every operation on the server

Parse and check each request, call OperationService, answer through the codec. Every answer,
refusals included, is XML with an `x-ms-request-id`. Requests are never logged with their
headers: a classic client may send credentials in them.
"""

from __future__ import annotations

import logging
import uuid

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import InvalidRequest, LongrunningError, OperationNotFound
from longrunning.core.filtering import Comparator, Comparison, Filter, Or
from longrunning.core.listing import MAX_PAGE_SIZE, build_query
from longrunning.core.operation import Operation
from longrunning.databases.names import DatabaseRef, check_server_name
from longrunning.engine.service import OperationService
from longrunning.faces.azure_classic import codec
from longrunning.faces.azure_classic.codec import ServerScope

log = logging.getLogger("longrunning.faces.azure_classic")

MAX_LISTED = 1000
"""The classic API has no paging: a list holds at most this many operations, newest first."""
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_HEADERS = {
    "Cache-Control": "no-store, no-cache",
    "X-Content-Type-Options": "nosniff",
}


class _Refusal(Exception):
    """A refusal with its own RDFE code, which no canonical code implies."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _xml(body: str, status: int = 200) -> Response:
    return Response(body.encode(), status, media_type=codec.CONTENT_TYPE)


def _not_found(what: str) -> _Refusal:
    return _Refusal(404, "ResourceNotFound", f"The requested {what} was not found.")


def _parse_path(subscription: str, rest: str) -> tuple[ServerScope, str | None]:
    """The scope and the operation GUID (None for a list) of `.../servers/{s}/databaseoperations
    [/{guid}]`. Empty segments are dropped: the legacy client sends `servers//{name}`."""
    segments = [segment for segment in rest.split("/") if segment]
    shape = [segment.lower() for segment in segments[::2]]
    if len(segments) not in (3, 4) or shape[:2] != ["servers", "databaseoperations"]:
        raise _not_found("resource")
    scope = ServerScope(
        codec.check_guid(subscription, "subscription id"),
        # Azure server names are lowercase and looked up regardless of case.
        check_server_name(segments[1].lower()),
    )
    if len(segments) == 3:
        return scope, None
    return scope, codec.check_guid(segments[3], "operation id")


async def _listed(service: OperationService, within: Filter) -> list[Operation]:
    """Up to MAX_LISTED operations matching `within`, newest first, over as many pages as the
    service hands out."""
    found: list[Operation] = []
    token: str | None = None
    while len(found) < MAX_LISTED:
        query = build_query(
            page_size=min(MAX_LISTED - len(found), MAX_PAGE_SIZE), page_token=token, within=within
        )
        page = await service.list(query)
        found.extend(page.operations)
        token = page.next_page_token
        if not token:
            break
    return found[:MAX_LISTED]


def _list_filter(scope: ServerScope, request: Request) -> Filter:
    # ASP.NET reads query parameters regardless of the case of their names.
    params = {key.lower(): value for key, value in request.query_params.items()}
    database = params.get("databasename")
    if database is not None:
        ref = DatabaseRef.checked(scope.server, database)
        return Comparison("target", Comparator.EQ, ref.target)
    if params.get("contentview", "").lower() == "generic":
        return Or(
            (
                Comparison("target", Comparator.EQ, scope.target),
                Comparison("target", Comparator.EQ, scope.target + "/*"),
            )
        )
    raise InvalidRequest(
        "List database operations with ?databaseName={name} for one database, or with "
        "?contentview=generic for the whole server.",
        reason="MISSING_PARAMETER",
    )


def classic_routes(service: OperationService) -> list[BaseRoute]:
    """The routes of the classic database-operation status API."""

    async def answer(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise _Refusal(
                405,
                "MethodNotAllowed",
                f"The method {request.method} is not allowed here; allowed: GET, HEAD.",
            )
        if not codec.supported_version(request.headers.get("x-ms-version")):
            raise _Refusal(
                400,
                "MissingOrIncorrectVersionHeader",
                "The versioning header is not specified or was specified incorrectly: send "
                f"x-ms-version {codec.MIN_VERSION.isoformat()} or later.",
            )
        scope, op_id = _parse_path(request.path_params["subscription"], request.path_params["rest"])
        if op_id is None:
            ops = await _listed(service, _list_filter(scope, request))
            return _xml(codec.service_resources(ops, scope))
        try:
            op = await service.get(op_id)
        except OperationNotFound:
            raise _not_found(f"database operation {op_id}") from None
        if not scope.holds(op):  # another server's operation does not exist on this one
            raise _not_found(f"database operation {op_id}")
        return _xml(codec.service_resource(op, scope))

    async def endpoint(request: Request) -> Response:
        try:
            response = await answer(request)
        except _Refusal as exc:
            response = _xml(codec.error_xml(exc.code, exc.message), exc.status)
            if exc.status == 405:
                response.headers["Allow"] = "GET, HEAD"
        except LongrunningError as exc:
            status, body = codec.error_for(exc)
            response = _xml(body, status)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            response = _xml(codec.error_xml("InternalError", "internal error; see server log"), 500)
        response.headers.update(_HEADERS)
        response.headers["x-ms-request-id"] = uuid.uuid4().hex
        return response

    return [Route("/{subscription}/services/sqlservers/{rest:path}", endpoint, methods=_METHODS)]
