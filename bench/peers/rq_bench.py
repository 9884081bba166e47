"""RQ on Redis: W1, W1.workers2, W2 (`job.latest_result(timeout=...)`) and W3
(`send_stop_job_command`: the worker kills the job's work horse), measured against `rq worker`
processes (the default Worker, which forks a work horse per job).

Run inside the peers venv: `python -m bench.peers.rq_bench '<json arguments>'`.
"""

from __future__ import annotations

import sys
from typing import Any

import redis

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

SYSTEM = "rq-redis"
REDIS_DB = 13


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    with redis_database(args, REDIS_DB) as (url, store):
        measure(args, url, store)


def measure(args: Arguments, url: str, store: redis.Redis) -> None:
    from rq import Queue
    from rq.command import send_stop_job_command
    from rq.job import Job, JobStatus

    from bench.peers import rq_tasks

    queue = Queue("bench", connection=store)
    states: dict[JobStatus, Outcome] = {
        JobStatus.STOPPED: "cancelled",
        JobStatus.CANCELED: "cancelled",
        JobStatus.FINISHED: "completed",
        JobStatus.FAILED: "failed",
    }
    work = Workspace.of(args, "rq")

    def enqueue() -> Job:
        return queue.enqueue(rq_tasks.noop)

    def done(job: Job, timeout: float) -> None:
        result = job.latest_result(timeout=max(1, round(timeout)))
        if result is None or result.type != result.Type.SUCCESSFUL:
            raise RuntimeError(f"job {job.id}: {result.type if result else 'no result in time'}")

    def wait_all(handles: list[Any]) -> None:
        for job in handles:
            done(job, 600)

    def round_trip() -> None:
        done(enqueue(), WAIT_DEADLINE_SECONDS)

    def start_workers(processes: Processes, count: int) -> None:
        for _ in range(count):
            processes.start(
                "rq-worker", [venv_bin("rq"), "worker", "--url", url, "--quiet", "bench"]
            )
        done(enqueue(), 60)

    cancellable = Cancellable(
        start=lambda key: queue.enqueue(rq_tasks.steps, work.step_dir, key, W3_STEPS),
        cancel=lambda job: send_stop_job_command(store, job.id),
        terminal=lambda job: states.get(job.get_status(refresh=True)),
    )
    run_workloads(
        args,
        SYSTEM,
        "one `rq worker` (default Worker: a forked work horse per job)",
        work=work,
        enqueue=enqueue,
        wait_all=wait_all,
        round_trip=round_trip,
        w1_note="; job.latest_result(timeout) per job",
        w2_note="; enqueue then job.latest_result(timeout)",
        w3=[
            W3Variant(
                "W3",
                "; send_stop_job_command (the worker SIGKILLs the work horse), "
                "terminal = job status STOPPED, polled every 2 ms",
                cancellable,
            )
        ],
        workers2_note="two `rq worker` processes",
        w4_note="no HTTP status API (job status is a Redis read)",
        start_workers=start_workers,
    )


if __name__ == "__main__":
    main()
