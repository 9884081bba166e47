"""The database servers' part of the native API's OpenAPI document (openapi.py merges it in):
the read-only routes of servers, databases and files, and their schemas. Data only.
"""

from __future__ import annotations

from typing import Any

_TIME = {"type": "string", "format": "date-time"}
_ERROR_REF = {"$ref": "#/components/responses/Error"}
_SERVER = {
    "name": "server",
    "in": "path",
    "required": True,
    "description": "A database server's name, as the node's servers file declares it.",
    "schema": {"type": "string", "examples": ["local"]},
}


def _listing(key: str, schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": [key],
                    "properties": {
                        key: {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                }
            }
        },
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _ERROR_REF for status in statuses}


SERVER_SCHEMAS: dict[str, Any] = {
    "Server": {
        "type": "object",
        "required": ["name", "kind", "parent"],
        "properties": {
            "name": {"type": "string", "examples": ["local"]},
            "kind": {"type": "string", "enum": ["sqlite", "postgresql"]},
            "parent": {
                "type": "string",
                "description": "Where its database operations are listed.",
                "examples": ["projects/local/locations/local"],
            },
        },
    },
    "Database": {
        "type": "object",
        "required": ["name", "server", "sizeBytes", "createTime", "databaseId"],
        "properties": {
            "name": {"type": "string", "examples": ["sales"]},
            "server": {"type": "string", "examples": ["local"]},
            "sizeBytes": {"type": "integer", "minimum": 0},
            "createTime": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "When it was made, where the server knows (null otherwise).",
            },
            "databaseId": {
                "type": "string",
                "format": "uuid",
                "description": "Stable for the same server and name.",
            },
        },
    },
    "File": {
        "type": "object",
        "required": ["name", "sizeBytes", "modifyTime"],
        "properties": {
            "name": {"type": "string", "examples": ["sales.sql"]},
            "sizeBytes": {"type": "integer", "minimum": 0},
            "modifyTime": _TIME,
        },
    },
}

SERVER_PATHS: dict[str, Any] = {
    "/api/v1/servers": {
        "get": {
            "operationId": "listServers",
            "summary": "The database servers this node manages. Start work on their databases "
            "with `POST /api/v1/operations` and a `db.*` kind (see docs/reference/databases.md).",
            "responses": {"200": _listing("servers", "Server", "Every server, by name.")},
        }
    },
    "/api/v1/servers/{server}/databases": {
        "parameters": [_SERVER],
        "get": {
            "operationId": "listDatabases",
            "summary": "A server's databases, by name.",
            "responses": {
                "200": _listing("databases", "Database", "Every database."),
                **_errors(404),
            },
        },
    },
    "/api/v1/servers/{server}/databases/{database}": {
        "parameters": [
            _SERVER,
            {
                "name": "database",
                "in": "path",
                "required": True,
                "description": "The database's name (percent-encoded in the path).",
                "schema": {"type": "string"},
            },
        ],
        "get": {
            "operationId": "getDatabase",
            "summary": "One database.",
            "responses": {
                "200": {
                    "description": "The database.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Database"}}
                    },
                },
                **_errors(400, 404),
            },
        },
    },
    "/api/v1/servers/{server}/files": {
        "parameters": [_SERVER],
        "get": {
            "operationId": "listFiles",
            "summary": "A server's export and backup files, by name.",
            "responses": {"200": _listing("files", "File", "Every file."), **_errors(404)},
        },
    },
}
