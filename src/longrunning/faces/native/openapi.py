"""The hand-written OpenAPI 3.1 document of the native HTTP API, as a plain dict (the database
servers' routes come from openapi_servers.py).

Describe here what rest.py and codec.py do; no code that serves or validates anything.
"""

from __future__ import annotations

from typing import Any

from longrunning.faces.native.openapi_servers import SERVER_PATHS, SERVER_SCHEMAS

_TIME = {"type": "string", "format": "date-time"}
_ERROR_REF = {"$ref": "#/components/responses/Error"}
_OPERATION_OK = {
    "description": "The operation.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Operation"}}},
}
_OPERATION_ID = {
    "name": "operationId",
    "in": "path",
    "required": True,
    "description": "The operation's id, a lowercase UUID.",
    "schema": {"type": "string", "format": "uuid"},
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _ERROR_REF for status in statuses}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_OPERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "name",
        "parent",
        "kind",
        "title",
        "state",
        "done",
        "cancellable",
        "cancelRequested",
        "progress",
        "metadata",
        "request",
        "createTime",
        "updateTime",
        "attempt",
        "maxAttempts",
        "labels",
        "queue",
        "version",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string", "description": "`{parent}/operations/{id}`"},
        "parent": {"type": "string", "examples": ["projects/local/locations/local"]},
        "kind": {"type": "string", "examples": ["demo.sleep"]},
        "title": {
            "type": "string",
            "description": "What it does, for people (its kind's title, else the kind).",
            "examples": ["CREATE DATABASE"],
        },
        "state": {"$ref": "#/components/schemas/State"},
        "done": {"type": "boolean", "description": "True in the three terminal states."},
        "cancellable": {"type": "boolean", "description": "Whether it may be cancelled running."},
        "cancelRequested": {"type": "boolean"},
        "cancelRequestTime": _TIME,
        "cancelOutcome": {"$ref": "#/components/schemas/CancelOutcome"},
        "progress": {"$ref": "#/components/schemas/Progress"},
        "metadata": {"type": "object"},
        "request": {"type": "object", "description": "The parameters it was started with."},
        "result": {"description": "What the handler returned; present exactly when SUCCEEDED."},
        "error": {"$ref": "#/components/schemas/Failure"},
        "createTime": _TIME,
        "updateTime": _TIME,
        "startTime": _TIME,
        "endTime": _TIME,
        "attempt": {"type": "integer", "minimum": 0},
        "maxAttempts": {"type": "integer", "minimum": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "requestId": {"type": "string"},
        "target": {"type": "string"},
        "queue": {"type": "string"},
        "deadline": _TIME,
        "version": {"type": "integer", "description": "Grows by one at every change."},
    },
}

_SCHEMAS: dict[str, Any] = {
    "State": {
        "type": "string",
        "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
    },
    "CancelOutcome": {
        "type": "string",
        "description": "How an operation whose cancel was requested actually ended.",
        "enum": [
            "NOT_STARTED",
            "STOPPED_COOPERATIVELY",
            "INTERRUPTED",
            "KILLED",
            "WORKER_LOST",
            "COMPLETED_BEFORE_CANCEL",
        ],
    },
    "Progress": {
        "type": "object",
        "required": ["percent"],
        "properties": {
            "percent": {"type": "number", "minimum": 0, "maximum": 100},
            "phase": {"type": "string"},
            "estimatedCompletionTime": _TIME,
        },
    },
    "Failure": {
        "type": "object",
        "required": ["code", "status", "message", "details", "severity", "isUserError"],
        "properties": {
            "code": {"type": "integer", "description": "google.rpc.Code number."},
            "status": {"type": "string", "description": "google.rpc.Code name."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {}},
            "severity": {"type": "integer"},
            "isUserError": {"type": "boolean"},
        },
    },
    "Operation": _OPERATION_SCHEMA,
    "StartRequest": {
        "type": "object",
        "required": ["kind"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "examples": ["demo.sleep"]},
            "parent": {"type": "string", "default": "projects/local/locations/local"},
            "request": {"type": "object", "examples": [{"duration_seconds": 5}]},
            "requestId": {
                "type": "string",
                "description": "Idempotency key: a retry with the same parameters returns the "
                "same operation (200); other parameters are refused (409 REQUEST_ID_REUSED).",
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "target": {"type": "string"},
            "queue": {"type": "string", "default": "default"},
            "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
        },
    },
    "OperationList": {
        "type": "object",
        "required": ["operations"],
        "properties": {
            "operations": {"type": "array", "items": {"$ref": "#/components/schemas/Operation"}},
            "nextPageToken": {"type": "string", "description": "Absent on the last page."},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "status", "reason", "message"],
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status."},
                    "status": {"type": "string", "description": "google.rpc.Code name."},
                    "reason": {"type": "string", "examples": ["OPERATION_NOT_FOUND"]},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string", "const": "ok"}}},
    **SERVER_SCHEMAS,
}

_PATHS: dict[str, Any] = {
    "/api/v1/operations": {
        "get": {
            "operationId": "listOperations",
            "summary": "List operations, newest first unless orderBy says otherwise.",
            "parameters": [
                _query("parent", "Only operations under exactly this parent.", {"type": "string"}),
                _query("filter", "AIP-160 filter, e.g. `state=RUNNING`.", {"type": "string"}),
                _query(
                    "pageSize",
                    "At most this many (default 50, max 1000).",
                    {"type": "integer", "minimum": 0},
                ),
                _query("pageToken", "nextPageToken of the previous page.", {"type": "string"}),
                _query(
                    "orderBy",
                    "`create_time desc` (default) or `create_time asc`.",
                    {
                        "type": "string",
                        "enum": ["create_time desc", "create_time asc", "create_time"],
                    },
                ),
            ],
            "responses": {
                "200": {
                    "description": "One page of operations.",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/OperationList"}
                        }
                    },
                },
                **_errors(400),
            },
        },
        "post": {
            "operationId": "startOperation",
            "summary": "Start an operation.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/StartRequest"}}
                },
            },
            "responses": {
                "201": {
                    **_OPERATION_OK,
                    "description": "Started.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "200": {**_OPERATION_OK, "description": "The earlier start of this requestId."},
                **_errors(400, 409, 413, 415),
            },
        },
    },
    "/api/v1/operations:batchStart": {
        "post": {
            "operationId": "batchStartOperations",
            "summary": "Start 1 to 1000 operations, all or none, in one store transaction. A bad "
            "request fails the batch and its message names its position (requests[i]).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["requests"],
                            "additionalProperties": False,
                            "properties": {
                                "requests": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 1000,
                                    "items": {"$ref": "#/components/schemas/StartRequest"},
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "The operations, in request order (an earlier start of a "
                    "requestId gives that operation).",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/OperationList"}
                        }
                    },
                },
                **_errors(400, 409, 413, 415),
            },
        },
    },
    "/api/v1/operations/{operationId}": {
        "parameters": [_OPERATION_ID],
        "get": {
            "operationId": "getOperation",
            "summary": "Get an operation.",
            "responses": {"200": _OPERATION_OK, **_errors(400, 404)},
        },
        "delete": {
            "operationId": "deleteOperation",
            "summary": "Forget a finished operation (a live one must be cancelled first).",
            "responses": {"204": {"description": "Deleted."}, **_errors(400, 404)},
        },
    },
    "/api/v1/operations/{operationId}:cancel": {
        "parameters": [_OPERATION_ID],
        "post": {
            "operationId": "cancelOperation",
            "summary": "Request cancellation; returns at once with the operation as it is now "
            "(a running one may still be RUNNING with cancelRequested). No-op when done.",
            "responses": {"200": _OPERATION_OK, **_errors(400, 404)},
        },
    },
    "/api/v1/operations/{operationId}:wait": {
        "parameters": [_OPERATION_ID],
        "post": {
            "operationId": "waitOperation",
            "summary": "Return once the operation is done, or as it is when the timeout passes.",
            "parameters": [
                _query(
                    "timeout",
                    "Seconds: `30`, `30s` or `1.5s`; default 30s, capped at 300s.",
                    {"type": "string", "pattern": r"^(\d+(\.\d*)?|\.\d+)s?$"},
                ),
            ],
            "responses": {"200": _OPERATION_OK, **_errors(400, 404)},
        },
    },
    "/api/v1/operations/{operationId}:watch": {
        "parameters": [_OPERATION_ID],
        "get": {
            "operationId": "watchOperation",
            "summary": "Server-sent events: `operation` (data: Operation JSON) now and at every "
            "change, then `end` once done; `: keep-alive` comments while quiet.",
            "responses": {
                "200": {
                    "description": "An event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(400, 404),
            },
        },
    },
    **SERVER_PATHS,
    "/healthz": {
        "get": {
            "operationId": "health",
            "summary": "Liveness: always ok while the process serves.",
            "responses": {
                "200": {
                    "description": "Alive.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                    },
                }
            },
        }
    },
    "/readyz": {
        "get": {
            "operationId": "ready",
            "summary": "Readiness: ok when the store answers.",
            "responses": {
                "200": {
                    "description": "Ready.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                    },
                },
                **_errors(503),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1 JSON."}},
        }
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "longrunning native API",
        "version": "1",
        "description": "Start, track, wait for, watch and truthfully cancel long-running "
        "operations. Every error has the shape of the Error schema.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "responses": {
            "Error": {
                "description": "An error; `reason` is stable and machine-readable.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    },
}
