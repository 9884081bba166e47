"""Fixtures for engine tests: a service and a running worker over each store, with short timings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from longrunning.core.ports import OperationStore
from longrunning.engine.config import EngineConfig
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.recovery import LeaseReaper
from longrunning.engine.service import OperationService
from longrunning.engine.worker import Worker
from longrunning.testing import FAST_ENGINE
from tests.engine.kinds import TEST_KINDS
from tests.hung_tasks import within

FAST = FAST_ENGINE


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry([*DEMO_KINDS, *TEST_KINDS])


@pytest.fixture
def service(store: OperationStore, registry: HandlerRegistry) -> OperationService:
    return OperationService(store, registry)


WorkerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Worker]]


@pytest.fixture
def start_worker(
    store: OperationStore, registry: HandlerRegistry, service: OperationService
) -> WorkerFactory:
    """`async with start_worker(config=...) as worker:` runs a worker and a reaper, as nodes do."""

    @contextlib.asynccontextmanager
    async def run(
        config: EngineConfig = FAST, shared_signals: bool = True
    ) -> AsyncIterator[Worker]:
        worker = Worker(
            store,
            registry,
            config=config,
            signals=service.signals if shared_signals else None,
        )
        task = asyncio.create_task(worker.run())
        reaper = LeaseReaper(store, config=config)
        reaping = asyncio.create_task(reaper.run())
        try:
            yield worker
        finally:
            reaper.stop()
            worker.stop()
            await within(10, "the worker's stop", task)
            await within(10, "the reaper's stop", reaping)

    return run


@pytest.fixture
async def worker(start_worker: WorkerFactory) -> AsyncIterator[Worker]:
    async with start_worker() as running:
        yield running
