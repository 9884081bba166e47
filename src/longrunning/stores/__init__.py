"""The adapters implementing `core.ports.OperationStore`, and `open_store(url)` to pick one.

Stores persist what `core.lifecycle` decides; they hold no business rules of their own.
"""

from __future__ import annotations

import re

from longrunning.core.errors import InvalidRequest
from longrunning.core.ports import OperationStore
from longrunning.stores.memory import MemoryStore
from longrunning.stores.postgres import PostgresStore
from longrunning.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "PostgresStore", "SQLiteStore", "open_store"]

SUPPORTED_URLS = (
    "postgresql://user@host/db, sqlite:///absolute/path.db, sqlite:relative/path.db, memory://,"
    " or a file path"
)

# Two letters at least, so that a Windows drive (C:\ops.db) reads as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
# `host=db dbname=ops`: libpq's other form, which would otherwise name a SQLite file.
_CONNINFO = re.compile(r"\s*[a-z_]+\s*=\s*\S+(\s+[a-z_]+\s*=|\s*$)")


def open_store(url: str, *, migrate: bool = True) -> OperationStore:
    """The store a URL names, not yet opened. With `migrate=False`, a SQL store's `open` only
    checks the schema instead of migrating it."""
    match = _SCHEME.match(url)
    if match is None:
        if not url.strip():
            raise _bad("the store URL is empty")
        if _CONNINFO.match(url):
            raise _bad(
                "that looks like a PostgreSQL conninfo; give it as postgresql://user@host/db"
            )
        return SQLiteStore(url, migrate=migrate)
    scheme, rest = match[1].lower(), url[match.end() :]
    if scheme == "memory":
        if rest not in ("", "//"):
            raise _bad("memory:// takes no path")
        return MemoryStore()
    if scheme == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        if rest.startswith("//") and not path.startswith("/"):
            raise _bad("sqlite:// needs an absolute path (sqlite:///abs/ops.db); or sqlite:ops.db")
        if not path:
            raise _bad("the sqlite URL names no file")
        return SQLiteStore(path, migrate=migrate)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(f"postgresql:{rest}", migrate=migrate)  # libpq wants it lowercase
    # Only the scheme is echoed: the rest of a URL may hold credentials.
    raise _bad(f"unsupported store URL scheme {scheme!r}; use {SUPPORTED_URLS}")


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, reason="INVALID_STORE_URL")
