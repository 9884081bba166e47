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
    Outcome,
    Processes,
    Workspace,
    fresh_database,
    poll_until,
    venv_bin,
)
from bench.peers.workloads import Cancellable, W3Variant, no_postgres, run_workloads

SYSTEM = "procrastinate-postgres"


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    if args.postgres_admin_url is None:
        no_postgres(args, SYSTEM)
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
    work = Workspace.of(args, "procrastinate")
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
                step_dir=work.step_dir, key=key, count=W3_STEPS
            ),
            cancel=lambda job_id: manager.cancel_job_by_id(job_id, abort=True),
            terminal=terminal,
        )
        run_workloads(
            args,
            SYSTEM,
            "one `procrastinate worker` process (concurrency 1, LISTEN/NOTIFY); "
            "client polls the job status every 2 ms",
            work=work,
            enqueue=enqueue,
            wait_all=wait_all,
            round_trip=round_trip,
            w1_note="",
            w2_note="; defer() then poll the status (no results)",
            w3=[
                W3Variant(
                    "W3",
                    "; cancel_job_by_id(id, abort=True): the worker cancels the async task and "
                    "marks the job aborted",
                    cancellable,
                )
            ],
            workers2_note="two `procrastinate worker` processes",
            w4_note="no HTTP status API (the job status is a SQL read)",
            start_workers=start_workers,
        )


if __name__ == "__main__":
    main()
