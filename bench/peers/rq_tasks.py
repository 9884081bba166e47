"""The functions RQ workers import by name (`bench.peers.rq_tasks.noop`, `...steps`)."""

from __future__ import annotations

import time

from bench.peers.adapter import STEP_SECONDS, record_step


def noop() -> None:
    return None


def steps(step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        time.sleep(STEP_SECONDS)
        record_step(step_dir, key)
