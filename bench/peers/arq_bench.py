"""arq (asyncio, Redis): W1, W1.workers2, W2 and W3 (`job.abort()`), measured against `arq`
worker processes polling every 10 ms (arq's default is 0.5 s).

Run inside the peers venv: `python -m bench.peers.arq_bench '<json arguments>'`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis

from bench.peers.adapter import (
    POLL_SECONDS,
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

SYSTEM = "arq-redis"
REDIS_DB = 12
T = TypeVar("T")


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    url = redis_db_url(args.redis_url, REDIS_DB)
    os.environ["BENCH_ARQ_REDIS"] = url
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        with asyncio.Runner() as runner:
            measure(args, runner)
    finally:
        store.flushdb()


def measure(args: Arguments, runner: asyncio.Runner) -> None:
    from arq import create_pool
    from arq.jobs import Job, ResultNotFound

    from bench.peers import arq_app

    def sync(coroutine: Coroutine[Any, Any, T]) -> T:
        return runner.run(coroutine)

    pool = sync(create_pool(arq_app.REDIS))
    work = args.work_dir / "arq"
    steps = StepLog(work / "steps")
    step_dir = str(steps.directory)

    async def result(job: Job, timeout: float) -> Any:
        """`job.result()`, working around arq 0.25 reading the result and the queue outside its
        pipeline: a job finishing between the two reads raises ResultNotFound although its
        result is stored, so look at the stored result once more."""
        try:
            return await job.result(timeout=timeout, poll_delay=POLL_SECONDS)
        except ResultNotFound:
            info = await job.result_info()
            if info is None:
                raise
            if not info.success:
                raise info.result from None
            return info.result

    def enqueue() -> Job:
        job = sync(pool.enqueue_job("bench_noop"))
        assert job is not None
        return job

    def wait_all(handles: list[Any]) -> None:
        async def wait() -> None:
            for job in handles:
                await result(job, 600)

        sync(wait())

    def round_trip() -> None:
        sync(result(enqueue(), WAIT_DEADLINE_SECONDS))

    def start(key: str) -> Job:
        job = sync(pool.enqueue_job("bench_steps", step_dir, key, W3_STEPS))
        assert job is not None
        return job

    def cancel_and_wait(job: Job, deadline: float) -> Outcome | None:
        try:
            aborted = sync(job.abort(timeout=deadline, poll_delay=POLL_SECONDS))
        except TimeoutError:
            return None
        if aborted:
            return "cancelled"
        # abort() answers False on the same race as result(); the stored result decides.
        info = sync(job.result_info())
        if info is None:
            return None
        if info.success:
            return "completed"
        return "cancelled" if isinstance(info.result, asyncio.CancelledError) else "failed"

    def start_workers(processes: Processes, count: int) -> None:
        for _ in range(count):
            processes.start("arq-worker", [venv_bin("arq"), "bench.peers.arq_app.WorkerSettings"])
        sync(result(enqueue(), 60))

    cancellable = Cancellable(
        start=start,
        cancel=lambda job: None,
        terminal=lambda job: None,
        cancel_and_wait=cancel_and_wait,
    )
    setup = (
        "one `arq` worker process (max_jobs 10, poll_delay 10 ms); client polls results every 2 ms"
    )
    with Processes(work / "logs") as processes:
        start_workers(processes, 1)
        if args.wants("W1"):
            w1 = Samples("W1", SYSTEM, note=setup)
            guarded(
                "W1",
                SYSTEM,
                lambda: run_w1(w1, args.repetitions, args.w1_operations, enqueue, wait_all),
            )
            w1.emit()
        if args.wants("W2"):
            w2 = Samples("W2", SYSTEM, note=setup + "; enqueue_job then job.result()")
            guarded(
                "W2", SYSTEM, lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip)
            )
            w2.emit()
        if args.wants("W3"):
            w3 = Samples(
                "W3",
                SYSTEM,
                note=setup + "; job.abort() (worker cancels the asyncio task; allow_abort_jobs), "
                "terminal = abort() returning",
            )
            guarded(
                "W3",
                SYSTEM,
                lambda: run_w3(w3, args.repetitions, args.w3_cancels, steps, cancellable),
            )
            w3.emit()
    if args.wants("W1.workers2"):
        with Processes(work / "logs") as processes:
            start_workers(processes, 2)
            w12 = Samples(
                "W1.workers2", SYSTEM, note="two `arq` worker processes, poll_delay 10 ms"
            )
            guarded(
                "W1.workers2",
                SYSTEM,
                lambda: run_w1(w12, args.repetitions, args.w1_operations, enqueue, wait_all),
            )
            w12.emit()
    if args.wants("W4"):
        not_measured("W4", SYSTEM, "unsupported", "no HTTP status API (Job.status() reads Redis)")
    sync(pool.aclose())


if __name__ == "__main__":
    main()
