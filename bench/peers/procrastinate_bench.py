"""Procrastinate on PostgreSQL (a fresh database per run): W1, W1.workers2, W2 (defer, then poll
the job's status: Procrastinate keeps no results) and W3 (`cancel_job_by_id(abort=True)`),
measured against `procrastinate worker` processes.

Run inside the peers venv: `python -m bench.peers.procrastinate_bench '<json arguments>'`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from bench.peers.adapter import (
    W3_STEPS,
    WAIT_DEADLINE_SECONDS,
    Arguments,
    Cancellable,
    Outcome,
    Processes,
    Samples,
    StepLog,
    fresh_database,
    guarded,
    not_measured,
    poll_until,
    run_w1,
    run_w2,
    run_w3,
    venv_bin,
)

SYSTEM = "procrastinate-postgres"


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    if args.postgres_admin_url is None:
        for workload in ("W1", "W2", "W3"):
            if args.wants(workload):
                not_measured(workload, SYSTEM, "unsupported", "no PostgreSQL given")
        return
    with fresh_database(args.postgres_admin_url, "bench_procrastinate") as url:
        os.environ["BENCH_PROCRASTINATE_DSN"] = url
        measure(args)


def measure(args: Arguments) -> None:
    from procrastinate.jobs import Status

    from bench.peers import procrastinate_app

    app = procrastinate_app.app
    states: dict[Status, Outcome] = {
        Status.ABORTED: "cancelled",
        Status.CANCELLED: "cancelled",
        Status.SUCCEEDED: "completed",
        Status.FAILED: "failed",
    }
    work = args.work_dir / "procrastinate"
    steps = StepLog(work / "steps")
    step_dir = str(steps.directory)
    with app.open():
        app.schema_manager.apply_schema()
        manager = app.job_manager

        def terminal(job_id: int) -> Outcome | None:
            return states.get(manager.get_job_status(job_id))

        def done(job_id: int, deadline: float) -> None:
            outcome = poll_until(lambda: terminal(job_id), deadline)
            if outcome != "completed":
                raise RuntimeError(f"job {job_id}: {outcome or 'not done in time'}")

        def enqueue() -> int:
            job_id: int = procrastinate_app.noop.defer()
            return job_id

        def wait_all(handles: list[Any]) -> None:
            for job_id in handles:
                done(job_id, 600)

        def round_trip() -> None:
            done(enqueue(), WAIT_DEADLINE_SECONDS)

        def start_workers(processes: Processes, count: int) -> None:
            for _ in range(count):
                processes.start(
                    "procrastinate-worker",
                    [
                        venv_bin("procrastinate"),
                        "--app",
                        "bench.peers.procrastinate_app.app",
                        "worker",
                    ],
                )
            done(enqueue(), 60)

        cancellable = Cancellable(
            start=lambda key: procrastinate_app.steps.defer(
                step_dir=step_dir, key=key, count=W3_STEPS
            ),
            cancel=lambda job_id: manager.cancel_job_by_id(job_id, abort=True),
            terminal=terminal,
        )
        setup = (
            "one `procrastinate worker` process (concurrency 1, LISTEN/NOTIFY); "
            "client polls the job status every 2 ms"
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
                w2 = Samples(
                    "W2", SYSTEM, note=setup + "; defer() then poll the status (no results)"
                )
                guarded(
                    "W2",
                    SYSTEM,
                    lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip),
                )
                w2.emit()
            if args.wants("W3"):
                w3 = Samples(
                    "W3",
                    SYSTEM,
                    note=setup + "; cancel_job_by_id(id, abort=True): the worker cancels the async "
                    "task and marks the job aborted",
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
                w12 = Samples("W1.workers2", SYSTEM, note="two `procrastinate worker` processes")
                guarded(
                    "W1.workers2",
                    SYSTEM,
                    lambda: run_w1(w12, args.repetitions, args.w1_operations, enqueue, wait_all),
                )
                w12.emit()
    if args.wants("W4"):
        not_measured(
            "W4", SYSTEM, "unsupported", "no HTTP status API (the job status is a SQL read)"
        )


if __name__ == "__main__":
    main()
