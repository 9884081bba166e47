"""The Procrastinate app the Procrastinate adapter's workers load
(`procrastinate --app bench.peers.procrastinate_app.app worker`): PostgreSQL from
BENCH_PROCRASTINATE_DSN, async tasks (an abort request cancels an async task's asyncio task).
"""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, PsycopgConnector

from bench.peers.adapter import STEP_SECONDS, record_step

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", "")))


@app.task(name="bench_noop")
async def noop() -> None:
    return None


@app.task(name="bench_steps")
async def steps(step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(STEP_SECONDS)
        record_step(step_dir, key)
