"""SqliteBackend: the DatabaseBackend of a SqliteServer, a directory of SQLite files.

The blocking file work lives in sqlite_files.py (create, copy, drop), sqlite_dump.py (export,
import) and sqlite_maintenance.py (alter, create index), and runs here in a thread; their
callbacks call `work.checkpoint()`, so a cancel stops the thread at its next step.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from longrunning.core.json_values import JsonObject
from longrunning.databases import sqlite_dump, sqlite_files, sqlite_maintenance
from longrunning.databases.backend import DatabaseInfo, FileInfo, IndexSpec, files_path
from longrunning.databases.servers import SqliteServer
from longrunning.databases.work import ProgressClock, Work

_T = TypeVar("_T")
_WORK_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="longrunning-sqlite")
"""Long SQLite work runs here, not in the loop's default executor (a handful of threads on a
small machine), so that every operation a worker admits runs at once instead of queueing
silently at 0 %; threads are made only when needed."""
_COPIED_SHARE = 99 / 100
"""Of the bar, what copying pages earns; syncing the copy to disk and naming it is the rest."""


class SqliteBackend:
    def __init__(self, server: SqliteServer) -> None:
        self._server = server

    @property
    def server(self) -> SqliteServer:
        return self._server

    async def names(self) -> list[str]:
        return await asyncio.to_thread(self._server.database_names)

    async def describe(self, database: str) -> DatabaseInfo | None:
        found = await asyncio.to_thread(sqlite_files.describe, self._server.path(database))
        if found is None:
            return None
        return DatabaseInfo(database, found.size_bytes, found.modified)

    async def files(self) -> list[FileInfo]:
        return await asyncio.to_thread(_files, self._server)

    def check_name(self, database: str) -> None:
        self._server.path(database)

    def check_alter(self, changes: JsonObject) -> None:
        sqlite_maintenance.check_alter(changes)

    async def create(self, work: Work, database: str) -> JsonObject:
        work.report_progress(0, phase="creating the file")
        path = self._server.path(database)
        await asyncio.to_thread(sqlite_files.create_empty, path, database)
        work.report_progress(100, phase="created")
        return {}

    async def drop(self, work: Work, database: str) -> JsonObject:
        await asyncio.to_thread(sqlite_files.drop, self._server.path(database), database)
        return {}

    async def copy(self, work: Work, source: str, database: str) -> JsonObject:
        copied = await self._copy(
            work,
            self._server.path(source),
            self._server.path(database),
            source_name=f"database {source!r}",
            name=f"database {database!r}",
        )
        return _copied(copied)

    async def backup(self, work: Work, database: str, file: str) -> JsonObject:
        path = files_path(self._server, file)
        copied = await self._copy(
            work,
            self._server.path(database),
            path,
            source_name=f"database {database!r}",
            name=f"file {file!r}",
        )
        return {"file": file, "bytes": path.stat().st_size, **_copied(copied)}

    async def restore(self, work: Work, file: str, database: str) -> JsonObject:
        path = self._server.path(database)
        copied = await self._copy(
            work,
            files_path(self._server, file),
            path,
            source_name=f"file {file!r}",
            name=f"database {database!r}",
            immutable_source=True,
        )
        return {"file": file, "bytes": path.stat().st_size, **_copied(copied)}

    async def _copy(
        self,
        work: Work,
        source: Path,
        path: Path,
        *,
        source_name: str,
        name: str,
        immutable_source: bool = False,
    ) -> sqlite_files.Copied:
        server = self._server
        clock = ProgressClock(work)

        def progress(done: int, total: int) -> None:
            # One report a step, nothing else: the engine then stores each step on its own.
            work.checkpoint()
            phase = f"copied {done} of {total} pages"
            clock.report(done * _COPIED_SHARE, total, phase if done < total else "syncing to disk")

        def pause(seconds: float) -> None:
            end = time.monotonic() + seconds
            while not work.cancel_requested and (left := end - time.monotonic()) > 0:
                time.sleep(min(left, 0.01))

        work.report_progress(0, phase=f"copying {source_name}")
        copied = await _in_work_thread(
            sqlite_files.copy,
            source,
            path,
            source_name=source_name,
            name=name,
            max_pages_per_step=server.copy_pages_per_step,
            pause_seconds=server.copy_step_pause_seconds,
            progress=progress,
            pause=pause,
            immutable_source=immutable_source,
            checkpoint=work.checkpoint,
        )
        work.report_progress(100, phase="copied")
        return copied

    async def export(self, work: Work, database: str, file: str) -> JsonObject:
        exported = await _in_work_thread(
            sqlite_dump.export_sql,
            work,
            self._server.path(database),
            files_path(self._server, file),
            database=database,
            file=file,
        )
        return {"file": file, **exported.to_json()}

    async def import_(self, work: Work, file: str, database: str) -> JsonObject:
        imported = await _in_work_thread(
            sqlite_dump.import_sql,
            work,
            files_path(self._server, file),
            self._server.path(database),
            database=database,
            file=file,
        )
        return {"file": file, **imported.to_json()}

    async def alter(self, work: Work, database: str, changes: JsonObject) -> JsonObject:
        sqlite_maintenance.check_alter(changes)
        return await _in_work_thread(
            sqlite_maintenance.alter, work, self._server.path(database), database, changes
        )

    async def create_index(self, work: Work, database: str, index: IndexSpec) -> JsonObject:
        return await _in_work_thread(
            sqlite_maintenance.create_index, work, self._server.path(database), database, index
        )


async def _in_work_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_WORK_THREADS, functools.partial(function, *args, **kwargs))


def _copied(copied: sqlite_files.Copied) -> JsonObject:
    return {"pages": copied.pages, "pagesPerStep": copied.pages_per_step, "steps": copied.steps}


def _files(server: SqliteServer) -> list[FileInfo]:
    if not server.files.is_dir():
        return []
    found = []
    for entry in sorted(server.files.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        stat = entry.stat()
        found.append(FileInfo(entry.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
    return found
