"""The workload loops (W1, W2, W3) written once against a few callables, and `run_workloads`,
the sequence every adapter runs: W1, W2 and the W3 variants against one worker, W1.workers2
against two, then W4; each workload a set of Result lines on stdout.

Runs INSIDE the peers venv, like `bench.peers.adapter`; peer libraries are imported by the
adapter modules only.
"""

from __future__ import annotations

import functools
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.model import Result
from bench.peers.adapter import (
    START_DEADLINE_SECONDS,
    W3_WATCH_SECONDS,
    WAIT_DEADLINE_SECONDS,
    Arguments,
    Outcome,
    Processes,
    StepLog,
    Workspace,
    emit,
    log,
    percentile,
    poll_until,
)


@dataclass
class Samples:
    """Per-metric samples across repetitions, turned into Results at the end."""

    workload: str
    system: str
    note: str = ""
    values: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, metric: str, value: float) -> None:
        self.values.setdefault(metric, []).append(value)

    def emit(self) -> None:
        for metric, values in self.values.items():
            unit, higher = METRICS[metric]
            emit(
                Result(
                    workload=self.workload,
                    system=self.system,
                    metric=metric,
                    unit=unit,
                    higher_is_better=higher,
                    samples=values,
                    note=self.note,
                    extra=self.extra,
                )
            )


METRICS: dict[str, tuple[str, bool]] = {
    "ops_per_second": ("ops/s", True),
    "p50_ms": ("ms", False),
    "p95_ms": ("ms", False),
    "p99_ms": ("ms", False),
    "cancelled_fraction": ("fraction", True),
    "completed": ("count", False),
    "stuck": ("count", False),
    "steps_after_terminal": ("count", False),
}
"""Metric names shared with the longrunning side of the benchmark."""


def not_measured(
    workload: str, system: str, status: Literal["unsupported", "failed"], note: str
) -> None:
    emit(
        Result(
            workload=workload,
            system=system,
            metric="status",
            unit="",
            higher_is_better=True,
            status=status,
            note=note,
        )
    )


def guarded(workload: str, system: str, run: Callable[[], None]) -> None:
    """Run one workload; any error becomes a `failed` Result instead of ending the adapter."""
    try:
        run()
    except Exception as error:
        log(traceback.format_exc())
        not_measured(workload, system, "failed", f"{type(error).__name__}: {error}"[:500])


def run_w1(
    samples: Samples,
    repetitions: int,
    operations: int,
    enqueue: Callable[[], Any],
    wait_all: Callable[[list[Any]], None],
) -> None:
    """Enqueue `operations` no-ops one call at a time, then wait until all are observed done."""
    for _ in range(repetitions):
        started = time.perf_counter()
        handles = [enqueue() for _ in range(operations)]
        enqueued = time.perf_counter()
        wait_all(handles)
        elapsed = time.perf_counter() - started
        samples.add("ops_per_second", operations / elapsed)
        samples.extra.setdefault("enqueue_seconds", []).append(round(enqueued - started, 4))
        samples.extra.setdefault("total_seconds", []).append(round(elapsed, 4))


def run_w2(
    samples: Samples, repetitions: int, round_trips: int, round_trip: Callable[[], None]
) -> None:
    for _ in range(repetitions):
        times: list[float] = []
        for _ in range(round_trips):
            started = time.perf_counter()
            round_trip()
            times.append((time.perf_counter() - started) * 1000)
        samples.add("p50_ms", percentile(times, 0.50))
        samples.add("p95_ms", percentile(times, 0.95))
        samples.add("p99_ms", percentile(times, 0.99))


@dataclass(frozen=True)
class Cancellable:
    """What W3 needs from a peer: start a stepping task, cancel it, observe its terminal state.

    `start(key)` enqueues a task doing W3_STEPS steps that appends to the step log under `key`
    and returns a handle; `cancel(handle)` sends the peer's own cancel request; `terminal(handle)`
    is the peer's current terminal state (`cancelled`, `completed`, `failed`) or None while it is
    not terminal. `cancel_and_wait`, where given, replaces cancel + polling `terminal` (for peers
    whose idiomatic cancel call itself waits, like arq's `job.abort`).
    """

    start: Callable[[str], Any]
    cancel: Callable[[Any], None]
    terminal: Callable[[Any], Outcome | None]
    cancel_and_wait: Callable[[Any, float], Outcome | None] | None = None


def run_w3(
    samples: Samples, repetitions: int, cancels: int, steps: StepLog, peer: Cancellable
) -> None:
    for _ in range(repetitions):
        latencies: list[float] = []
        outcomes = {"cancelled": 0, "completed": 0, "failed": 0, "stuck": 0}
        after_terminal = 0
        tasks_with_steps_after = 0
        not_started = 0
        for _ in range(cancels):
            key = uuid.uuid4().hex
            handle = peer.start(key)
            if not poll_until(functools.partial(steps.started, key), START_DEADLINE_SECONDS):
                not_started += 1
                outcomes["stuck"] += 1
                continue
            requested = time.monotonic()
            outcome: Outcome | None
            if peer.cancel_and_wait is not None:
                outcome = peer.cancel_and_wait(handle, WAIT_DEADLINE_SECONDS)
            else:
                peer.cancel(handle)
                outcome = poll_until(
                    functools.partial(peer.terminal, handle), WAIT_DEADLINE_SECONDS
                )
            observed = time.monotonic()
            if outcome is None:
                outcomes["stuck"] += 1
                continue
            outcomes[outcome] += 1
            latencies.append((observed - requested) * 1000)
            # Watch for work the peer does after it said the task was over.
            time.sleep(W3_WATCH_SECONDS)
            late = [stamp for stamp in steps.stamps(key) if stamp > observed]
            after_terminal += len(late)
            tasks_with_steps_after += bool(late)
        if latencies:
            samples.add("p50_ms", percentile(latencies, 0.50))
            samples.add("p99_ms", percentile(latencies, 0.99))
        samples.add("cancelled_fraction", outcomes["cancelled"] / cancels)
        samples.add("completed", outcomes["completed"])
        samples.add("stuck", outcomes["stuck"])
        samples.add("steps_after_terminal", after_terminal)
        samples.extra.setdefault("outcomes", []).append(outcomes)
        samples.extra.setdefault("tasks_with_steps_after_terminal", []).append(
            tasks_with_steps_after
        )
        samples.extra.setdefault("not_started", []).append(not_started)


# --- the sequence every adapter runs ---------------------------------------------------------


@dataclass(frozen=True)
class W3Variant:
    """One way of cancelling a peer's task, measured as `workload` (W3, W3.abortable)."""

    workload: str
    note: str
    """Appended to the setup note."""
    peer: Cancellable


def measured(workload: str, system: str, note: str, run: Callable[[Samples], None]) -> None:
    """Run one workload into fresh Samples, guarded, and print its Results."""
    samples = Samples(workload, system, note=note)
    guarded(workload, system, functools.partial(run, samples))
    samples.emit()


def run_workloads(
    args: Arguments,
    system: str,
    setup: str,
    *,
    work: Workspace,
    enqueue: Callable[[], Any],
    wait_all: Callable[[list[Any]], None],
    round_trip: Callable[[], None],
    w1_note: str,
    w2_note: str,
    w3: Sequence[W3Variant],
    workers2_note: str,
    w4_note: str,
    start_workers: Callable[[Processes, int], None] | None = None,
) -> None:
    """The workloads `args` asks for, in the order every adapter prints them.

    `setup` describes the peer's setup and starts the W1, W2 and W3 notes, `w1_note` and
    `w2_note` are appended to it; W4 is always `unsupported` for `w4_note`. With
    `start_workers(processes, count)`, W1, W2 and W3 run against one worker and W1.workers2
    (noted `workers2_note`) against two; without it (a peer running inside this process)
    W1.workers2 is `unsupported` for `workers2_note`.
    """

    def w1(samples: Samples) -> None:
        run_w1(samples, args.repetitions, args.w1_operations, enqueue, wait_all)

    def w2(samples: Samples) -> None:
        run_w2(samples, args.repetitions, args.w2_round_trips, round_trip)

    def w3_variant(variant: W3Variant, samples: Samples) -> None:
        run_w3(samples, args.repetitions, args.w3_cancels, work.steps, variant.peer)

    def one_worker() -> None:
        if args.wants("W1"):
            count = f"; {args.w1_operations} operations"
            measured("W1", system, setup + w1_note + count, w1)
            if start_workers is None:
                not_measured("W1.workers2", system, "unsupported", workers2_note)
        if args.wants("W2"):
            measured("W2", system, setup + w2_note, w2)
        if args.wants("W3"):
            for variant in w3:
                run = functools.partial(w3_variant, variant)
                measured(variant.workload, system, setup + variant.note, run)

    if start_workers is None:
        one_worker()
    else:
        with Processes(work.logs) as processes:
            start_workers(processes, 1)
            one_worker()
        if args.wants("W1.workers2"):
            with Processes(work.logs) as processes:
                start_workers(processes, 2)
                measured("W1.workers2", system, workers2_note, w1)
    if args.wants("W4"):
        not_measured("W4", system, "unsupported", w4_note)


def no_postgres(args: Arguments, system: str) -> None:
    """What a PostgreSQL peer prints when the run has no PostgreSQL."""
    for workload in ("W1", "W2", "W3"):
        if args.wants(workload):
            not_measured(workload, system, "unsupported", "no PostgreSQL given")
