"""The change counter every store exposes, with broadcast wake-ups for its waiters, and the
shielded writes of the SQL stores.

In-process bookkeeping only: noticing other processes' writes is each adapter's job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from longrunning.core.errors import StoreError

_T = TypeVar("_T")
_log = logging.getLogger("longrunning.stores")
SETTLE_SECONDS = 10.0
"""How long a closing store waits for writes still running before it cancels them."""


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

    def start(self, write: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Run `write` as a task that `settle` waits for; its result is the caller's to fetch."""
        task = asyncio.create_task(write)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, write: Coroutine[Any, Any, _T]) -> _T:
        task = self.start(write)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current is not None and current.cancelling()):
                # Cancelled by settle(), not by our caller: say so in the store's terms.
                raise StoreError("the store closed before this write was committed") from None
            raise

    async def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait for every write still running (at close), `timeout` seconds at most; then cancel
        what is left (rolled back, so never acknowledged) rather than hang a shutdown on a server
        that no longer answers."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        if pending:
            _log.warning(
                "%d store write(s) still running %.0f s after close began; cancelling them "
                "(each is rolled back, and its caller told it failed)",
                len(pending),
                timeout,
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=timeout)
