"""arq (asyncio, Redis): W1, W1.workers2, W2 and W3 (`job.abort()`), measured against `arq`
worker processes polling every 10 ms (arq's default is 0.5 s).

Run inside the peers venv: `python -m bench.peers.arq_bench '<json arguments>'`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from bench.peers.adapter import (
    POLL_SECONDS,
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

SYSTEM = "arq-redis"
REDIS_DB = 12
T = TypeVar("T")


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    with redis_database(args, REDIS_DB, "BENCH_ARQ_REDIS"), asyncio.Runner() as runner:
        measure(args, runner)


def measure(args: Arguments, runner: asyncio.Runner) -> None:
    from arq import create_pool
    from arq.jobs import Job, ResultNotFound

    from bench.peers import arq_app

    def sync(coroutine: Coroutine[Any, Any, T]) -> T:
        return runner.run(coroutine)

    pool = sync(create_pool(arq_app.REDIS))
    work = Workspace.of(args, "arq")

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
        job = sync(pool.enqueue_job("bench_steps", work.step_dir, key, W3_STEPS))
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
    run_workloads(
        args,
        SYSTEM,
        "one `arq` worker process (max_jobs 10, poll_delay 10 ms); client polls results every 2 ms",
        work=work,
        enqueue=enqueue,
        wait_all=wait_all,
        round_trip=round_trip,
        w1_note="",
        w2_note="; enqueue_job then job.result()",
        w3=[
            W3Variant(
                "W3",
                "; job.abort() (worker cancels the asyncio task; allow_abort_jobs), "
                "terminal = abort() returning",
                cancellable,
            )
        ],
        workers2_note="two `arq` worker processes, poll_delay 10 ms",
        w4_note="no HTTP status API (Job.status() reads Redis)",
        start_workers=start_workers,
    )
    sync(pool.aclose())


if __name__ == "__main__":
    main()
