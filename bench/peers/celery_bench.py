"""Celery 5 with Redis as broker and result backend: W1, W1.workers2, W2, W3 (revoke with
terminate=True) and W3.abortable (AbortableTask), measured against `celery worker` processes.

Run inside the peers venv: `python -m bench.peers.celery_bench '<json arguments>'`.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from bench.peers.adapter import (
    W3_STEPS,
    WAIT_DEADLINE_SECONDS,
    Arguments,
    Outcome,
    Processes,
    Workspace,
    redis_database,
    venv_bin,
)
from bench.peers.workloads import Cancellable, W3Variant, run_workloads

SYSTEM = "celery-redis"
REDIS_DB = 10
STATES: dict[str, Outcome] = {
    "REVOKED": "cancelled",
    "ABORTED": "cancelled",
    "SUCCESS": "completed",
    "FAILURE": "failed",
}


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    with redis_database(args, REDIS_DB, "BENCH_CELERY_REDIS"):
        measure(args)


def start_workers(processes: Processes, concurrency: int) -> None:
    from bench.peers import celery_app

    processes.start(
        "celery-worker",
        [
            venv_bin("celery"),
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--hostname",
            f"bench-{uuid.uuid4().hex[:8]}@%h",
        ],
    )
    # Ready once a task makes the round trip.
    celery_app.noop.delay().get(timeout=60)


def measure(args: Arguments) -> None:
    from celery.contrib.abortable import AbortableAsyncResult
    from celery.result import AsyncResult, ResultSet

    from bench.peers import celery_app

    work = Workspace.of(args, "celery")

    def wait_all(handles: list[Any]) -> None:
        ResultSet(handles).get(timeout=600)

    def round_trip() -> None:
        celery_app.noop.delay().get(timeout=WAIT_DEADLINE_SECONDS)

    def terminal(handle: AsyncResult) -> Outcome | None:
        return STATES.get(handle.state)

    revoke = Cancellable(
        start=lambda key: celery_app.steps.delay(work.step_dir, key, W3_STEPS),
        cancel=lambda handle: celery_app.app.control.revoke(handle.id, terminate=True),
        terminal=terminal,
    )
    abortable = Cancellable(
        start=lambda key: AbortableAsyncResult(
            celery_app.abortable_steps.delay(work.step_dir, key, W3_STEPS).id, app=celery_app.app
        ),
        cancel=lambda handle: handle.abort(),
        terminal=terminal,
    )
    run_workloads(
        args,
        SYSTEM,
        "one `celery worker --concurrency 1` (prefork), Redis broker and result backend",
        work=work,
        enqueue=celery_app.noop.delay,
        wait_all=wait_all,
        round_trip=round_trip,
        w1_note="; results awaited with ResultSet.get",
        w2_note="; task.delay().get()",
        w3=[
            W3Variant(
                "W3",
                "; control.revoke(id, terminate=True) (SIGTERM to the pool child), "
                "terminal state REVOKED read from the result backend",
                revoke,
            ),
            W3Variant(
                "W3.abortable",
                "; AbortableTask: AbortableAsyncResult.abort() sets ABORTED at once, "
                "the task checks is_aborted() before each step (and then ends as SUCCESS)",
                abortable,
            ),
        ],
        workers2_note="one `celery worker --concurrency 2` (two prefork processes), Redis",
        w4_note="no HTTP status API of its own (AsyncResult reads go straight to Redis); "
        "Flower is a separate monitoring app",
        start_workers=start_workers,
    )


if __name__ == "__main__":
    main()
