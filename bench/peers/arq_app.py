"""The arq worker settings the arq adapter starts (`arq bench.peers.arq_app.WorkerSettings`):
Redis from BENCH_ARQ_REDIS, 10 ms queue polling and aborts allowed.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from arq.connections import RedisSettings

from bench.peers.adapter import STEP_SECONDS, record_step

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_ARQ_REDIS", "redis://127.0.0.1:6379/12"))


async def bench_noop(ctx: dict[str, Any]) -> None:
    return None


async def bench_steps(ctx: dict[str, Any], step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(STEP_SECONDS)
        record_step(step_dir, key)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [bench_noop, bench_steps]
    redis_settings = REDIS
    poll_delay = 0.01
    allow_abort_jobs = True
