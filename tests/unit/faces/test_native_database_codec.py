"""The native codec's database shapes: servers without their DSN or directory, databases with a
stable id and a null createTime when unknown, and files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from longrunning.databases.backend import FileInfo
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import PostgresServer, SqliteServer
from longrunning.databases.service import Database
from longrunning.faces.native import codec

T0 = datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC)


def test_servers_say_their_kind_and_parent_never_where_they_are() -> None:
    sqlite = SqliteServer(name="local", directory=Path("/srv/db"), files=Path("/srv/f"))
    postgres = PostgresServer(
        name="pg", dsn="postgresql://admin:secret@db/postgres", files=Path("/f"), parent="p/x"
    )
    assert codec.server_to_json(sqlite) == {
        "name": "local",
        "kind": "sqlite",
        "parent": "projects/local/locations/local",
    }
    assert codec.server_to_json(postgres) == {"name": "pg", "kind": "postgresql", "parent": "p/x"}


def test_databases_and_files() -> None:
    ref = DatabaseRef("local", "sales")
    body = codec.database_to_json(Database(ref, 8192, T0))
    assert body == {
        "name": "sales",
        "server": "local",
        "sizeBytes": 8192,
        "createTime": "2026-11-21T10:00:00.500000Z",
        "databaseId": Database(ref, 0, None).database_id,
    }
    assert codec.database_to_json(Database(ref, 0, None))["createTime"] is None
    assert codec.file_to_json(FileInfo("sales.sql", 12, T0)) == {
        "name": "sales.sql",
        "sizeBytes": 12,
        "modifyTime": "2026-11-21T10:00:00.500000Z",
    }
