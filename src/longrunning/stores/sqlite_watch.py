"""Noticing commits made by other processes on a SQLite file, for the change counter.

A daemon thread polls `PRAGMA data_version` on its own connection and calls back into the event
loop only when it moved. It polls fast while the file is busy and slowly once it has been quiet,
so an idle server costs almost nothing (measured: 10 ms polling alone took ~2 % of a core).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

BUSY_POLL_SECONDS = 0.01
"""How stale another process's commit may be while the file is busy."""
IDLE_POLL_SECONDS = 0.1
"""How stale it may be after the file was quiet for QUIET_SECONDS."""
QUIET_SECONDS = 2.0

_log = logging.getLogger("longrunning.stores.sqlite")


class DataVersionWatcher:
    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        self._path = path
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # data_version only moves for commits by *other* connections, so this one must be ours.
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        self._thread = threading.Thread(
            target=self._run, args=(conn, seen, loop), name="sqlite-change-watch", daemon=True
        )
        self._thread.start()

    def _run(self, conn: sqlite3.Connection, seen: int, loop: asyncio.AbstractEventLoop) -> None:
        last_change = time.monotonic()
        try:
            while True:
                quiet = time.monotonic() - last_change > QUIET_SECONDS
                if self._stop.wait(IDLE_POLL_SECONDS if quiet else BUSY_POLL_SECONDS):
                    return
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error as exc:
                    _log.warning("cannot poll %s for changes: %s", self._path, exc)
                    continue
                if version != seen:
                    seen, last_change = version, time.monotonic()
                    try:
                        loop.call_soon_threadsafe(self._on_change)
                    except RuntimeError:  # the loop is closed: nobody is listening any more
                        return
        finally:
            conn.close()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
