"""The database operation kinds: CREATE DATABASE, DATABASE COPY and DROP DATABASE.

Built per node around its servers (`database_kinds`), because the worker that runs an operation
resolves the server's name to its own files. Requests name databases, never paths:
`{"server": "local", "database": "sales"}`, plus `"source": {"server", "database"}` for a copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.databases import sqlite_files
from longrunning.databases.names import DatabaseRef
from longrunning.databases.servers import DatabaseServers
from longrunning.engine.context import OperationContext
from longrunning.engine.kinds import OperationKind

CREATE = "db.create"
COPY = "db.copy"
DROP = "db.drop"


def ref_of(request: JsonObject, key: str | None = None) -> DatabaseRef:
    """The database a request (or its `key` member, e.g. the copy's source) names."""
    where = "request" if key is None else f"request.{key}"
    value = request if key is None else request.get(key)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must name a server and a database", reason="INVALID_REQUEST")
    server, database = value.get("server"), value.get("database")
    if not isinstance(server, str) or not isinstance(database, str):
        raise InvalidRequest(
            f"{where}.server and {where}.database must be strings", reason="INVALID_REQUEST"
        )
    return DatabaseRef.checked(server, database)


def database_request(ref: DatabaseRef, source: DatabaseRef | None = None) -> JsonObject:
    request: JsonObject = {"server": ref.server, "database": ref.database}
    if source is not None:
        request["source"] = {"server": source.server, "database": source.database}
    return request


def database_kinds(servers: DatabaseServers) -> tuple[OperationKind, ...]:
    def validate(allowed: set[str]) -> Callable[[JsonObject], None]:
        def check(request: JsonObject) -> None:
            unknown = set(request) - allowed
            if unknown:
                raise InvalidRequest(
                    f"unknown request field {sorted(unknown)[0]!r}", reason="INVALID_REQUEST"
                )
            servers.get(ref_of(request).server)
            if "source" in allowed:
                servers.get(ref_of(request, "source").server)

        return check

    def target(request: JsonObject) -> str:
        return ref_of(request).target

    def create(ctx: OperationContext) -> JsonValue:
        ref = ref_of(ctx.request)
        ctx.report_progress(0, phase="creating the file")
        sqlite_files.create_empty(servers.path(ref), ref.database)
        ctx.report_progress(100, phase="created")
        return {"server": ref.server, "database": ref.database}

    def copy(ctx: OperationContext) -> JsonValue:
        ref, source = ref_of(ctx.request), ref_of(ctx.request, "source")
        server = servers.get(ref.server)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            ctx.checkpoint()
            fraction = done / total if total else 1.0
            elapsed = time.monotonic() - started
            eta = None
            if 0 < fraction < 1:
                eta = datetime.now(UTC) + timedelta(seconds=elapsed * (1 - fraction) / fraction)
            ctx.report_progress(100 * fraction, phase=f"copied {done} of {total} pages", eta=eta)

        def pause(seconds: float) -> None:
            end = time.monotonic() + seconds
            while not ctx.cancel_requested and (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 0.01))

        pages = sqlite_files.copy(
            servers.path(source),
            server.path(ref.database),
            ref.database,
            pages_per_step=server.copy_pages_per_step,
            pause_seconds=server.copy_step_pause_seconds,
            progress=progress,
            pause=pause,
        )
        return {"server": ref.server, "database": ref.database, "pages": pages}

    def drop(ctx: OperationContext) -> JsonValue:
        ref = ref_of(ctx.request)
        sqlite_files.drop(servers.path(ref), ref.database)
        return {"server": ref.server, "database": ref.database}

    return (
        OperationKind(
            name=CREATE,
            handler=create,
            title="CREATE DATABASE",
            description="Create an empty database.",
            validate=validate({"server", "database"}),
            target=target,
        ),
        OperationKind(
            name=COPY,
            handler=copy,
            title="DATABASE COPY",
            description="Copy a live database into a new one, page by page.",
            validate=validate({"server", "database", "source"}),
            target=target,
        ),
        OperationKind(
            name=DROP,
            handler=drop,
            title="DROP DATABASE",
            description="Drop a database.",
            cancellable=False,
            validate=validate({"server", "database"}),
            target=target,
        ),
    )
