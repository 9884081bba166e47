"""LeaseReaper: recovers operations whose worker vanished, fails pending ones past their deadline,
and purges finished ones past retention. Runs on every node; compare-and-set makes it safe for
several reapers to race (only one write wins, the others see a conflict and move on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from longrunning.core import lifecycle
from longrunning.core.errors import InvalidTransition, LongrunningError, StoreConflict
from longrunning.core.operation import Operation
from longrunning.core.ports import Clock, OperationStore
from longrunning.engine.config import EngineConfig, SystemClock

log = logging.getLogger("longrunning.reaper")

_BATCH = 100


class LeaseReaper:
    def __init__(
        self,
        store: OperationStore,
        *,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.config = config or EngineConfig()
        self.clock = clock or SystemClock()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Reap every `reaper_interval` until `stop()`."""
        next_purge = time.monotonic()
        while not self._stopping.is_set():
            try:
                await self.recover_once()
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + self.config.purge_interval_seconds
                    await self.purge_once()
            except LongrunningError as exc:
                log.warning("reaper pass failed (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.reaper_interval):
                    await self._stopping.wait()

    def stop(self) -> None:
        """End `run()` after the pass in progress. Not a cancel: on Python 3.11 a cancel that
        meets a wait just ending can be lost (`asyncio.wait_for`, used by the PostgreSQL pool,
        returns the result instead), and the reaper would then run on and hang the shutdown."""
        self._stopping.set()

    async def recover_once(self) -> int:
        """One pass over expired leases and overdue pending operations; returns how many changed."""
        now = self.clock.now()
        changed = 0
        for op in await self.store.expired_leases(now=now, limit=_BATCH):
            changed += await self._apply(op, self._recover)
        for op in await self.store.overdue_pending(now=now, limit=_BATCH):
            changed += await self._apply(op, lambda o: lifecycle.expire_pending(o, now=now))
        return changed

    def _recover(self, op: Operation) -> Operation:
        log.warning(
            "operation %s: lease of %s expired at %s; recovering",
            op.id,
            op.lease_owner,
            op.lease_expires_at,
        )
        return lifecycle.recover_expired_lease(op, now=self.clock.now())

    async def _apply(self, op: Operation, change: Callable[[Operation], Operation]) -> int:
        try:
            await self.store.replace(change(op), expected_version=op.version)
        except (StoreConflict, InvalidTransition):
            return 0  # another reaper, or the worker itself, got there first
        except LongrunningError as exc:
            # One operation that cannot be written must not stall recovery of the others.
            log.error("operation %s: recovery failed: %s", op.id, exc)
            return 0
        return 1

    async def purge_once(self) -> int:
        cutoff = self.clock.now() - self.config.retention
        total = 0
        while (purged := await self.store.purge_finished(ended_before=cutoff, limit=1000)) > 0:
            total += purged
        if total:
            log.info("purged %d operations that ended before %s", total, cutoff)
        return total
