"""A worker and a reaper stop when told to, even where a cancel gets lost.

On Python 3.11, `asyncio.wait_for` returns its result instead of raising when a cancel meets a
wait that is just ending (the PostgreSQL pool waits for a connection that way), so one cancel of
a loop that reads the store now and then may go unnoticed. The stores here lose a cancel the same
way, on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from datetime import datetime
from typing import TypeVar

from longrunning.core.operation import Operation, State
from longrunning.core.ports import OperationStore
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.recovery import LeaseReaper
from longrunning.engine.service import OperationService
from longrunning.engine.worker import Worker
from tests.engine.conftest import FAST
from tests.engine.test_execution import start, until_state
from tests.hung_tasks import within

_T = TypeVar("_T")


class CancelLosingStore:
    """A real store whose reads are slow, and lose the first cancel that meets one: the read
    goes on and its caller gets the result, as from `asyncio.wait_for` on Python 3.11."""

    def __init__(self, inner: OperationStore) -> None:
        self.inner = inner
        self.lost = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def _read(self, read: Awaitable[_T]) -> _T:
        async def slowly() -> _T:
            await asyncio.sleep(0.02)
            return await read

        task = asyncio.ensure_future(slowly())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self.lost:
                raise
            self.lost += 1
            return await task

    async def expired_leases(self, *, now: datetime, limit: int) -> list[Operation]:
        return await self._read(self.inner.expired_leases(now=now, limit=limit))

    async def overdue_pending(self, *, now: datetime, limit: int) -> list[Operation]:
        return await self._read(self.inner.overdue_pending(now=now, limit=limit))

    async def cancel_requested(self, op_ids: Collection[str]) -> set[str]:
        return await self._read(self.inner.cancel_requested(op_ids))

    async def get_many(self, op_ids: Collection[str]) -> list[Operation]:
        return await self._read(self.inner.get_many(op_ids))


async def test_a_lost_cancel_does_not_keep_a_worker_from_stopping(
    service: OperationService, store: OperationStore, registry: HandlerRegistry
) -> None:
    losing = CancelLosingStore(store)
    worker = Worker(losing, registry, config=FAST, signals=service.signals)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    # A long one keeps its supervisor reading the store, where a cancel gets lost.
    op = await start(service, "demo.sleep", duration_seconds=30)
    await until_state(service, op.id, State.RUNNING)
    await asyncio.sleep(0.1)
    worker.stop()
    await within(5, "the worker's stop", running)
    assert losing.lost == 1  # the first cancel of its supervisor was lost, and it still ended
    assert (await service.get(op.id)).state is State.PENDING  # handed back for another worker


async def test_a_reaper_stops_on_stop_without_a_cancel(store: OperationStore) -> None:
    losing = CancelLosingStore(store)
    reaper = LeaseReaper(losing, config=FAST)  # type: ignore[arg-type]
    running = asyncio.create_task(reaper.run())
    await asyncio.sleep(0.2)
    reaper.stop()
    await within(2, "the reaper's stop", running)
    assert running.result() is None
