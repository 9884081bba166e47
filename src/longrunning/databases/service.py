"""DatabaseService: read the databases of the servers a node knows, and start operations on them.

Faces and the CLI call this for database resources, as they call OperationService for
operations. Every change to a database is an operation, started here with the database as its
target; the work itself runs in whichever worker claims it (kinds.py, backend.py).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime

from longrunning.core.errors import ResourceNotFound
from longrunning.core.filtering import Comparator, Comparison
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.listing import OperationQuery
from longrunning.core.operation import Operation
from longrunning.databases import kinds
from longrunning.databases.backend import FileInfo, IndexSpec, check_file_name
from longrunning.databases.backends import Backends
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import DatabaseServer, PostgresServer
from longrunning.engine.service import OperationService, StartRequest

DATABASE_IDS = uuid.UUID("5d0c5a43-8e0f-4b4e-9d43-4c6f6e677275")
"""Namespace of the stable UUIDs databases are known by (Azure's databaseId)."""


@dataclass(frozen=True, slots=True)
class Database:
    ref: DatabaseRef
    size_bytes: int
    created: datetime | None
    engine: str = "SQLite"
    """What holds it: `SQLite` or `PostgreSQL` (Azure's sku name)."""

    @property
    def database_id(self) -> str:
        return str(uuid.uuid5(DATABASE_IDS, self.ref.target))


class DatabaseService:
    def __init__(self, operations: OperationService, backends: Backends) -> None:
        self.operations = operations
        self.backends = backends

    def server(self, name: str) -> DatabaseServer:
        return self.backends.get(name).server

    def servers(self) -> builtins.list[DatabaseServer]:
        return [backend.server for backend in self.backends]

    async def get(self, ref: DatabaseRef) -> Database:
        backend = self.backends.get(ref.server)
        backend.check_name(ref.database)
        found = await backend.describe(ref.database)
        if found is None:
            raise ResourceNotFound(
                f"database {ref.database!r} does not exist on server {ref.server!r}",
                reason="DATABASE_NOT_FOUND",
                metadata={"server": ref.server, "database": ref.database},
            )
        engine = "PostgreSQL" if isinstance(backend.server, PostgresServer) else "SQLite"
        return Database(ref, found.size_bytes, found.created, engine)

    async def exists(self, ref: DatabaseRef) -> bool:
        try:
            await self.get(ref)
        except ResourceNotFound:
            return False
        return True

    async def list(self, server: str) -> builtins.list[Database]:
        names = await self.backends.get(server).names()
        found: builtins.list[Database] = []
        for name in names:
            try:
                found.append(await self.get(DatabaseRef(server, name)))
            except ResourceNotFound:  # dropped meanwhile
                continue
        return found

    async def files(self, server: str) -> builtins.list[FileInfo]:
        """The server's export and backup files."""
        return await self.backends.get(server).files()

    async def create(
        self,
        ref: DatabaseRef,
        *,
        source: DatabaseRef | None = None,
        request_id: str | None = None,
    ) -> Operation:
        """Start CREATE DATABASE, or DATABASE COPY of `source` (which must exist)."""
        if source is None:
            return await self._start(kinds.CREATE, ref, request_id)
        if not await self.is_retry(ref, request_id):
            await self.get(source)
        return await self._start(kinds.COPY, ref, request_id, source=kinds.source_field(source))

    async def drop(self, ref: DatabaseRef, *, request_id: str | None = None) -> Operation:
        return await self._start(kinds.DROP, ref, request_id)

    async def backup(
        self, ref: DatabaseRef, file: str, *, request_id: str | None = None
    ) -> Operation:
        await self._existing(ref, request_id)
        return await self._start(kinds.BACKUP, ref, request_id, file=check_file_name(file))

    async def restore(
        self, ref: DatabaseRef, file: str, *, request_id: str | None = None
    ) -> Operation:
        """Start DATABASE RESTORE of backup `file` into the new database `ref`."""
        return await self._start(kinds.RESTORE, ref, request_id, file=check_file_name(file))

    async def export(
        self, ref: DatabaseRef, file: str, *, request_id: str | None = None
    ) -> Operation:
        await self._existing(ref, request_id)
        return await self._start(kinds.EXPORT, ref, request_id, file=check_file_name(file))

    async def import_(
        self, ref: DatabaseRef, file: str, *, request_id: str | None = None
    ) -> Operation:
        """Start IMPORT DATABASE of export `file` into the new database `ref`."""
        return await self._start(kinds.IMPORT, ref, request_id, file=check_file_name(file))

    async def alter(
        self, ref: DatabaseRef, changes: JsonObject, *, request_id: str | None = None
    ) -> Operation:
        await self._existing(ref, request_id)
        return await self._start(kinds.ALTER, ref, request_id, changes=changes)

    async def create_index(
        self, ref: DatabaseRef, index: IndexSpec, *, request_id: str | None = None
    ) -> Operation:
        await self._existing(ref, request_id)
        return await self._start(kinds.INDEX, ref, request_id, index=index.to_json())

    async def is_retry(self, ref: DatabaseRef, request_id: str | None) -> bool:
        """Whether an earlier start already used `request_id` under the server's parent.

        A retry gets the operation it made back (AIP-155), whatever the database's state now,
        so existence checks (NOT_FOUND, ALREADY_EXISTS) must not stand in its way: a retried
        create of a database it made, or drop of one it dropped, is no error.
        """
        if request_id is None:
            return False
        parent = self.server(ref.server).parent
        query = OperationQuery(
            parent=parent,
            filter=Comparison("request_id", Comparator.EQ, request_id),
            page_size=1,
        )
        return bool((await self.operations.list(query)).operations)

    async def _existing(self, ref: DatabaseRef, request_id: str | None) -> None:
        """NOT_FOUND up front for work on a missing database, unless this is a retry."""
        if not await self.is_retry(ref, request_id):
            await self.get(ref)

    async def _start(
        self, kind: str, ref: DatabaseRef, request_id: str | None, **fields: JsonValue
    ) -> Operation:
        started = await self.operations.start(
            StartRequest(
                kind=kind,
                parent=self.server(ref.server).parent,
                request=kinds.database_request(ref, **fields),
                request_id=request_id,
            )
        )
        return started.operation
