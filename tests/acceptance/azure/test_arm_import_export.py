"""Microsoft's own azure-mgmt-sql, unmodified, creates, exports, imports and deletes databases end
to end through its pollers against a real server over HTTPS: the export is a SQL dump in the
server's files directory, imports make new databases with the same content, storage keys and
passwords are never stored nor logged; bad requests get ARM errors, failed imports carry theirs."""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.sql import SqlManagementClient
from azure.mgmt.sql.models import (
    Database,
    DatabaseUpdate,
    DatabaseUpdateProperties,
    ExportDatabaseDefinition,
    ImportExistingDatabaseDefinition,
    ImportExportOperationResult,
    ImportNewDatabaseDefinition,
)

from tests.acceptance.azure.conftest import SERVER, SUBSCRIPTION, AzureServer

pytestmark = pytest.mark.acceptance

RG = "rg-io"
STORAGE_KEY = "storage-key-never-stored-5c1e"
PASSWORD = "admin-password-never-stored-93ad"
SAS = "sv=2024-11-04&sig=sas-signature-never-stored-0b7f"
BLOBS = "https://acct.blob.core.windows.net/bacpacs"


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def client(azure_server: AzureServer) -> Iterator[SqlManagementClient]:
    sql = SqlManagementClient(
        StaticCredential(),
        SUBSCRIPTION,
        base_url=azure_server.url,
        connection_verify=str(azure_server.ca),
        retry_total=0,
    )
    with sql:
        yield sql
        # A caught azure-core error keeps its response, and so an open TLS connection, alive in
        # a reference cycle; unless collected, the server's graceful shutdown waits 5 s for it.
        gc.collect()


def _storage(uri: str) -> dict[str, Any]:
    return {
        "storage_key_type": "StorageAccessKey",
        "storage_key": STORAGE_KEY,
        "storage_uri": uri,
        "administrator_login": "admin",
        "administrator_login_password": PASSWORD,
        "authentication_type": "Sql",
    }


def _content(conn: sqlite3.Connection) -> dict[str, Any]:
    """Schema and every row, comparable across databases."""
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    tables = [name for kind, name, _ in schema if kind == "table"]
    rows = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}
    return {"schema": schema, "rows": rows}


def _content_of(path: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return _content(conn)


def _fill(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo BLOB);
            CREATE INDEX customers_by_name ON customers (name);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, total REAL);
            """
        )
        conn.executemany(
            "INSERT INTO customers (name, photo) VALUES (?, ?)",
            [("Zoë O'Brien", b"\x00\xff"), ("Bob; DROP TABLE orders;--", None), ("李", b"")],
        )
        conn.executemany(
            "INSERT INTO orders (customer, total) VALUES (?, ?)",
            [(i % 3 + 1, i * 1.5) for i in range(200)],
        )
        conn.commit()


def test_create_export_import_and_delete_end_to_end_through_pollers(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    client.databases.begin_create_or_update(
        RG, SERVER, "io-source", Database(location="local")
    ).result(timeout=60)
    source = azure_server.server_dir / "io-source.sqlite3"
    _fill(source)
    expected = _content_of(source)

    exporting = client.databases.begin_export(
        RG,
        SERVER,
        "io-source",
        ExportDatabaseDefinition(**_storage(f"{BLOBS}/io-source.bacpac?{SAS}")),
    )
    exported = exporting.result(timeout=60)
    assert exporting.status() == "Succeeded"
    assert isinstance(exported, ImportExportOperationResult)
    assert exported.properties is not None
    assert exported.properties.status == "Completed"
    assert exported.properties.request_type == "Export"
    assert exported.properties.database_name == "io-source"
    assert exported.properties.server_name == SERVER
    assert exported.properties.blob_uri == "io-source.bacpac"
    assert exported.name == exported.properties.request_id
    # The export is a SQL dump that sqlite3 itself reads back to the same content.
    dump = (azure_server.files_dir / "io-source.bacpac").read_text()
    with contextlib.closing(sqlite3.connect(":memory:")) as memory:
        memory.executescript(dump)
        assert _content(memory) == expected

    new = client.servers.begin_import_database(
        RG,
        SERVER,
        ImportNewDatabaseDefinition(
            database_name="io-imported", **_storage(f"{BLOBS}/io-source.bacpac")
        ),
    ).result(timeout=60)
    assert new.properties is not None and new.properties.request_type == "Import"
    assert new.properties.status == "Completed" and new.properties.database_name == "io-imported"
    assert _content_of(azure_server.server_dir / "io-imported.sqlite3") == expected

    into = client.databases.begin_import_method(
        RG,
        SERVER,
        "io-into",
        ImportExistingDatabaseDefinition(**_storage(f"{BLOBS}/io-source.bacpac")),
    ).result(timeout=60)
    assert into.properties is not None and into.properties.database_name == "io-into"
    assert _content_of(azure_server.server_dir / "io-into.sqlite3") == expected
    assert client.databases.get(RG, SERVER, "io-into").status == "Online"

    friendly = {
        op.operation_friendly_name: op.state
        for op in client.database_operations.list_by_database(RG, SERVER, "io-source")
    }
    assert friendly == {"CREATE DATABASE": "Succeeded", "EXPORT DATABASE": "Succeeded"}

    for name in ("io-source", "io-imported", "io-into"):
        deleting = client.databases.begin_delete(RG, SERVER, name)
        assert deleting.result(timeout=60) is None and deleting.status() == "Succeeded"
        assert not (azure_server.server_dir / f"{name}.sqlite3").exists()

    # Storage keys, passwords and SAS tokens are read for nothing and kept nowhere.
    with azure_server.native() as native:
        stored = native.get(f"/api/v1/operations/{exported.name}").json()
    assert stored["request"] == {
        "server": SERVER,
        "database": "io-source",
        "file": "io-source.bacpac",
    }
    for log in ("serve.log", "worker.log"):
        text = (azure_server.server_dir.parent / log).read_text()
        assert STORAGE_KEY not in text and PASSWORD not in text and "sas-signature" not in text


def test_export_and_import_errors_are_arm_errors(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    client.databases.begin_create_or_update(
        RG, SERVER, "io-errors", Database(location="local")
    ).result(timeout=60)

    with pytest.raises(HttpResponseError) as bad_uri:
        client.databases.begin_export(
            RG, SERVER, "io-errors", ExportDatabaseDefinition(**_storage(f"{BLOBS}/"))
        )
    assert bad_uri.value.status_code == 400
    assert bad_uri.value.error is not None and bad_uri.value.error.code == "InvalidStorageUri"

    with pytest.raises(ResourceNotFoundError) as missing:
        client.databases.begin_export(
            RG, SERVER, "io-nowhere", ExportDatabaseDefinition(**_storage(f"{BLOBS}/x.bacpac"))
        )
    assert missing.value.error is not None and missing.value.error.code == "DatabaseDoesNotExist"

    with pytest.raises(ResourceExistsError) as exists:  # azure-core's name for every 409
        client.databases.begin_import_method(
            RG,
            SERVER,
            "io-errors",
            ImportExistingDatabaseDefinition(**_storage(f"{BLOBS}/x.bacpac")),
        )
    assert exists.value.error is not None and exists.value.error.code == "DatabaseAlreadyExists"

    with pytest.raises(HttpResponseError) as unnamed:
        client.servers.begin_import_database(
            RG, SERVER, ImportNewDatabaseDefinition(**_storage(f"{BLOBS}/x.bacpac"))
        )
    assert unnamed.value.status_code == 400
    assert unnamed.value.error is not None and unnamed.value.error.code == "InvalidParameterValue"

    # A file that is not there fails the import itself: the poller raises the structured error.
    importing = client.servers.begin_import_database(
        RG,
        SERVER,
        ImportNewDatabaseDefinition(
            database_name="io-from-nothing", **_storage(f"{BLOBS}/no-such-file.bacpac")
        ),
    )
    with pytest.raises(HttpResponseError) as failed:
        importing.result(timeout=60)
    assert importing.status() == "Failed"
    error = failed.value.error
    assert error is not None and error.code == "NotFound" and "no-such-file" in str(error.message)
    assert failed.value.response is not None
    status = json.loads(failed.value.response.text())  # the status monitor's, as ARM tools read it
    (info,) = status["error"]["additionalInfo"]  # the database layer's ErrorInfo, as it made it
    assert info["type"] == "ErrorInfo" and info["info"]["domain"] == "longrunning.databases"
    assert [detail.code for detail in error.details] == [info["info"]["reason"]]
    assert not (azure_server.server_dir / "io-from-nothing.sqlite3").exists()


def test_update_changes_nothing_and_pause_is_refused(
    client: SqlManagementClient, azure_server: AzureServer
) -> None:
    created = client.databases.begin_create_or_update(
        RG, SERVER, "io-patch", Database(location="local")
    ).result(timeout=60)

    same = client.databases.begin_update(RG, SERVER, "io-patch", DatabaseUpdate()).result(
        timeout=30
    )
    assert same.name == "io-patch" and same.database_id == created.database_id
    assert len(list(client.database_operations.list_by_database(RG, SERVER, "io-patch"))) == 1

    with pytest.raises(HttpResponseError) as change:
        client.databases.begin_update(
            RG,
            SERVER,
            "io-patch",
            DatabaseUpdate(properties=DatabaseUpdateProperties(max_size_bytes=1 << 30)),
        )
    assert change.value.status_code == 400
    assert change.value.error is not None
    assert change.value.error.code == "PropertyChangeNotAllowed"
    assert "properties.maxSizeBytes" in str(change.value.error.message)

    with pytest.raises(HttpResponseError) as pause:
        client.databases.begin_pause(RG, SERVER, "io-patch")
    assert pause.value.status_code == 400
    assert pause.value.error is not None and pause.value.error.code == "OperationNotSupported"
    with pytest.raises(ResourceNotFoundError):
        client.databases.begin_resume(RG, SERVER, "io-no-such-database")
