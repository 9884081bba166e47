"""Noticing commits made by other nodes on a PostgreSQL database, for the change counter.

One connection of its own LISTENs on the channel that the operations table's trigger notifies.
When the connection drops it reconnects with backoff, and reports a change on reconnecting,
since notifications sent meanwhile are lost: waiters then re-read, and until then they fall
back on their own polling. No operation semantics here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Container

import psycopg

CHANNEL = "longrunning_changes"
"""Must match the trigger function in migrations/postgresql."""
PROBE_SECONDS = 15.0
"""A quiet connection is probed this often, so that a silently dead one is noticed."""
MAX_BACKOFF_SECONDS = 2.0
RECANCEL_SECONDS = 0.5
"""How long `stop` waits for the listener to end before cancelling it again."""

_log = logging.getLogger("longrunning.stores.postgres")


class ChangeListener:
    """`ours`: the pids of this process's own server backends, whose notifications are ignored:
    the store counted those writes itself when they committed, and a second wake-up for each
    would send every waiter back to the database for nothing."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[], None],
        *,
        where: str,
        ours: Container[int] = frozenset(),
    ) -> None:
        self._conninfo = conninfo
        self._on_change = on_change
        self._where = where
        self._ours = ours
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the LISTEN connection is up."""

    async def start(self, timeout: float) -> None:
        """Start listening; wait up to `timeout` seconds for the first connection."""
        self._task = asyncio.create_task(self._run(), name="postgres-change-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout)

    async def stop(self) -> None:
        task, self._task = self._task, None
        # Cancelled until it ends: on Python 3.11 a cancel that meets a wait just ending (a
        # connect, say) can be lost. Not `suppress(CancelledError)` around an await of it:
        # that would swallow a cancel aimed at stop() too.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=RECANCEL_SECONDS)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                if self.listening.is_set():
                    _log.warning("lost the change listener on %s: %s", self._where, exc)
                backoff = 0.05 if self.listening.is_set() else min(backoff * 2, MAX_BACKOFF_SECONDS)
            self.listening.clear()
            await asyncio.sleep(backoff)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            self._on_change()  # whatever was notified while we were away is lost
            while True:
                async for notify in conn.notifies(timeout=PROBE_SECONDS):
                    if notify.pid not in self._ours:
                        self._on_change()
                await conn.execute("SELECT 1")
