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
    Outcome,
    Workspace,
    fresh_database,
    log,
    record_step,
)
from bench.peers.workloads import Cancellable, W3Variant, no_postgres, run_workloads

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
            no_postgres(args, "dbos-postgres")
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
    work = Workspace.of(args, "dbos")
    with system_database(args, store) as url:
        config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
        DBOS(config=config)
        DBOS.launch()
        try:
            run(args, system, work)
        finally:
            DBOS.destroy(destroy_registry=False)


def run(args: Arguments, system: str, work: Workspace) -> None:
    def wait_all(handles: list[Any]) -> None:
        for handle in handles:
            handle.get_result()

    def round_trip() -> None:
        DBOS.start_workflow(noop).get_result()

    def terminal(handle: Any) -> Outcome | None:
        return STATES.get(handle.get_status().status)

    cancellable = Cancellable(
        start=lambda key: DBOS.start_workflow(steps, work.step_dir, key, W3_STEPS),
        cancel=lambda handle: DBOS.cancel_workflow(handle.workflow_id),
        terminal=terminal,
    )
    run_workloads(
        args,
        system,
        f"DBOS in the measuring process, system database on {system.split('-')[1]}",
        work=work,
        enqueue=lambda: DBOS.start_workflow(noop),
        wait_all=wait_all,
        round_trip=round_trip,
        w1_note="; DBOS.start_workflow, then each get_result()",
        w2_note="; DBOS.start_workflow(...).get_result()",
        w3=[
            W3Variant(
                "W3",
                "; DBOS.cancel_workflow(id) marks the workflow CANCELLED at once; the workflow "
                "stops at its next @DBOS.step",
                cancellable,
            )
        ],
        workers2_note="not measured: DBOS runs workflows in the application process; spreading "
        "them over two processes needs a DBOS queue shared by two applications, not set up here",
        w4_note="no HTTP status API of its own",
    )


if __name__ == "__main__":
    main()
