"""Backends: the backend of every server a node knows, by server name."""

from __future__ import annotations

from collections.abc import Iterator

from longrunning.databases.backend import DatabaseBackend
from longrunning.databases.postgres_backend import PostgresBackend
from longrunning.databases.servers import DatabaseServers, PostgresServer, SqliteServer
from longrunning.databases.sqlite_backend import SqliteBackend


class Backends:
    def __init__(self, servers: DatabaseServers) -> None:
        self.servers = servers
        self._by_name: dict[str, DatabaseBackend] = {}
        for server in servers:
            match server:
                case SqliteServer():
                    self._by_name[server.name] = SqliteBackend(server)
                case PostgresServer():
                    self._by_name[server.name] = PostgresBackend(server)

    def get(self, server: str) -> DatabaseBackend:
        """Raises ResourceNotFound (SERVER_NOT_FOUND) for a server this node does not know."""
        return self._by_name[self.servers.get(server).name]

    def __iter__(self) -> Iterator[DatabaseBackend]:
        return (self._by_name[server.name] for server in self.servers)
