"""The Celery application the Celery adapter's workers load (`celery -A bench.peers.celery_app`).

Redis is both broker and result backend; the URL comes from BENCH_CELERY_REDIS (the adapter sets
it for itself and its workers).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.contrib.abortable import AbortableTask

from bench.peers.adapter import STEP_SECONDS, record_step

REDIS = os.environ.get("BENCH_CELERY_REDIS", "redis://127.0.0.1:6379/10")

app = Celery("bench_celery", broker=REDIS, backend=REDIS)
app.conf.update(
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop() -> None:
    return None


@app.task(name="bench.steps")
def steps(step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        time.sleep(STEP_SECONDS)
        record_step(step_dir, key)


@app.task(name="bench.abortable_steps", bind=True, base=AbortableTask)
def abortable_steps(self: Any, step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        if self.is_aborted():
            return
        time.sleep(STEP_SECONDS)
        record_step(step_dir, key)
