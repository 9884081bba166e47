"""ALTER DATABASE on PostgreSQL: which changes a request may ask for, and making them.

`check_changes` is the request's rule (InvalidRequest before anything is stored); `alter` makes
the changes in order: the database's settings (ALTER DATABASE SET/RESET, in one transaction),
VACUUM FULL table by table (progress from pg_stat_progress_cluster, weighted by table size),
then ANALYZE. Each long statement goes through `run_statement`, so a cancel stops it at once;
a cancelled VACUUM FULL rolls back its table's rewrite and tables done before stay done (their
content never changes). The caller has checked that the database exists.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.databases.postgres_sessions import connect, failure, fetch_one, run_statement
from longrunning.databases.postgres_watches import VacuumProgress
from longrunning.databases.servers import PostgresServer
from longrunning.databases.work import ProgressClock, Work

_CHANGES = {"vacuum_full", "analyze", "settings"}
_SETTING = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")
_SETTING_NAME_MAX = 127
_SETTING_VALUE_MAX = 4096
_SETTINGS_MAX = 100

# Shares of an ALTER DATABASE's progress: VACUUM FULL rewrites every table, the rest is quick.
_SETTINGS_WEIGHT = 1
_VACUUM_WEIGHT = 90
_ANALYZE_WEIGHT = 9
_BLOCK = 8192
"""Added to every table's size, so that empty tables count too."""

_USER_TABLES = """
SELECT n.nspname, c.relname, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname, c.relname
"""


def check_changes(changes: JsonObject) -> tuple[bool, bool, dict[str, str | None]]:
    """(vacuum_full, analyze, settings as SET text or None for RESET), or InvalidRequest."""
    unknown = set(changes) - _CHANGES
    if unknown:
        raise InvalidRequest(
            f"unknown change {sorted(unknown)[0]!r}: a PostgreSQL database accepts "
            "vacuum_full, analyze and settings",
            reason="INVALID_REQUEST",
        )
    flags = []
    for key in ("vacuum_full", "analyze"):
        value = changes.get(key, False)
        if not isinstance(value, bool):
            raise InvalidRequest(f"changes.{key} must be true or false", reason="INVALID_REQUEST")
        flags.append(value)
    settings = _settings(changes.get("settings", {}))
    if not (flags[0] or flags[1] or settings):
        raise InvalidRequest(
            "changes must ask for at least one change: vacuum_full, analyze or settings",
            reason="INVALID_REQUEST",
        )
    return flags[0], flags[1], settings


def _settings(value: JsonValue) -> dict[str, str | None]:
    if not isinstance(value, dict) or len(value) > _SETTINGS_MAX:
        raise InvalidRequest(
            f"changes.settings must be an object of at most {_SETTINGS_MAX} settings",
            reason="INVALID_REQUEST",
        )
    settings: dict[str, str | None] = {}
    for name, setting in value.items():
        if len(name) > _SETTING_NAME_MAX or not _SETTING.fullmatch(name):
            raise InvalidRequest(
                f"setting name {name[:80]!r} is not valid: a-z, 0-9 and _, not starting with "
                "a digit, optionally as prefix.name",
                reason="INVALID_REQUEST",
            )
        settings[name] = _setting_text(name, setting)
    return settings


def _setting_text(name: str, value: JsonValue) -> str | None:
    """A setting's value as the text SET takes, whatever its type: PostgreSQL parses it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return repr(value)  # JSON numbers are finite
    if isinstance(value, str) and len(value) <= _SETTING_VALUE_MAX and "\x00" not in value:
        return value
    raise InvalidRequest(
        f"changes.settings.{name} must be a string (at most {_SETTING_VALUE_MAX} characters), "
        "a number, a boolean, or null to reset it",
        reason="INVALID_REQUEST",
    )


async def alter(
    work: Work, server: PostgresServer, database: str, changes: JsonObject
) -> JsonObject:
    vacuum, analyze, settings = check_changes(changes)
    clock = ProgressClock(work)
    total = _SETTINGS_WEIGHT * bool(settings) + _VACUUM_WEIGHT * vacuum + _ANALYZE_WEIGHT * analyze
    done = 0.0
    clock.report(done, total, f"altering database {database!r}")
    if settings:
        await _apply_settings(work, server, database, settings)
        done += _SETTINGS_WEIGHT
        clock.report(done, total, f"{len(settings)} setting(s) changed")
    tables = 0
    if vacuum:
        tables = await _vacuum_full(work, server, database, clock, done, total)
        done += _VACUUM_WEIGHT
    if analyze:
        clock.report(done, total, f"ANALYZE {database!r}")
        await run_statement(
            work, server, database, sql.SQL("ANALYZE"), doing=f"analyzing database {database!r}"
        )
    size = await fetch_one(
        server,
        database,
        "SELECT pg_database_size(current_database())",
        (),
        f"measuring database {database!r}",
    )
    clock.report(total, total, f"database {database!r} altered")
    result: JsonObject = {
        "settings": dict(settings),
        "vacuumedTables": tables,
        "analyzed": analyze,
        "sizeBytes": int(size[0]) if size else 0,
    }
    return result


async def _apply_settings(
    work: Work, server: PostgresServer, database: str, settings: dict[str, str | None]
) -> None:
    work.checkpoint()
    name = sql.Identifier(server.database_name(database))
    doing = f"changing the settings of database {database!r}"
    conn = await connect(server, None, doing)
    try:
        async with conn.transaction():
            for setting, value in settings.items():
                target = sql.Identifier(*setting.split("."))
                if value is None:
                    statement = sql.SQL("ALTER DATABASE {} RESET {}").format(name, target)
                else:
                    # A utility statement takes no bound parameters: Literal quotes the value.
                    statement = sql.SQL("ALTER DATABASE {} SET {} TO {}").format(
                        name, target, sql.Literal(value)
                    )
                await conn.execute(statement)
    except psycopg.Error as exc:
        raise failure(server, exc, doing) from exc
    finally:
        await conn.close()


async def _vacuum_full(
    work: Work,
    server: PostgresServer,
    database: str,
    clock: ProgressClock,
    done: float,
    total: float,
) -> int:
    """VACUUM FULL of every user table; the number of tables."""
    doing = f"listing the tables of database {database!r}"
    conn = await connect(server, database, doing)
    try:
        rows = await (await conn.execute(_USER_TABLES)).fetchall()
    except psycopg.Error as exc:
        raise failure(server, exc, doing) from exc
    finally:
        await conn.close()
    tables = [(str(schema), str(table), int(size or 0) + _BLOCK) for schema, table, size in rows]
    table_bytes = sum(size for _, _, size in tables)
    scale = _VACUUM_WEIGHT / table_bytes if table_bytes else 0.0
    vacuumed = 0
    for number, (schema, table, size) in enumerate(tables, start=1):
        work.checkpoint()
        title = f"VACUUM FULL {schema}.{table} ({number} of {len(tables)})"
        watch = VacuumProgress(
            clock=clock, whole=total, start=done + vacuumed * scale, share=size * scale, title=title
        )
        await run_statement(
            work,
            server,
            database,
            sql.SQL("VACUUM (FULL) {}").format(sql.Identifier(schema, table)),
            doing=f"VACUUM FULL of {schema}.{table} in database {database!r}",
            watch=watch,
        )
        vacuumed += size
        clock.report(done + vacuumed * scale, total, f"{title}: done")
    return len(tables)
