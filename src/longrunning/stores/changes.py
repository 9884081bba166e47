"""The change counter every store exposes, with broadcast wake-ups for its waiters, and the
shielded writes of the SQL stores.

In-process bookkeeping only: noticing other processes' writes is each adapter's job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class ChangeCounter:
    """A number that only grows; `wait` wakes every task waiting for it to pass a value."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = asyncio.Event()

    @property
    def value(self) -> int:
        return self._count

    def bump(self) -> None:
        self._count += 1
        # Swap in a fresh event before setting the old one: every current waiter wakes, and
        # nobody who starts waiting afterwards sees a stale "set".
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the count exceeds `seen` or `timeout` seconds pass; return the count."""
        if self._count > seen or timeout <= 0:
            return self._count
        try:
            async with asyncio.timeout(timeout):
                while self._count <= seen:
                    await self._changed.wait()
        except TimeoutError:
            pass
        return self._count


class ShieldedWrites:
    """Runs each write as a task that a cancelled caller cannot cut short: a write runs to its
    commit or rollback regardless, so no transaction (and no connection) is left half done, and
    a write the caller gave up on is still either wholly stored or not at all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, write: Coroutine[Any, Any, _T]) -> _T:
        task = asyncio.create_task(write)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for every write still running (at close)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
