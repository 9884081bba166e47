"""The ARM face's pure parts for exports, imports and updates: storage URIs as file names, the
ImportExportOperationResult shape, failures with their ErrorInfo as additionalInfo, and what a
DatabaseUpdate (PATCH) would change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject
from longrunning.core.operation import Failure, State
from longrunning.databases.names import DatabaseRef
from longrunning.databases.service import Database
from longrunning.faces.azure_arm import codec
from longrunning.faces.azure_arm.codec import ArmError
from longrunning.faces.azure_arm.paths import Scope
from longrunning.testing import make_operation

SUB = "00000000-1111-2222-3333-444444444444"
SCOPE = Scope(SUB, "rg")
PREFIX = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Sql"
OP_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"
T0 = datetime(2026, 11, 21, 13, 17, 49, 938257, tzinfo=UTC)
SALES = DatabaseRef("testsvr", "sales")


@pytest.mark.parametrize(
    ("uri", "file"),
    [
        ("https://acct.blob.core.windows.net/bacpacs/sales.bacpac", "sales.bacpac"),
        (
            "https://acct.blob.core.windows.net/bacpacs/sales.bacpac?sv=2024&sig=SECRET",
            "sales.bacpac",
        ),
        (
            "https://acct.blob.core.windows.net/a/b/c/nightly_2026-11-21.sql",
            "nightly_2026-11-21.sql",
        ),
        ("https://acct.blob.core.windows.net/c/caf%C3%A9", None),  # decoded, then not a file name
        ("https://acct.blob.core.windows.net/c/sales%2Ebacpac", "sales.bacpac"),
        ("sales.sql", "sales.sql"),
        ("  https://a/b/x.sql  ", "x.sql"),
    ],
)
def test_a_storage_uri_names_a_file_by_its_last_segment(uri: str, file: str | None) -> None:
    if file is None:
        with pytest.raises(ArmError) as bad:
            codec.storage_file(uri)
        assert (bad.value.status, bad.value.code) == (400, "InvalidStorageUri")
    else:
        assert codec.storage_file(uri) == file


@pytest.mark.parametrize(
    "uri",
    [
        None,
        "",
        "   ",
        42,
        "https://acct.blob.core.windows.net/bacpacs/",
        "https://acct.blob.core.windows.net",
        "https://acct.blob.core.windows.net/c/..",
        "https://acct.blob.core.windows.net/c/%2E%2E%2Fetc%2Fpasswd",
        "https://acct.blob.core.windows.net/c/.hidden",
        "https://acct.blob.core.windows.net/c/x.partial",
        "https://acct.blob.core.windows.net/c/" + "a" * 201,
    ],
)
def test_a_storage_uri_without_a_valid_file_name_is_400_invalid_storage_uri(uri: object) -> None:
    with pytest.raises(ArmError) as bad:
        codec.storage_file(uri)
    assert (bad.value.status, bad.value.code) == (400, "InvalidStorageUri")
    assert "storageUri" in bad.value.message


def test_an_invalid_storage_uri_never_echoes_its_query() -> None:
    with pytest.raises(ArmError) as bad:
        codec.storage_file("https://acct.blob.core.windows.net/c/?sig=SECRET-SAS")
    assert "SECRET" not in bad.value.message


def _export(state: State, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "id": OP_ID,
        "kind": "db.export",
        "state": state,
        "target": SALES.target,
        "request": {"server": "testsvr", "database": "sales", "file": "sales.sql"},
        "create_time": T0,
        "update_time": T0 + timedelta(seconds=3),
    }
    return make_operation(**(fields | changes))


def test_the_import_export_result_of_an_export() -> None:
    assert codec.import_export_result(_export(State.SUCCEEDED), SCOPE, SALES) == {
        "id": f"{PREFIX}/servers/testsvr/databases/sales/importExportOperationResults/{OP_ID}",
        "name": OP_ID,
        "type": "Microsoft.Sql/servers/databases/importExportOperationResults",
        "properties": {
            "requestId": OP_ID,
            "requestType": "Export",
            "queuedTime": "2026-11-21T13:17:49.938Z",
            "lastModifiedTime": "2026-11-21T13:17:52.938Z",
            "blobUri": "sales.sql",
            "serverName": "testsvr",
            "databaseName": "sales",
            "status": "Completed",
            "errorMessage": None,
        },
    }


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (State.PENDING, "Pending"),
        (State.RUNNING, "InProgress"),
        (State.SUCCEEDED, "Completed"),
        (State.FAILED, "Failed"),
        (State.CANCELLED, "Cancelled"),
    ],
)
def test_import_export_statuses(state: State, status: str) -> None:
    op = _export(state, kind="db.import")
    properties = codec.import_export_result(op, SCOPE, SALES)["properties"]
    assert properties["status"] == status and properties["requestType"] == "Import"


def test_a_failed_import_export_carries_its_message() -> None:
    op = _export(State.FAILED, error=Failure(code=Code.NOT_FOUND, message="no file sales.sql"))
    assert codec.import_export_result(op, SCOPE, SALES)["properties"]["errorMessage"] == (
        "no file sales.sql"
    )


ERROR_INFO: JsonObject = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "ENOENT",
    "domain": "longrunning.databases",
    "metadata": {"osError": "ENOENT"},
}


def test_a_failure_shows_its_error_info_as_additional_info() -> None:
    failure = Failure(
        code=Code.NOT_FOUND, message="importing failed: no such file", details=(ERROR_INFO, "x")
    )
    op = _export(State.FAILED, error=failure, end_time=T0 + timedelta(seconds=4))
    assert codec.status_resource(op, SCOPE)["error"] == {
        "code": "NotFound",
        "message": "importing failed: no such file",
        "details": [{"code": "ENOENT", "message": "osError=ENOENT"}],
        "additionalInfo": [
            {
                "type": "ErrorInfo",
                "info": {
                    "reason": "ENOENT",
                    "domain": "longrunning.databases",
                    "metadata": {"osError": "ENOENT"},
                },
            }
        ],
    }
    error = ArmError(404, "NotFound", "x", [], codec.additional_info(failure)).body()["error"]
    assert error["additionalInfo"][0]["info"]["reason"] == "ENOENT"


def test_a_failure_without_error_info_has_no_additional_info() -> None:
    failure = Failure(code=Code.INTERNAL, message="boom")
    assert codec.failure_error(failure) == {"code": "Internal", "message": "boom"}


CURRENT = codec.database_resource(Database(SALES, 8192, T0), SCOPE)


@pytest.mark.parametrize(
    ("body", "changes"),
    [
        ({}, []),
        ({"properties": {}}, []),
        ({"properties": {"maxSizeBytes": None, "collation": "BINARY"}}, []),
        ({"sku": {"name": "SQLite"}, "tags": {}}, []),
        ({"identity": {"type": "None"}}, []),
        ({"properties": {"maxSizeBytes": 1024}}, ["properties.maxSizeBytes"]),
        ({"sku": {"name": "GP_S_Gen5", "capacity": 2}}, ["sku.name", "sku.capacity"]),
        ({"tags": {"env": "dev"}}, ["tags"]),
        ({"identity": {"type": "UserAssigned"}}, ["identity"]),
        ({"properties": {"autoPauseDelay": 60}}, ["properties.autoPauseDelay"]),
    ],
)
def test_what_a_patch_would_change(body: dict[str, Any], changes: list[str]) -> None:
    assert codec.update_changes(body, CURRENT) == changes


def test_a_patch_part_that_is_not_an_object_is_invalid_content() -> None:
    with pytest.raises(ArmError) as bad:
        codec.update_changes({"properties": []}, CURRENT)
    assert (bad.value.status, bad.value.code) == (400, "InvalidRequestContent")
