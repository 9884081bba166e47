"""The Dramatiq broker and actors the Dramatiq adapter's workers load
(`dramatiq bench.peers.dramatiq_app`): Redis broker, Redis result backend (Results middleware) and
dramatiq-abort's Abortable middleware with its Redis event backend. The Redis URL comes from
BENCH_DRAMATIQ_REDIS.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend
from dramatiq_abort import Abortable
from dramatiq_abort.backends.redis import RedisBackend as AbortEvents

from bench.peers.adapter import STEP_SECONDS, record_step

REDIS = os.environ.get("BENCH_DRAMATIQ_REDIS", "redis://127.0.0.1:6379/11")

broker = RedisBroker(url=REDIS)
results = RedisBackend(url=REDIS)
broker.add_middleware(Results(backend=results))
broker.add_middleware(Abortable(backend=AbortEvents.from_url(REDIS)))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_noop", store_results=True, max_retries=0)
def noop() -> None:
    return None


@dramatiq.actor(actor_name="bench_steps", store_results=True, max_retries=0)
def steps(step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        time.sleep(STEP_SECONDS)
        record_step(step_dir, key)
