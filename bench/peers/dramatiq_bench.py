"""Dramatiq with Redis (broker and Results backend) and dramatiq-abort: W1, W1.workers2, W2, W3
(`dramatiq_abort.abort(message_id)`), measured against `dramatiq` worker processes.

Run inside the peers venv: `python -m bench.peers.dramatiq_bench '<json arguments>'`.
"""

from __future__ import annotations

import os
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

SYSTEM = "dramatiq-redis"
REDIS_DB = 11


def main() -> None:
    args = Arguments.from_argv(sys.argv)
    url = redis_db_url(args.redis_url, REDIS_DB)
    os.environ["BENCH_DRAMATIQ_REDIS"] = url
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        measure(args)
    finally:
        store.flushdb()


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

    work = args.work_dir / "dramatiq"
    steps = StepLog(work / "steps")
    step_dir = str(steps.directory)
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
        start=lambda key: dramatiq_app.steps.send(step_dir, key, W3_STEPS),
        cancel=lambda message: abort(message.message_id),
        terminal=terminal,
        cancel_and_wait=cancel_and_wait,
    )
    setup = "one `dramatiq --processes 1` worker (8 threads), Redis broker, Results on Redis"
    with Processes(work / "logs") as processes:
        start_workers(processes, 1)
        if args.wants("W1"):
            w1 = Samples("W1", SYSTEM, note=setup + "; each message's get_result(block=True)")
            guarded(
                "W1",
                SYSTEM,
                lambda: run_w1(
                    w1, args.repetitions, args.w1_operations, dramatiq_app.noop.send, wait_all
                ),
            )
            w1.emit()
        if args.wants("W2"):
            w2 = Samples("W2", SYSTEM, note=setup + "; send().get_result(block=True)")
            guarded(
                "W2", SYSTEM, lambda: run_w2(w2, args.repetitions, args.w2_round_trips, round_trip)
            )
            w2.emit()
        if args.wants("W3"):
            w3 = Samples(
                "W3",
                SYSTEM,
                note=setup + "; dramatiq_abort.abort(message_id) (Abortable middleware raises "
                "Abort in the worker thread), terminal = ResultFailure from get_result(block=True)",
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
            w12 = Samples("W1.workers2", SYSTEM, note="`dramatiq --processes 2` (8 threads each)")
            guarded(
                "W1.workers2",
                SYSTEM,
                lambda: run_w1(
                    w12, args.repetitions, args.w1_operations, dramatiq_app.noop.send, wait_all
                ),
            )
            w12.emit()
    if args.wants("W4"):
        not_measured(
            "W4",
            SYSTEM,
            "unsupported",
            "no status API: a message has no readable state besides its stored result",
        )


if __name__ == "__main__":
    main()
