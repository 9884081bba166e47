"""ARM routes under `S = /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql`: the
operations and the asynchronous-operation pattern here, the databases in databases.py.

    GET    S/servers/{server}/databases/{db}/operations                       list_by_database
    POST   S/servers/{server}/databases/{db}/operations/{operationId}/cancel  cancel (200 only)
    GET    S/servers/{server}/operations                                      list_by_server
    GET    S/locations/{loc}/databaseAzureAsyncOperation/{operationId}        status monitor
    GET    S/locations/{loc}/databaseOperationResults/{operationId}           result location

Every request needs a supported `api-version`. The `Authorization: Bearer` header azure-core
sends is accepted and never logged (tokens are checked once authentication exists). Routing and
I/O only: shapes live in `codec`, names in `paths`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from longrunning.core.errors import LongrunningError, OperationNotFound
from longrunning.core.filtering import Comparator, Comparison, Filter, Or
from longrunning.core.listing import build_query
from longrunning.core.operation import Operation
from longrunning.databases import kinds
from longrunning.databases.names import DatabaseRef, server_target
from longrunning.databases.service import DatabaseService
from longrunning.engine.service import OperationService
from longrunning.faces.azure_arm import codec
from longrunning.faces.azure_arm.calls import Call, reply
from longrunning.faces.azure_arm.codec import ArmError, Json
from longrunning.faces.azure_arm.databases import ArmDatabases, Routes
from longrunning.faces.azure_arm.paths import PathNotFound, check_uuid, parse

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
        self.arm_databases = ArmDatabases(
            databases, retry_after=retry_after, max_body_bytes=max_body_bytes
        )
        self.routes: Routes = {
            ("GET", ("servers", "*", "databases", "*", "operations")): self.list_by_database,
            ("POST", ("servers", "*", "databases", "*", "operations", "*", "cancel")): self.cancel,
            ("GET", ("servers", "*", "operations")): self.list_by_server,
            ("GET", ("locations", "*", "databaseazureasyncoperation", "*")): self.status,
            ("GET", ("locations", "*", "databaseoperationresults", "*")): self.result,
            **self.arm_databases.routes(),
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
            call = Call(request, path)
            _check_api_version(call.api_version)
            return await handler(call)
        except ArmError as exc:
            return reply(exc.status, exc.body(), correlation=correlation)
        except LongrunningError as exc:
            error = codec.from_error(exc)
            if error.status >= 500:
                log.warning("ARM %s %s failed: %s", request.method, request.url.path, exc)
            return reply(error.status, error.body(), correlation=correlation)

    # Operations ---------------------------------------------------------------------------

    async def list_by_database(self, call: Call) -> Response:
        ref = self.arm_databases.database(call)
        return await self._list(
            call, _equals(ref.target), lambda op: codec.database_operation(op, call.scope, ref)
        )

    async def list_by_server(self, call: Call) -> Response:
        server = self.arm_databases.server(call)
        prefix = server_target(server)
        within = Or((_equals(prefix), _equals(f"{prefix}/*")))
        return await self._list(
            call, within, lambda op: codec.server_operation(op, call.scope, server)
        )

    async def _list(
        self, call: Call, within: Filter, shape: Callable[[Operation], Json]
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

    async def cancel(self, call: Call) -> Response:
        ref = self.arm_databases.database(call)
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

    # Asynchronous operations ----------------------------------------------------------------

    async def status(self, call: Call) -> Response:
        op = await self._operation_of(self._operation_id(call), None)
        headers = {} if op.done else {"Retry_After": str(self.retry_after)}
        return call.reply(200, codec.status_resource(op, call.scope), **headers)

    async def result(self, call: Call) -> Response:
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
            raise ArmError(
                code,
                error["code"],
                error["message"],
                error.get("details", []),
                error.get("additionalInfo", []),
            )
        ref = DatabaseRef.from_target(op.target)
        if ref is None:
            return call.reply(204, None)
        if op.kind in (kinds.EXPORT, kinds.IMPORT):
            return call.reply(200, codec.import_export_result(op, call.scope, ref))
        if op.kind in (kinds.CREATE, kinds.COPY, kinds.RESTORE):
            db = await self.databases.get(ref)
            return call.reply(200, codec.database_resource(db, call.scope))
        return call.reply(204, None)

    def _operation_id(self, call: Call) -> str:
        return check_uuid(call.path.rest[3], "operation id", reason="InvalidIdentifier").lower()


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
