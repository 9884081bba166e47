"""Dramatiq with Redis (broker and Results backend) and dramatiq-abort: W1, W1.workers2, W2, W3
(`dramatiq_abort.abort(message_id)`), measured against `dramatiq` worker processes.

Run inside the peers venv: `python -m bench.peers.dramatiq_bench '<json arguments>'`.
"""

from __future__ import annotations

import sys
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

SYSTEM = "dramatiq-redis"
REDIS_DB = 11


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    with redis_database(args, REDIS_DB, "BENCH_DRAMATIQ_REDIS"):
        measure(args)


def start_workers(processes: Processes, count: int) -> None:
    from bench.peers import dramatiq_app

    processes.start(
        "dramatiq-worker",
        [venv_bin("dramatiq"), "bench.peers.dramatiq_app", "--processes", str(count)],
    )
    dramatiq_app.noop.send().get_result(block=True, timeout=60_000)


def measure(args: Arguments) -> None:
    from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout
    from dramatiq_abort import abort

    from bench.peers import dramatiq_app

    work = Workspace.of(args, "dramatiq")
    wait_ms = int(WAIT_DEADLINE_SECONDS * 1000)

    def wait_all(handles: list[Any]) -> None:
        for message in handles:
            message.get_result(block=True, timeout=600_000)

    def round_trip() -> None:
        dramatiq_app.noop.send().get_result(block=True, timeout=wait_ms)

    def terminal(message: Any) -> Outcome | None:
        try:
            message.get_result()
        except ResultMissing:
            return None
        except ResultFailure as failure:
            return "cancelled" if "Abort" in str(failure) else "failed"
        return "completed"

    def cancel_and_wait(message: Any, deadline: float) -> Outcome | None:
        abort(message.message_id)
        try:
            message.get_result(block=True, timeout=int(deadline * 1000))
        except ResultTimeout:
            return None
        except ResultFailure as failure:
            return "cancelled" if "Abort" in str(failure) else "failed"
        return "completed"

    cancellable = Cancellable(
        start=lambda key: dramatiq_app.steps.send(work.step_dir, key, W3_STEPS),
        cancel=lambda message: abort(message.message_id),
        terminal=terminal,
        cancel_and_wait=cancel_and_wait,
    )
    run_workloads(
        args,
        SYSTEM,
        "one `dramatiq --processes 1` worker (8 threads), Redis broker, Results on Redis",
        work=work,
        enqueue=dramatiq_app.noop.send,
        wait_all=wait_all,
        round_trip=round_trip,
        w1_note="; each message's get_result(block=True)",
        w2_note="; send().get_result(block=True)",
        w3=[
            W3Variant(
                "W3",
                "; dramatiq_abort.abort(message_id) (Abortable middleware raises Abort in the "
                "worker thread), terminal = ResultFailure from get_result(block=True)",
                cancellable,
            )
        ],
        workers2_note="`dramatiq --processes 2` (8 threads each)",
        w4_note="no status API: a message has no readable state besides its stored result",
        start_workers=start_workers,
    )


if __name__ == "__main__":
    main()
