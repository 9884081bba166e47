"""The database operation kinds: CREATE DATABASE, DROP DATABASE, DATABASE COPY, BACKUP DATABASE,
DATABASE RESTORE, EXPORT DATABASE, IMPORT DATABASE, ALTER DATABASE and CREATE INDEX.

Built per node around its servers (`database_kinds`), because the worker that runs an operation
resolves the server's name to its own backend. Here only requests are parsed and checked; the
work is the backend's (backend.py). Requests name databases and files, never paths:

    {"server": "local", "database": "sales"}                    db.create, db.drop
    {... , "source": {"server": "local", "database": "orders"}}  db.copy (same server)
    {... , "file": "sales.sql"}             db.export, db.backup (from), db.import, db.restore (to)
    {... , "changes": {"vacuum": true}}     db.alter (what a backend supports: its check_alter)
    {... , "index": {"name", "table", "columns", "unique"}}     db.index
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.databases.backend import DatabaseBackend, IndexSpec, check_file_name
from longrunning.databases.backends import Backends
from longrunning.databases.names import DatabaseRef
from longrunning.engine.context import OperationContext
from longrunning.engine.kinds import OperationKind

CREATE = "db.create"
DROP = "db.drop"
COPY = "db.copy"
BACKUP = "db.backup"
RESTORE = "db.restore"
EXPORT = "db.export"
IMPORT = "db.import"
ALTER = "db.alter"
INDEX = "db.index"

_CLEANUP_GRACE_SECONDS = 60.0
"""Cooperative grace for database work: a cancelled PostgreSQL build may need pg_cancel_backend,
pg_terminate_backend after the server's grace, and a DROP INDEX before it has stopped cleanly."""


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


def file_of(request: JsonObject) -> str:
    file = request.get("file")
    if not isinstance(file, str):
        raise InvalidRequest("request.file must be a file name", reason="INVALID_REQUEST")
    return check_file_name(file)


def changes_of(request: JsonObject) -> JsonObject:
    changes = request.get("changes")
    if not isinstance(changes, dict) or not changes:
        raise InvalidRequest(
            "request.changes must be an object with at least one change", reason="INVALID_REQUEST"
        )
    return changes


def database_request(ref: DatabaseRef, **fields: JsonValue) -> JsonObject:
    request: JsonObject = {"server": ref.server, "database": ref.database}
    request.update(fields)
    return request


def source_field(source: DatabaseRef) -> JsonObject:
    return {"server": source.server, "database": source.database}


Work = Callable[[DatabaseBackend, DatabaseRef, OperationContext], Awaitable[JsonObject]]


def database_kinds(backends: Backends) -> tuple[OperationKind, ...]:
    def checker(extra: str | None) -> Callable[[JsonObject], None]:
        allowed = {"server", "database"} | ({extra} if extra else set())

        def check(request: JsonObject) -> None:
            unknown = set(request) - allowed
            if unknown:
                raise InvalidRequest(
                    f"unknown request field {sorted(unknown)[0]!r}", reason="INVALID_REQUEST"
                )
            ref = ref_of(request)
            backend = backends.get(ref.server)
            backend.check_name(ref.database)
            if extra == "source":
                source = ref_of(request, "source")
                backends.get(source.server)
                if source.server != ref.server:
                    raise InvalidRequest(
                        "a copy must stay on its server: request.source.server must be "
                        f"{ref.server!r}",
                        reason="CROSS_SERVER_COPY",
                    )
            elif extra == "file":
                file_of(request)
            elif extra == "changes":
                backend.check_alter(changes_of(request))
            elif extra == "index":
                IndexSpec.from_json(request.get("index"))

        return check

    def target(request: JsonObject) -> str:
        return ref_of(request).target

    def kind(
        name: str, title: str, description: str, extra: str | None, work: Work, **rules: object
    ) -> OperationKind:
        async def handler(ctx: OperationContext) -> JsonValue:
            ref = ref_of(ctx.request)
            result = await work(backends.get(ref.server), ref, ctx)
            return {"server": ref.server, "database": ref.database, **result}

        handler.__name__ = handler.__qualname__ = name.replace(".", "_")
        return OperationKind(
            name=name,
            handler=handler,
            title=title,
            description=description,
            validate=checker(extra),
            target=target,
            cooperative_grace_seconds=_CLEANUP_GRACE_SECONDS,
            **rules,  # type: ignore[arg-type]
        )

    return (
        kind(
            CREATE,
            "CREATE DATABASE",
            "Create an empty database.",
            None,
            lambda b, ref, ctx: b.create(ctx, ref.database),
        ),
        kind(
            DROP,
            "DROP DATABASE",
            "Drop a database.",
            None,
            lambda b, ref, ctx: b.drop(ctx, ref.database),
            cancellable=False,
        ),
        kind(
            COPY,
            "DATABASE COPY",
            "Copy a live database into a new one on the same server.",
            "source",
            lambda b, ref, ctx: b.copy(ctx, ref_of(ctx.request, "source").database, ref.database),
        ),
        kind(
            BACKUP,
            "BACKUP DATABASE",
            "Back a database up into a file of its server.",
            "file",
            lambda b, ref, ctx: b.backup(ctx, ref.database, file_of(ctx.request)),
        ),
        kind(
            RESTORE,
            "DATABASE RESTORE",
            "Restore a backup file into a new database.",
            "file",
            lambda b, ref, ctx: b.restore(ctx, file_of(ctx.request), ref.database),
        ),
        kind(
            EXPORT,
            "EXPORT DATABASE",
            "Export a database into a portable file of its server.",
            "file",
            lambda b, ref, ctx: b.export(ctx, ref.database, file_of(ctx.request)),
        ),
        kind(
            IMPORT,
            "IMPORT DATABASE",
            "Import an export file into a new database.",
            "file",
            lambda b, ref, ctx: b.import_(ctx, file_of(ctx.request), ref.database),
        ),
        kind(
            ALTER,
            "ALTER DATABASE",
            "Change a database's settings or rebuild it (VACUUM).",
            "changes",
            lambda b, ref, ctx: b.alter(ctx, ref.database, changes_of(ctx.request)),
        ),
        kind(
            INDEX,
            "CREATE INDEX",
            "Build an index on a table of a database.",
            "index",
            lambda b, ref, ctx: b.create_index(
                ctx, ref.database, IndexSpec.from_json(ctx.request.get("index"))
            ),
        ),
    )
