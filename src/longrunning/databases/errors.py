"""Database errors as structured operation failures: a code, a user-error flag, a severity.

SQLite's and PostgreSQL's own errors (locked, disk full, missing object, invalid SQL, permission)
become `OperationFailed` with a google.rpc code, Azure's severity (16 for what the user can fix,
17 for resources, 20+ for the server's own faults) and an ErrorInfo detail naming the database's
own error (`SQLITE_BUSY`, SQLSTATE `42P01`), so no face ever shows a traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

from longrunning.core.errors import Code
from longrunning.core.json_values import JsonObject
from longrunning.engine.context import OperationFailed

DOMAIN = "longrunning.databases"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

USER_SEVERITY = 16
RESOURCE_SEVERITY = 17
SERVER_SEVERITY = 20

# (code, is_user_error, severity, retryable) by SQLite primary result code name.
_SQLITE: dict[str, tuple[Code, bool, int, bool]] = {
    "SQLITE_BUSY": (Code.UNAVAILABLE, False, RESOURCE_SEVERITY, True),
    "SQLITE_LOCKED": (Code.UNAVAILABLE, False, RESOURCE_SEVERITY, True),
    "SQLITE_FULL": (Code.RESOURCE_EXHAUSTED, False, RESOURCE_SEVERITY, False),
    "SQLITE_IOERR": (Code.UNAVAILABLE, False, SERVER_SEVERITY, True),
    "SQLITE_CANTOPEN": (Code.NOT_FOUND, True, USER_SEVERITY, False),
    "SQLITE_PERM": (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),
    "SQLITE_READONLY": (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),
    "SQLITE_AUTH": (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),
    "SQLITE_CORRUPT": (Code.DATA_LOSS, False, 23, False),
    "SQLITE_NOTADB": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),
    "SQLITE_CONSTRAINT": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),
    "SQLITE_ERROR": (Code.INVALID_ARGUMENT, True, USER_SEVERITY, False),
    "SQLITE_TOOBIG": (Code.OUT_OF_RANGE, True, USER_SEVERITY, False),
    "SQLITE_INTERRUPT": (Code.ABORTED, False, USER_SEVERITY, True),
}

# By SQLSTATE: exact codes first, then the two-character class.
_POSTGRES_EXACT: dict[str, tuple[Code, bool, int, bool]] = {
    "42501": (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),
    "42P04": (Code.ALREADY_EXISTS, True, USER_SEVERITY, False),  # duplicate database
    "42P07": (Code.ALREADY_EXISTS, True, USER_SEVERITY, False),  # duplicate table or index
    "3D000": (Code.NOT_FOUND, True, USER_SEVERITY, False),  # invalid catalog name
    "42P01": (Code.NOT_FOUND, True, USER_SEVERITY, False),  # undefined table
    "42703": (Code.NOT_FOUND, True, USER_SEVERITY, False),  # undefined column
    "55006": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),  # object in use
    "55P03": (Code.UNAVAILABLE, False, RESOURCE_SEVERITY, True),  # lock not available
    "57014": (Code.CANCELLED, False, USER_SEVERITY, False),  # query canceled
    "40P01": (Code.ABORTED, False, RESOURCE_SEVERITY, True),  # deadlock
    "23505": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),  # unique violation
}
_POSTGRES_CLASS: dict[str, tuple[Code, bool, int, bool]] = {
    "08": (Code.UNAVAILABLE, False, SERVER_SEVERITY, True),  # connection exception
    "22": (Code.INVALID_ARGUMENT, True, USER_SEVERITY, False),  # data exception
    "23": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),  # integrity constraint
    "28": (Code.PERMISSION_DENIED, True, USER_SEVERITY, False),  # invalid authorization
    "40": (Code.ABORTED, False, RESOURCE_SEVERITY, True),  # transaction rollback
    "42": (Code.INVALID_ARGUMENT, True, USER_SEVERITY, False),  # syntax or access rule
    "53": (Code.RESOURCE_EXHAUSTED, False, RESOURCE_SEVERITY, False),  # insufficient resources
    "54": (Code.OUT_OF_RANGE, True, USER_SEVERITY, False),  # program limit exceeded
    "55": (Code.FAILED_PRECONDITION, True, USER_SEVERITY, False),  # object not in prereq state
    "57": (Code.UNAVAILABLE, False, SERVER_SEVERITY, True),  # operator intervention
    "58": (Code.UNAVAILABLE, False, SERVER_SEVERITY, True),  # system error (I/O)
    "XX": (Code.INTERNAL, False, SERVER_SEVERITY, False),  # internal error
}
_UNKNOWN = (Code.INTERNAL, False, SERVER_SEVERITY, False)


def _failed(
    doing: str,
    message: str,
    rule: tuple[Code, bool, int, bool],
    reason: str,
    metadata: dict[str, str],
) -> OperationFailed:
    code, user, severity, retryable = rule
    detail: JsonObject = {
        "@type": _ERROR_INFO,
        "reason": reason,
        "domain": DOMAIN,
        "metadata": dict(metadata),
    }
    return OperationFailed(
        f"{doing} failed: {message}",
        code=code,
        is_user_error=user,
        severity=severity,
        details=(detail,),
        retryable=retryable,
    )


def from_sqlite(exc: sqlite3.Error, doing: str) -> OperationFailed:
    """`doing`: what was being done, for people ("copying sales")."""
    name = getattr(exc, "sqlite_errorname", None) or "SQLITE_ERROR"
    primary = "_".join(name.split("_")[:2])  # SQLITE_BUSY_SNAPSHOT is a SQLITE_BUSY
    rule = _SQLITE.get(primary, _SQLITE["SQLITE_ERROR"])
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        rule = _SQLITE["SQLITE_FULL"]
    return _failed(doing, str(exc), rule, name, {"sqliteError": name})


def from_postgres(exc: Any, doing: str) -> OperationFailed:
    """A psycopg.Error (typed loosely, so this module needs no psycopg import)."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    rule = _POSTGRES_EXACT.get(sqlstate) or _POSTGRES_CLASS.get(sqlstate[:2], _UNKNOWN)
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    metadata = {"sqlstate": sqlstate or "UNKNOWN"}
    severity_name = getattr(diag, "severity_nonlocalized", None)
    if severity_name:
        metadata["postgresSeverity"] = str(severity_name)
    return _failed(doing, message, rule, f"SQLSTATE_{metadata['sqlstate']}", metadata)


def from_os(exc: OSError, doing: str) -> OperationFailed:
    """Files: exports, imports, backups."""
    rule: tuple[Code, bool, int, bool]
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        rule = (Code.RESOURCE_EXHAUSTED, False, RESOURCE_SEVERITY, False)
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        rule = (Code.PERMISSION_DENIED, True, USER_SEVERITY, False)
    elif exc.errno == errno.ENOENT:
        rule = (Code.NOT_FOUND, True, USER_SEVERITY, False)
    else:
        rule = (Code.UNAVAILABLE, False, SERVER_SEVERITY, True)
    name = errno.errorcode.get(exc.errno or 0, "EIO")
    return _failed(doing, exc.strerror or str(exc), rule, name, {"osError": name})
