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

SYSTEM = "rq-redis"
REDIS_DB = 13


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    url = redis_db_url(args.redis_url, REDIS_DB)
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        measure(args, url, store)
    finally:
        store.flushdb()


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
    work = args.work_dir / "rq"
    steps = StepLog(work / "steps")
    step_dir = str(steps.directory)

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
        start=lambda key: queue.enqueue(rq_tasks.steps, step_dir, key, W3_STEPS),
        cancel=lambda job: send_stop_job_command(store, job.id),
        terminal=lambda job: states.get(job.get_status(refresh=True)),
    )
    setup = "one `rq worker` (default Worker: a forked work horse per job)"
    with Processes(work / "logs") as processes:
        start_workers(processes, 1)
        if args.wants("W1"):
            w1 = Samples("W1", SYSTEM, note=setup + "; job.latest_result(timeout) per job")
            guarded(
                "W1",
                SYSTEM,
                lambda: run_w1(w1, args.repetitions, args.w1_operations, enqueue, wait_all),
            )
            w1.emit()
        if args.wants("W2"):
            w2 = Samples("W2", SYSTEM, note=setup + "; enqueue then job.latest_result(timeout)")
            guarded(
                "W2", SYSTEM, lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip)
            )
            w2.emit()
        if args.wants("W3"):
            w3 = Samples(
                "W3",
                SYSTEM,
                note=setup + "; send_stop_job_command (the worker SIGKILLs the work horse), "
                "terminal = job status STOPPED, polled every 2 ms",
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
            w12 = Samples("W1.workers2", SYSTEM, note="two `rq worker` processes")
            guarded(
                "W1.workers2",
                SYSTEM,
                lambda: run_w1(w12, args.repetitions, args.w1_operations, enqueue, wait_all),
            )
            w12.emit()
    if args.wants("W4"):
        not_measured("W4", SYSTEM, "unsupported", "no HTTP status API (job status is a Redis read)")


if __name__ == "__main__":
    main()
