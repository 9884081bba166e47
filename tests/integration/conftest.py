"""Fixtures for the native face tests: a real service and worker over MemoryStore, served in
process (httpx.ASGITransport) or on a real socket (uvicorn on 127.0.0.1, port 0).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from longrunning.client import NativeClient
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.service import OperationService
from longrunning.engine.worker import Worker
from longrunning.faces.native.rest import http_exception_handler, native_routes
from longrunning.stores.memory import MemoryStore
from longrunning.testing import FAST_ENGINE

FAST = dataclasses.replace(FAST_ENGINE, lease_seconds=2.0)
MAX_BODY_BYTES = 4096


@pytest.fixture
async def native_store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def native_service(native_store: MemoryStore) -> OperationService:
    return OperationService(native_store, HandlerRegistry(DEMO_KINDS))


@pytest.fixture
async def running_worker(
    native_store: MemoryStore, native_service: OperationService
) -> AsyncIterator[Worker]:
    worker = Worker(
        native_store, native_service.registry, config=FAST, signals=native_service.signals
    )
    task = asyncio.create_task(worker.run())
    yield worker
    worker.stop()
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def native_app(native_service: OperationService) -> Starlette:
    return Starlette(
        routes=native_routes(native_service, max_body_bytes=MAX_BODY_BYTES, heartbeat_seconds=0.2),
        exception_handlers={HTTPException: http_exception_handler},
    )


@pytest.fixture
async def http(native_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to the app in process, for status codes, headers and malformed requests."""
    transport = httpx.ASGITransport(app=native_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def api(native_app: Starlette) -> AsyncIterator[NativeClient]:
    """NativeClient over the in-process app."""
    transport = httpx.ASGITransport(app=native_app)
    async with NativeClient("http://test", transport=transport) as client:
        yield client


@pytest.fixture
async def live_url(native_app: Starlette) -> AsyncIterator[str]:
    """The app served by uvicorn on a real socket; its base URL."""
    config = uvicorn.Config(
        native_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)
