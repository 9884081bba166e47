"""DBOS Transact, durable workflows inside the application process, with its system database on
PostgreSQL (`dbos-postgres`) and on SQLite (`dbos-sqlite`): W1 and W2 with `DBOS.start_workflow`
and `handle.get_result()`, W3 with `DBOS.cancel_workflow` on a workflow of 5 ms `@DBOS.step`s.

Run inside the peers venv: `python -m bench.peers.dbos_bench '<json arguments>'`; it reruns
itself once per store (`... '<json>' postgres|sqlite`), since DBOS is one instance per process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from dbos import DBOS, DBOSConfig

from bench.peers.adapter import (
    STEP_SECONDS,
    W3_STEPS,
    Arguments,
    Cancellable,
    Outcome,
    Samples,
    StepLog,
    fresh_database,
    guarded,
    log,
    not_measured,
    record_step,
    run_w1,
    run_w2,
    run_w3,
)

STATES: dict[str, Outcome] = {
    "CANCELLED": "cancelled",
    "SUCCESS": "completed",
    "ERROR": "failed",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
}


@DBOS.workflow(name="bench_noop")
def noop() -> None:
    return None


@DBOS.step(name="bench_step")
def one_step(step_dir: str, key: str) -> None:
    time.sleep(STEP_SECONDS)
    record_step(step_dir, key)


@DBOS.workflow(name="bench_steps")
def steps(step_dir: str, key: str, count: int) -> None:
    for _ in range(count):
        one_step(step_dir, key)


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    if len(sys.argv) > 2:
        measure(args, sys.argv[2])
        return
    for store in ("postgres", "sqlite"):
        if store == "postgres" and args.postgres_admin_url is None:
            for workload in ("W1", "W2", "W3"):
                if args.wants(workload):
                    not_measured(workload, "dbos-postgres", "unsupported", "no PostgreSQL given")
            continue
        # Output goes straight through to the runner.
        done = subprocess.run([sys.executable, "-m", "bench.peers.dbos_bench", sys.argv[1], store])
        if done.returncode != 0:
            log(f"dbos {store} exited with {done.returncode}")


@contextlib.contextmanager
def system_database(args: Arguments, store: str) -> Iterator[str]:
    if store == "sqlite":
        directory = args.work_dir / "dbos"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"dbos-{time.time_ns()}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in directory.glob(path.name + "*"):
                leftover.unlink()
    else:
        assert args.postgres_admin_url is not None
        with fresh_database(args.postgres_admin_url, "bench_dbos") as url:
            yield url


def measure(args: Arguments, store: str) -> None:
    system = f"dbos-{store}"
    steps_log = StepLog(args.work_dir / "dbos" / "steps")
    step_dir = str(steps_log.directory)
    with system_database(args, store) as url:
        config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
        DBOS(config=config)
        DBOS.launch()
        try:
            run(args, system, step_dir, steps_log)
        finally:
            DBOS.destroy(destroy_registry=False)


def run(args: Arguments, system: str, step_dir: str, steps_log: StepLog) -> None:
    def wait_all(handles: list[Any]) -> None:
        for handle in handles:
            handle.get_result()

    def round_trip() -> None:
        DBOS.start_workflow(noop).get_result()

    def terminal(handle: Any) -> Outcome | None:
        return STATES.get(handle.get_status().status)

    cancellable = Cancellable(
        start=lambda key: DBOS.start_workflow(steps, step_dir, key, W3_STEPS),
        cancel=lambda handle: DBOS.cancel_workflow(handle.workflow_id),
        terminal=terminal,
    )
    setup = f"DBOS in the measuring process, system database on {system.split('-')[1]}"
    if args.wants("W1"):
        w1 = Samples("W1", system, note=setup + "; DBOS.start_workflow, then each get_result()")
        guarded(
            "W1",
            system,
            lambda: run_w1(
                w1,
                args.repetitions,
                args.w1_operations,
                lambda: DBOS.start_workflow(noop),
                wait_all,
            ),
        )
        w1.emit()
        not_measured(
            "W1.workers2",
            system,
            "unsupported",
            "not measured: DBOS runs workflows in the application process; spreading them over "
            "two processes needs a DBOS queue shared by two applications, not set up here",
        )
    if args.wants("W2"):
        w2 = Samples("W2", system, note=setup + "; DBOS.start_workflow(...).get_result()")
        guarded("W2", system, lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip))
        w2.emit()
    if args.wants("W3"):
        w3 = Samples(
            "W3",
            system,
            note=setup + "; DBOS.cancel_workflow(id) marks the workflow CANCELLED at once; the "
            "workflow stops at its next @DBOS.step",
        )
        guarded(
            "W3",
            system,
            lambda: run_w3(w3, args.repetitions, args.w3_cancels, steps_log, cancellable),
        )
        w3.emit()
    if args.wants("W4"):
        not_measured("W4", system, "unsupported", "no HTTP status API of its own")


if __name__ == "__main__":
    main()
