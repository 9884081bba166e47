"""DatabaseService: read the databases of the servers a node knows, and start operations on them.

Faces call this for database resources, as they call OperationService for operations. Every
change to a database is an operation, started here with the database as its target.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from longrunning.core.errors import ResourceNotFound
from longrunning.core.operation import Operation
from longrunning.databases import kinds, sqlite_files
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import DatabaseServers, SqliteServer
from longrunning.engine.service import OperationService, StartRequest

DATABASE_IDS = uuid.UUID("5d0c5a43-8e0f-4b4e-9d43-4c6f6e677275")
"""Namespace of the stable UUIDs databases are known by (Azure's databaseId)."""


@dataclass(frozen=True, slots=True)
class Database:
    ref: DatabaseRef
    size_bytes: int
    modified: datetime

    @property
    def database_id(self) -> str:
        return str(uuid.uuid5(DATABASE_IDS, self.ref.target))


class DatabaseService:
    def __init__(self, operations: OperationService, servers: DatabaseServers) -> None:
        self.operations = operations
        self.servers = servers

    def server(self, name: str) -> SqliteServer:
        return self.servers.get(name)

    async def get(self, ref: DatabaseRef) -> Database:
        found = await asyncio.to_thread(sqlite_files.describe, self.servers.path(ref))
        if found is None:
            raise ResourceNotFound(
                f"database {ref.database!r} does not exist on server {ref.server!r}",
                reason="DATABASE_NOT_FOUND",
                metadata={"server": ref.server, "database": ref.database},
            )
        return Database(ref, found.size_bytes, found.modified)

    async def exists(self, ref: DatabaseRef) -> bool:
        try:
            await self.get(ref)
        except ResourceNotFound:
            return False
        return True

    async def list(self, server: str) -> list[Database]:
        names = await asyncio.to_thread(self.server(server).database_names)
        found: list[Database] = []
        for name in names:
            try:
                found.append(await self.get(DatabaseRef(server, name)))
            except ResourceNotFound:  # dropped meanwhile
                continue
        return found

    async def create(
        self,
        ref: DatabaseRef,
        *,
        source: DatabaseRef | None = None,
        request_id: str | None = None,
    ) -> Operation:
        """Start CREATE DATABASE, or DATABASE COPY of `source` (which must exist)."""
        if source is not None:
            await self.get(source)
        return await self._start(
            kinds.COPY if source is not None else kinds.CREATE, ref, source, request_id
        )

    async def drop(self, ref: DatabaseRef, *, request_id: str | None = None) -> Operation:
        return await self._start(kinds.DROP, ref, None, request_id)

    async def _start(
        self, kind: str, ref: DatabaseRef, source: DatabaseRef | None, request_id: str | None
    ) -> Operation:
        started = await self.operations.start(
            StartRequest(
                kind=kind,
                parent=self.server(ref.server).parent,
                request=kinds.database_request(ref, source),
                request_id=request_id,
            )
        )
        return started.operation
