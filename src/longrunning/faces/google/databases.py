"""The database methods of the Google face (AIP-131 to 136), over DatabaseService: names and
bodies checked, resources shaped as Google JSON, and every change started as an operation that
the transport returns as a google.longrunning.Operation. No HTTP here (rest.py routes).

    GetDatabase      GET    {db}                            a Database
    ListDatabases    GET    {server}/databases              pageSize, pageToken
    CreateDatabase   POST   {server}/databases?databaseId=  {} or {"sourceDatabase": "{db}"}
    DeleteDatabase   DELETE {db}
    ExportDatabase   POST   {db}:export                     {"file": "x.sql"} or {"uri": "…/x.sql"}
    BackupDatabase   POST   {db}:backup                     {"file"} or {"uri"}
    AlterDatabase    POST   {db}:alter                      {"changes": {...}}
    CreateIndex      POST   {db}/indexes?indexId=           {"table", "columns", "unique"}
    ImportDatabase   POST   {server}/databases:import       {"databaseId", "file" or "uri"}
    RestoreDatabase  POST   {server}/databases:restore      {"databaseId", "file" or "uri"}

({server} is `{parent}/servers/{server}`.) Every change takes `requestId` (AIP-155) as a query
parameter. A Database is `{"name", "uid", "sizeBytes", "createTime"}`; sizeBytes is an int64,
so a string in JSON.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from longrunning.core.errors import InvalidRequest, ResourceExists, ResourceNotFound
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.operation import Operation
from longrunning.core.timestamps import format_timestamp
from longrunning.databases.backend import IndexSpec
from longrunning.databases.names import DatabaseRef, check_server_name
from longrunning.databases.service import Database, DatabaseService
from longrunning.faces.google.database_names import (
    DatabasePath,
    database_name,
    parse_database_name,
    uri_file,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_SYSTEM_PARAMS = frozenset(
    {"alt", "prettyPrint", "fields", "key", "quotaUser", "callback", "access_token"}
)


class GoogleDatabases:
    def __init__(self, databases: DatabaseService) -> None:
        self.databases = databases

    # Reads ----------------------------------------------------------------------------------

    async def get(self, path: DatabasePath, params: Mapping[str, str]) -> JsonObject:
        _params(params, set())
        ref = self._ref(path)
        return database_json(await self.databases.get(ref), path.parent)

    async def list(self, path: DatabasePath, params: Mapping[str, str]) -> JsonObject:
        given = _params(params, {"pageSize", "pageToken"})
        server = self._server(path.parent, path.server)
        size = _page_size(given.get("pageSize", "0"))
        after = _token_name(given.get("pageToken", ""))
        listed = sorted(await self.databases.list(server), key=lambda db: db.ref.database)
        found = [db for db in listed if db.ref.database > after]
        body: JsonObject = {"databases": [database_json(db, path.parent) for db in found[:size]]}
        if len(found) > size:
            body["nextPageToken"] = _token(found[size - 1].ref.database)
        return body

    # Changes --------------------------------------------------------------------------------

    async def create(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"databaseId", "requestId"})
        _fields(body, {"sourceDatabase"})
        database = given.get("databaseId")
        if not database:
            raise InvalidRequest(
                "databaseId is required: the new database's id", reason="MISSING_FIELD"
            )
        ref = DatabaseRef.checked(self._server(path.parent, path.server), database)
        await self._absent(ref, given.get("requestId"))
        source = None
        if "sourceDatabase" in body:
            source_name = body["sourceDatabase"]
            if not isinstance(source_name, str):
                raise InvalidRequest(
                    "sourceDatabase must be a database name", reason="INVALID_FIELD"
                )
            parent, server, source_database = parse_database_name(source_name)
            source = DatabaseRef.checked(self._server(parent, server), source_database)
        return await self.databases.create(ref, source=source, request_id=given.get("requestId"))

    async def delete(self, path: DatabasePath, params: Mapping[str, str]) -> Operation:
        given = _params(params, {"requestId"})
        ref = self._ref(path)
        if not await self.databases.is_retry(ref, given.get("requestId")):
            await self.databases.get(ref)  # AIP-135: NOT_FOUND for a database that is not there
        return await self.databases.drop(ref, request_id=given.get("requestId"))

    async def export(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"requestId"})
        _fields(body, {"file", "uri"})
        return await self.databases.export(
            self._ref(path), _file(body), request_id=given.get("requestId")
        )

    async def backup(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"requestId"})
        _fields(body, {"file", "uri"})
        return await self.databases.backup(
            self._ref(path), _file(body), request_id=given.get("requestId")
        )

    async def import_(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"requestId"})
        ref, file = await self._new_from_file(path, body, given.get("requestId"))
        return await self.databases.import_(ref, file, request_id=given.get("requestId"))

    async def restore(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"requestId"})
        ref, file = await self._new_from_file(path, body, given.get("requestId"))
        return await self.databases.restore(ref, file, request_id=given.get("requestId"))

    async def alter(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"requestId"})
        _fields(body, {"changes"})
        changes = body.get("changes")
        if not isinstance(changes, dict) or not changes:
            raise InvalidRequest(
                'changes is required: an object of changes, e.g. {"vacuum": true}',
                reason="MISSING_FIELD",
            )
        return await self.databases.alter(
            self._ref(path), changes, request_id=given.get("requestId")
        )

    async def create_index(
        self, path: DatabasePath, params: Mapping[str, str], body: JsonObject
    ) -> Operation:
        given = _params(params, {"indexId", "requestId"})
        _fields(body, {"table", "columns", "unique"})
        index_id = given.get("indexId")
        if not index_id:
            raise InvalidRequest("indexId is required: the index's name", reason="MISSING_FIELD")
        index = IndexSpec.from_json({**body, "name": index_id})
        return await self.databases.create_index(
            self._ref(path), index, request_id=given.get("requestId")
        )

    # Names ----------------------------------------------------------------------------------

    def _server(self, parent: str, server: str) -> str:
        """A server of this node under `parent`; NOT_FOUND if it is not there."""
        check_server_name(server)
        if self.databases.server(server).parent != parent:
            raise ResourceNotFound(
                f"server {parent}/servers/{server} does not exist",
                reason="SERVER_NOT_FOUND",
                metadata={"server": server, "parent": parent},
            )
        return server

    def _ref(self, path: DatabasePath) -> DatabaseRef:
        assert path.database is not None  # a one-database shape, by the route
        return DatabaseRef.checked(self._server(path.parent, path.server), path.database)

    async def _absent(self, ref: DatabaseRef, request_id: str | None) -> None:
        """AIP-133: ALREADY_EXISTS up front, unless this is a retry of the start that made it."""
        if await self.databases.exists(ref) and not await self.databases.is_retry(ref, request_id):
            raise ResourceExists(
                f"database {ref.database!r} already exists on server {ref.server!r}",
                reason="DATABASE_ALREADY_EXISTS",
                metadata={"server": ref.server, "database": ref.database},
            )

    async def _new_from_file(
        self, path: DatabasePath, body: JsonObject, request_id: str | None
    ) -> tuple[DatabaseRef, str]:
        _fields(body, {"databaseId", "file", "uri"})
        database = body.get("databaseId")
        if not isinstance(database, str) or not database:
            raise InvalidRequest(
                "databaseId is required: the new database's id", reason="MISSING_FIELD"
            )
        ref = DatabaseRef.checked(self._server(path.parent, path.server), database)
        file = _file(body)
        await self._absent(ref, request_id)
        return ref, file


def database_json(db: Database, parent: str) -> JsonObject:
    body: JsonObject = {
        "name": database_name(parent, db.ref),
        "uid": db.database_id,
        "sizeBytes": str(db.size_bytes),
    }
    if db.created is not None:
        body["createTime"] = format_timestamp(db.created)
    return body


def _params(params: Mapping[str, str], allowed: set[str]) -> dict[str, str]:
    """The query parameters a method takes; Google's system parameters are ignored."""
    given: dict[str, str] = {}
    for key, value in params.items():
        if key in allowed:
            given[key] = value
        elif key.removeprefix("$") not in _SYSTEM_PARAMS:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidRequest(
                f"unknown query parameter {key[:60]!r}; known: {known}",
                reason="UNKNOWN_PARAMETER",
                metadata={"parameter": key[:60]},
            )
    return given


def _fields(body: JsonObject, allowed: set[str]) -> None:
    unknown = sorted(key for key in body if key not in allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}",
            reason="UNKNOWN_FIELD",
            metadata={"fields": ",".join(unknown)},
        )


def _file(body: JsonObject) -> str:
    """`file`, a file name of the server's files directory, or `uri`, whose last segment is."""
    file: JsonValue = body.get("file")
    uri: JsonValue = body.get("uri")
    if (file is None) == (uri is None):
        raise InvalidRequest(
            "give either file (a file name of the server's files directory) or uri",
            reason="MISSING_FIELD",
        )
    if isinstance(file, str):
        return file  # checked where the operation starts
    if isinstance(uri, str):
        return uri_file(uri)
    raise InvalidRequest("file and uri must be strings", reason="INVALID_FIELD")


def _page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise InvalidRequest(
            f"pageSize must be an integer, not {text[:40]!r}", reason="INVALID_PAGE_SIZE"
        ) from None
    if size < 0:
        raise InvalidRequest("pageSize must not be negative", reason="INVALID_PAGE_SIZE")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode()


def _token_name(token: str) -> str:
    """The last database name of the previous page; names sort, so the next page follows it."""
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidRequest("pageToken is not valid", reason="INVALID_PAGE_TOKEN") from None
