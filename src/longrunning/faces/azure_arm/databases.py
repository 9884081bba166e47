"""ARM database routes under `S = /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql`:

    GET    S/servers/{server}/databases                 databases.list_by_server
    PUT    S/servers/{server}/databases/{db}            databases.begin_create_or_update
    GET    S/servers/{server}/databases/{db}            databases.get
    PATCH  S/servers/{server}/databases/{db}            databases.begin_update (no changes only)
    DELETE S/servers/{server}/databases/{db}            databases.begin_delete
    POST   S/servers/{server}/databases/{db}/export     databases.begin_export
    POST   S/servers/{server}/databases/{db}/import     databases.begin_import_method
    POST   S/servers/{server}/import                    servers.begin_import_database
    POST   S/servers/{server}/databases/{db}/pause      databases.begin_pause (400: always online)
    POST   S/servers/{server}/databases/{db}/resume     databases.begin_resume (400: always online)

Every change starts a database operation (DatabaseService) and answers ARM's 202; the pollers
then follow the routes in rest.py. Request bodies may hold storage keys and passwords: only the
storage URI's file name is read from them, and nothing of them is logged or stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from longrunning.core.errors import InvalidRequest, ResourceExists
from longrunning.databases.names import DatabaseRef, check_server_name
from longrunning.databases.service import DatabaseService
from longrunning.faces.azure_arm import codec
from longrunning.faces.azure_arm.calls import Call
from longrunning.faces.azure_arm.codec import ArmError, Json
from longrunning.faces.azure_arm.paths import PathNotFound, parse

Handler = Callable[[Call], Awaitable[Response]]
Routes = dict[tuple[str, tuple[str, ...]], Handler]

_DATABASE = ("servers", "*", "databases", "*")


class ArmDatabases:
    def __init__(
        self, databases: DatabaseService, *, retry_after: int, max_body_bytes: int
    ) -> None:
        self.databases = databases
        self.retry_after = retry_after
        self.max_body_bytes = max_body_bytes

    def routes(self) -> Routes:
        return {
            ("GET", ("servers", "*", "databases")): self.list_databases,
            ("PUT", _DATABASE): self.create_database,
            ("GET", _DATABASE): self.get_database,
            ("PATCH", _DATABASE): self.update_database,
            ("DELETE", _DATABASE): self.delete_database,
            ("POST", (*_DATABASE, "export")): self.export_database,
            ("POST", (*_DATABASE, "import")): self.import_into,
            ("POST", ("servers", "*", "import")): self.import_new,
            ("POST", (*_DATABASE, "pause")): self.pause_or_resume,
            ("POST", (*_DATABASE, "resume")): self.pause_or_resume,
        }

    # Names ---------------------------------------------------------------------------------

    def server(self, call: Call) -> str:
        name = call.path.rest[1]
        try:
            check_server_name(name.lower())
        except InvalidRequest as exc:
            raise ArmError(400, "InvalidIdentifier", exc.message) from None
        server = name.lower()  # ARM names of servers are case-insensitive, stored lowercase
        self.databases.server(server)
        return server

    def database(self, call: Call) -> DatabaseRef:
        server = self.server(call)
        return DatabaseRef.checked(server, call.path.rest[3])

    # Routes --------------------------------------------------------------------------------

    async def list_databases(self, call: Call) -> Response:
        found = await self.databases.list(self.server(call))
        return call.reply(200, {"value": [codec.database_resource(db, call.scope) for db in found]})

    async def get_database(self, call: Call) -> Response:
        db = await self.databases.get(self.database(call))
        return call.reply(200, codec.database_resource(db, call.scope))

    async def create_database(self, call: Call) -> Response:
        ref = self.database(call)
        source = _copy_source(await call.json_body(self.max_body_bytes))
        if await self.databases.exists(ref):
            # Nothing about a database can be changed by a PUT: it is done as it stands.
            db = await self.databases.get(ref)
            return call.reply(200, codec.database_resource(db, call.scope))
        op = await self.databases.create(ref, source=source)
        return call.accepted(op, self.retry_after)

    async def update_database(self, call: Call) -> Response:
        """A PATCH that changes nothing is done at once (200); no property can change yet."""
        ref = self.database(call)
        body = await call.json_body(self.max_body_bytes)
        current = codec.database_resource(await self.databases.get(ref), call.scope)
        changes = codec.update_changes(body, current)
        if changes:
            raise ArmError(
                400,
                "PropertyChangeNotAllowed",
                f"cannot change {', '.join(changes)} of database {ref.database!r}: no property "
                "of a database on this server can be changed",
            )
        return call.reply(200, current)

    async def delete_database(self, call: Call) -> Response:
        ref = self.database(call)
        if not await self.databases.exists(ref):
            return call.reply(204, None)
        return call.accepted(await self.databases.drop(ref), self.retry_after)

    async def export_database(self, call: Call) -> Response:
        ref = self.database(call)
        body = await call.json_body(self.max_body_bytes)
        file = codec.storage_file(body.get("storageUri"))
        return call.accepted(await self.databases.export(ref, file), self.retry_after)

    async def import_into(self, call: Call) -> Response:
        """Import into `{db}`, a new database: an existing one, even empty, is 409."""
        ref = self.database(call)
        body = await call.json_body(self.max_body_bytes)
        return await self._import(call, ref, codec.storage_file(body.get("storageUri")))

    async def import_new(self, call: Call) -> Response:
        server = self.server(call)
        body = await call.json_body(self.max_body_bytes)
        name = body.get("databaseName")
        if not isinstance(name, str) or not name:
            raise ArmError(
                400, "InvalidParameterValue", "databaseName is required: the new database's name"
            )
        ref = DatabaseRef.checked(server, name)
        return await self._import(call, ref, codec.storage_file(body.get("storageUri")))

    async def _import(self, call: Call, ref: DatabaseRef, file: str) -> Response:
        if await self.databases.exists(ref):
            raise ResourceExists(
                f"database {ref.database!r} exists on server {ref.server!r}: an import makes a "
                "new database; import under another name, or delete it first",
                reason="RESOURCE_EXISTS",
                metadata={"server": ref.server, "database": ref.database},
            )
        return call.accepted(await self.databases.import_(ref, file), self.retry_after)

    async def pause_or_resume(self, call: Call) -> Response:
        ref = self.database(call)
        await self.databases.get(ref)
        raise ArmError(
            400,
            "OperationNotSupported",
            f"database {ref.database!r} is always online: {call.path.rest[4].lower()} is not "
            "supported on this server",
        )


def _copy_source(body: Json) -> DatabaseRef | None:
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
        if source.shape() != _DATABASE:
            raise PathNotFound
    except (PathNotFound, InvalidRequest):
        raise ArmError(
            400,
            "InvalidParameterValue",
            "createMode Copy needs sourceDatabaseId, the resource id of a database",
        ) from None
    return DatabaseRef.checked(source.rest[1].lower(), source.rest[3])
