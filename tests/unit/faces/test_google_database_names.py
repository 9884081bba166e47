"""Which Google REST paths are about databases, and how their names decode: beside, never
instead of, the operation paths under the same `/{version}/{name}` route."""

from __future__ import annotations

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.faces.google.database_names import (
    DatabasePath,
    Shape,
    match,
    parse_database_name,
    uri_file,
)

P = "projects/local/locations/local"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"/v1/{P}/servers/local/databases", DatabasePath(Shape.DATABASES, P, "local", None, "")),
        (
            f"/v1/{P}/servers/local/databases:import",
            DatabasePath(Shape.DATABASES, P, "local", None, "import"),
        ),
        (
            f"/v1beta/{P}/servers/local/databases/sales",
            DatabasePath(Shape.DATABASE, P, "local", "sales", ""),
        ),
        (
            f"/v1/{P}/servers/local/databases/sales:export",
            DatabasePath(Shape.DATABASE, P, "local", "sales", "export"),
        ),
        (
            f"/v1/{P}/servers/local/databases/sales/indexes",
            DatabasePath(Shape.INDEXES, P, "local", "sales", ""),
        ),
        # Segments decode one by one: a space, and an encoded ':' that is no verb.
        (
            f"/v1/{P}/servers/local/databases/my%20sales",
            DatabasePath(Shape.DATABASE, P, "local", "my sales", ""),
        ),
        (
            f"/v1/{P}/servers/local/databases/a%3Aexport",
            DatabasePath(Shape.DATABASE, P, "local", "a:export", ""),
        ),
        # An encoded '/' stays inside its segment (and makes an invalid database name later).
        (
            f"/v1/{P}/servers/local/databases/a%2Fb",
            DatabasePath(Shape.DATABASE, P, "local", "a/b", ""),
        ),
        # A database may be called `operations`: no parent has an odd number of segments, so no
        # ListOperations name looks like this.
        (
            f"/v1/{P}/servers/local/databases/operations",
            DatabasePath(Shape.DATABASE, P, "local", "operations", ""),
        ),
        ("/v1/p/x/servers/s/databases", DatabasePath(Shape.DATABASES, "p/x", "s", None, "")),
    ],
)
def test_database_paths(raw: str, expected: DatabasePath) -> None:
    assert match(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        f"/v1/{P}/operations",
        f"/v1/{P}/operations:start",
        f"/v1/{P}/operations/6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22",
        f"/v1/{P}/operations/6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22:cancel",
        "/v1/operations",
        "/v1/operations/6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22",
        # Operations under a database-like parent are still operations.
        f"/v1/{P}/servers/local/databases/sales/operations",
        f"/v1/{P}/servers/local/databases/sales/operations/6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22",
        f"/v1/{P}/servers/local",
        "/v1/servers/local/databases/sales/tables",
        "/v1",
        "/v1/",
    ],
)
def test_operation_and_other_paths_are_not_database_paths(raw: str) -> None:
    assert match(raw) is None


def test_full_database_names() -> None:
    assert parse_database_name(f"{P}/servers/local/databases/sales") == (P, "local", "sales")
    for bad in ("sales", f"{P}/servers/local", f"{P}/servers/local/databases/", "servers/a/b/c"):
        with pytest.raises(InvalidRequest) as error:
            parse_database_name(bad)
        assert error.value.reason == "INVALID_NAME"


@pytest.mark.parametrize(
    ("uri", "file"),
    [
        ("gs://bucket/dumps/sales.sql", "sales.sql"),
        ("https://storage.googleapis.com/b/x%2Dy.sql?X-Goog-Signature=abc", "x-y.sql"),
        ("sales.sql", "sales.sql"),
    ],
)
def test_a_uri_names_its_last_segment(uri: str, file: str) -> None:
    assert uri_file(uri) == file


@pytest.mark.parametrize("uri", ["gs://bucket", "gs://bucket/", "gs://b/x/..", "gs://b/%2E%2E"])
def test_a_uri_without_a_file_name_is_invalid(uri: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        uri_file(uri)
    assert error.value.reason == "INVALID_FILE_NAME"
