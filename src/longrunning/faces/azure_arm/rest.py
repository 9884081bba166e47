"""ARM routes under `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql`:

    GET    …/servers/{server}/databases/{db}/operations                       list_by_database
    POST   …/servers/{server}/databases/{db}/operations/{operationId}/cancel  cancel (200 only)
    GET    …/servers/{server}/operations                                      list_by_server
    GET    …/servers/{server}/databases                                       databases
    PUT    …/servers/{server}/databases/{db}        begin_create_or_update (Default or Copy)
    GET    …/servers/{server}/databases/{db}        get
    DELETE …/servers/{server}/databases/{db}        begin_delete
    GET    …/locations/{loc}/databaseAzureAsyncOperation/{operationId}        status monitor
    GET    …/locations/{loc}/databaseOperationResults/{operationId}           result location

Every request needs a supported `api-version`. The `Authorization: Bearer` header azure-core
sends is accepted and never logged (tokens are checked once authentication exists). Routing and
I/O only: shapes live in `codec`, names in `paths`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import InvalidRequest, LongrunningError, OperationNotFound
from longrunning.core.filtering import Comparator, Comparison, Filter, Or
from longrunning.core.listing import build_query
from longrunning.core.operation import Operation
from longrunning.databases import kinds
from longrunning.databases.names import DatabaseRef, check_server_name, server_target
from longrunning.databases.service import DatabaseService
from longrunning.engine.service import OperationService
from longrunning.faces.azure_arm import codec
from longrunning.faces.azure_arm.codec import ArmError, Json
from longrunning.faces.azure_arm.paths import ArmPath, PathNotFound, Scope, check_uuid, parse

log = logging.getLogger("longrunning.faces.azure_arm")

API_VERSIONS = frozenset(
    {
        "2017-10-01-preview",
        "2020-11-01-preview",
        "2021-02-01-preview",
        "2021-11-01",
        "2022-05-01-preview",
        "2023-05-01-preview",
        "2023-08-01",
        "2024-05-01-preview",
        "2025-01-01",
        "2026-08-01-preview",
    }
)
"""The Microsoft.Sql versions with these operations; azure-mgmt-sql 4.0.0 sends 2025-01-01."""
PAGE_SIZE = 50
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _Call:
    """One request: its parsed path, and the headers every ARM response carries."""

    def __init__(self, request: Request, path: ArmPath) -> None:
        self.request = request
        self.path = path
        self.scope: Scope = path.scope
        self.api_version = request.query_params.get("api-version", "")
        self.correlation = request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())

    def reply(
        self, status: int, body: Json | None, *, request_id: str | None = None, **headers: str
    ) -> Response:
        return _reply(status, body, request_id=request_id, correlation=self.correlation, **headers)

    def url(self, path: str, **query: str) -> str:
        """An absolute URL on this server (ARM clients follow links verbatim)."""
        base = str(self.request.base_url).rstrip("/")
        return f"{base}{path}?{urlencode({'api-version': self.api_version, **query})}"


def _reply(
    status: int,
    body: Json | None,
    *,
    request_id: str | None = None,
    correlation: str | None = None,
    **headers: str,
) -> Response:
    content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    all_headers = {
        "x-ms-request-id": request_id or str(uuid.uuid4()),
        "x-ms-correlation-request-id": correlation or str(uuid.uuid4()),
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    media = "application/json; charset=utf-8" if body is not None else None
    return Response(content, status_code=status, headers=all_headers, media_type=media)


class ArmFace:
    def __init__(
        self,
        operations: OperationService,
        databases: DatabaseService,
        *,
        retry_after: int,
        max_body_bytes: int,
    ) -> None:
        self.operations = operations
        self.databases = databases
        self.retry_after = retry_after
        self.max_body_bytes = max_body_bytes
        Handler = Callable[[_Call], Awaitable[Response]]
        self.routes: dict[tuple[str, tuple[str, ...]], Handler] = {
            ("GET", ("servers", "*", "databases", "*", "operations")): self.list_by_database,
            ("POST", ("servers", "*", "databases", "*", "operations", "*", "cancel")): self.cancel,
            ("GET", ("servers", "*", "operations")): self.list_by_server,
            ("GET", ("servers", "*", "databases")): self.list_databases,
            ("PUT", ("servers", "*", "databases", "*")): self.create_database,
            ("GET", ("servers", "*", "databases", "*")): self.get_database,
            ("DELETE", ("servers", "*", "databases", "*")): self.delete_database,
            ("GET", ("locations", "*", "databaseazureasyncoperation", "*")): self.status,
            ("GET", ("locations", "*", "databaseoperationresults", "*")): self.result,
        }

    async def dispatch(self, request: Request) -> Response:
        correlation = request.headers.get("x-ms-client-request-id")
        try:
            segments = [s for s in str(request.scope["path"]).split("/")[2:] if s]
            try:
                path = parse(segments)
                shape = path.shape()
                handler = self.routes.get((request.method, shape))
                if handler is None:
                    if any(shape == known for _, known in self.routes):
                        raise ArmError(
                            405, "MethodNotAllowed", f"{request.method} is not allowed here"
                        )
                    raise PathNotFound
            except PathNotFound:
                raise ArmError(
                    404,
                    "InvalidResourceType",
                    f"no resource type of Microsoft.Sql matches {request.url.path}",
                ) from None
            call = _Call(request, path)
            _check_api_version(call.api_version)
            return await handler(call)
        except ArmError as exc:
            return _reply(exc.status, exc.body(), correlation=correlation)
        except LongrunningError as exc:
            error = codec.from_error(exc)
            if error.status >= 500:
                log.warning("ARM %s %s failed: %s", request.method, request.url.path, exc)
            return _reply(error.status, error.body(), correlation=correlation)

    # Operations ---------------------------------------------------------------------------

    async def list_by_database(self, call: _Call) -> Response:
        ref = self._database(call)
        return await self._list(
            call, _equals(ref.target), lambda op: codec.database_operation(op, call.scope, ref)
        )

    async def list_by_server(self, call: _Call) -> Response:
        server = self._server(call)
        prefix = server_target(server)
        within = Or((_equals(prefix), _equals(f"{prefix}/*")))
        return await self._list(
            call, within, lambda op: codec.server_operation(op, call.scope, server)
        )

    async def _list(
        self, call: _Call, within: Filter, shape: Callable[[Operation], Json]
    ) -> Response:
        query = build_query(
            page_size=PAGE_SIZE,
            page_token=call.request.query_params.get("$skiptoken") or None,
            within=within,
        )
        page = await self.operations.list(query)
        body: Json = {"value": [shape(op) for op in page.operations]}
        if page.next_page_token:
            body["nextLink"] = call.url(
                call.request.url.path, **{"$skiptoken": page.next_page_token}
            )
        return call.reply(200, body)

    async def cancel(self, call: _Call) -> Response:
        ref = self._database(call)
        op_id = check_uuid(call.path.rest[5], "operation id", reason="InvalidIdentifier").lower()
        op = await self._operation_of(op_id, ref.target)
        if not codec.is_cancellable(op) and not (op.cancel_requested and not op.done):
            raise ArmError(
                409,
                "CannotCancelOperation",
                f"The management operation {op_id} is in a state that cannot be cancelled "
                f"({codec.operation_state(op)}).",
            )
        await self.operations.cancel(op_id)
        return call.reply(200, None)

    async def _operation_of(self, op_id: str, target: str | None) -> Operation:
        """The operation, if it works on `target` (None: any); else OperationIdNotFound."""
        try:
            op = await self.operations.get(op_id)
        except OperationNotFound:
            op = None
        if op is None or (target is not None and op.target != target):
            raise ArmError(
                404, "OperationIdNotFound", f"The operation with Id {op_id} does not exist."
            )
        return op

    # Databases ----------------------------------------------------------------------------

    async def list_databases(self, call: _Call) -> Response:
        server = self._server(call)
        found = await self.databases.list(server)
        return call.reply(200, {"value": [codec.database_resource(db, call.scope) for db in found]})

    async def get_database(self, call: _Call) -> Response:
        db = await self.databases.get(self._database(call))
        return call.reply(200, codec.database_resource(db, call.scope))

    async def create_database(self, call: _Call) -> Response:
        ref = self._database(call)
        body = await self._json_body(call.request)
        source = self._copy_source(body)
        if await self.databases.exists(ref):
            # Nothing about a database can be updated yet: the PUT is done as it stands.
            db = await self.databases.get(ref)
            return call.reply(200, codec.database_resource(db, call.scope))
        op = await self.databases.create(ref, source=source)
        return self._accepted(call, op, 202)

    async def delete_database(self, call: _Call) -> Response:
        ref = self._database(call)
        if not await self.databases.exists(ref):
            return call.reply(204, None)
        return self._accepted(call, await self.databases.drop(ref), 202)

    def _accepted(self, call: _Call, op: Operation, status: int) -> Response:
        """The start of an ARM asynchronous operation, named by the operation's own id."""
        base = f"{call.scope.prefix}/locations/{codec.LOCATION}"
        return call.reply(
            status,
            codec.accepted_body(op),
            request_id=op.id,
            Azure_AsyncOperation=call.url(f"{base}/databaseAzureAsyncOperation/{op.id}"),
            Location=call.url(f"{base}/databaseOperationResults/{op.id}"),
            Retry_After=str(self.retry_after),
        )

    # Asynchronous operations ----------------------------------------------------------------

    async def status(self, call: _Call) -> Response:
        op = await self._operation_of(self._operation_id(call), None)
        headers = {} if op.done else {"Retry_After": str(self.retry_after)}
        return call.reply(200, codec.status_resource(op, call.scope), **headers)

    async def result(self, call: _Call) -> Response:
        """202 while the operation runs; then what it made (200), nothing (204), or its error."""
        op = await self._operation_of(self._operation_id(call), None)
        if not op.done:
            return call.reply(
                202, None, Location=str(call.request.url), Retry_After=str(self.retry_after)
            )
        status = codec.status_resource(op, call.scope)
        if "error" in status:
            error = status["error"]
            code = 409 if op.error is None else codec.from_error_code(op.error.code)
            raise ArmError(code, error["code"], error["message"])
        ref = DatabaseRef.from_target(op.target)
        if op.kind in (kinds.CREATE, kinds.COPY) and ref is not None:
            db = await self.databases.get(ref)
            return call.reply(200, codec.database_resource(db, call.scope))
        return call.reply(204, None)

    # Request parts --------------------------------------------------------------------------

    def _server(self, call: _Call) -> str:
        name = call.path.rest[1]
        try:
            check_server_name(name.lower())
        except InvalidRequest as exc:
            raise ArmError(400, "InvalidIdentifier", exc.message) from None
        server = name.lower()  # ARM names of servers are case-insensitive, stored lowercase
        self.databases.server(server)
        return server

    def _database(self, call: _Call) -> DatabaseRef:
        server = self._server(call)
        return DatabaseRef.checked(server, call.path.rest[3])

    def _operation_id(self, call: _Call) -> str:
        return check_uuid(call.path.rest[3], "operation id", reason="InvalidIdentifier").lower()

    def _copy_source(self, body: Json) -> DatabaseRef | None:
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise ArmError(400, "InvalidRequestContent", "properties must be an object")
        mode = str(properties.get("createMode") or "Default")
        if mode.lower() == "default":
            return None
        if mode.lower() != "copy":
            raise ArmError(
                400,
                "InvalidParameterValue",
                f"createMode {mode!r} is not supported: Default or Copy",
            )
        source_id = properties.get("sourceDatabaseId")
        segments = [s for s in str(source_id or "").split("/") if s]
        try:
            if not segments or segments[0].lower() != "subscriptions":
                raise PathNotFound
            source = parse(segments[1:])
            if source.shape() != ("servers", "*", "databases", "*"):
                raise PathNotFound
        except (PathNotFound, InvalidRequest):
            raise ArmError(
                400,
                "InvalidParameterValue",
                "createMode Copy needs sourceDatabaseId, the resource id of a database",
            ) from None
        return DatabaseRef.checked(source.rest[1].lower(), source.rest[3])

    async def _json_body(self, request: Request) -> Json:
        try:
            raw = await request.body()
        except ClientDisconnect:
            raise ArmError(400, "InvalidRequestContent", "the request body was cut off") from None
        if len(raw) > self.max_body_bytes:
            raise ArmError(413, "RequestEntityTooLarge", "the request body is too large")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "the body must be a JSON object")
        return body


def _equals(target: str) -> Comparison:
    return Comparison("target", Comparator.EQ, target)


def _check_api_version(version: str) -> None:
    if not version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in API_VERSIONS:
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(sorted(API_VERSIONS))}'.",
        )


def arm_routes(
    operations: OperationService,
    databases: DatabaseService,
    *,
    retry_after: int = 1,
    max_body_bytes: int = 1_048_576,
) -> list[BaseRoute]:
    face = ArmFace(operations, databases, retry_after=retry_after, max_body_bytes=max_body_bytes)
    return [Route("/subscriptions/{rest:path}", face.dispatch, methods=_METHODS)]
