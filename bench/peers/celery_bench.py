"""Celery 5 with Redis as broker and result backend: W1, W1.workers2, W2, W3 (revoke with
terminate=True) and W3.abortable (AbortableTask), measured against `celery worker` processes.

Run inside the peers venv: `python -m bench.peers.celery_bench '<json arguments>'`.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import redis

from bench.peers.adapter import (
    W3_STEPS,
    WAIT_DEADLINE_SECONDS,
    Arguments,
    Cancellable,
    Outcome,
    Processes,
    Samples,
    StepLog,
    guarded,
    not_measured,
    redis_db_url,
    run_w1,
    run_w2,
    run_w3,
    venv_bin,
)

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
    url = redis_db_url(args.redis_url, REDIS_DB)
    os.environ["BENCH_CELERY_REDIS"] = url
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        measure(args)
    finally:
        store.flushdb()


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

    work = args.work_dir / "celery"
    steps = StepLog(work / "steps")
    step_dir = str(steps.directory)

    def wait_all(handles: list[Any]) -> None:
        ResultSet(handles).get(timeout=600)

    def round_trip() -> None:
        celery_app.noop.delay().get(timeout=WAIT_DEADLINE_SECONDS)

    def terminal(handle: AsyncResult) -> Outcome | None:
        return STATES.get(handle.state)

    revoke = Cancellable(
        start=lambda key: celery_app.steps.delay(step_dir, key, W3_STEPS),
        cancel=lambda handle: celery_app.app.control.revoke(handle.id, terminate=True),
        terminal=terminal,
    )
    abortable = Cancellable(
        start=lambda key: AbortableAsyncResult(
            celery_app.abortable_steps.delay(step_dir, key, W3_STEPS).id, app=celery_app.app
        ),
        cancel=lambda handle: handle.abort(),
        terminal=terminal,
    )
    setup = "one `celery worker --concurrency 1` (prefork), Redis broker and result backend"
    with Processes(work / "logs") as processes:
        start_workers(processes, 1)
        if args.wants("W1"):
            w1 = Samples("W1", SYSTEM, note=setup + "; results awaited with ResultSet.get")
            guarded(
                "W1",
                SYSTEM,
                lambda: run_w1(
                    w1, args.repetitions, args.w1_operations, celery_app.noop.delay, wait_all
                ),
            )
            w1.emit()
        if args.wants("W2"):
            w2 = Samples("W2", SYSTEM, note=setup + "; task.delay().get()")
            guarded(
                "W2", SYSTEM, lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip)
            )
            w2.emit()
        if args.wants("W3"):
            w3 = Samples(
                "W3",
                SYSTEM,
                note=setup + "; control.revoke(id, terminate=True) (SIGTERM to the pool child), "
                "terminal state REVOKED read from the result backend",
            )
            guarded(
                "W3", SYSTEM, lambda: run_w3(w3, args.repetitions, args.w3_cancels, steps, revoke)
            )
            w3.emit()
            w3a = Samples(
                "W3.abortable",
                SYSTEM,
                note=setup + "; AbortableTask: AbortableAsyncResult.abort() sets ABORTED at once, "
                "the task checks is_aborted() before each step (and then ends as SUCCESS)",
            )
            guarded(
                "W3.abortable",
                SYSTEM,
                lambda: run_w3(w3a, args.repetitions, args.w3_cancels, steps, abortable),
            )
            w3a.emit()
    if args.wants("W1.workers2"):
        with Processes(work / "logs") as processes:
            start_workers(processes, 2)
            w12 = Samples(
                "W1.workers2",
                SYSTEM,
                note="one `celery worker --concurrency 2` (two prefork processes), Redis",
            )
            guarded(
                "W1.workers2",
                SYSTEM,
                lambda: run_w1(
                    w12, args.repetitions, args.w1_operations, celery_app.noop.delay, wait_all
                ),
            )
            w12.emit()
    if args.wants("W4"):
        not_measured(
            "W4",
            SYSTEM,
            "unsupported",
            "no HTTP status API of its own (AsyncResult reads go straight to Redis); "
            "Flower is a separate monitoring app",
        )


if __name__ == "__main__":
    main()
