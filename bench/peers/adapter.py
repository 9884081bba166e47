"""What every peer adapter shares: its arguments, the workload loops (W1, W2, W3) written once
against a few callables, Result lines on stdout, worker process groups, fresh PostgreSQL
databases and the step log that catches work done after a reported terminal state.

Runs INSIDE the peers venv (`.bench/peers-venv`), started by `bench/peers_runner.py` as
`python -m bench.peers.<peer>_bench '<json arguments>'` with the repository root on PYTHONPATH.
Only the standard library, psycopg (for databases) and `bench.model` are imported here; peer
libraries are imported by the adapter modules only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from bench.model import Result

POLL_SECONDS = 0.002
"""How often a client polls a peer's status where the peer offers no blocking wait."""
STEP_SECONDS = 0.005
W3_STEPS = 400
"""A W3 task that is never stopped completes after about 2 s."""
W3_WATCH_SECONDS = 0.2
"""How long after the reported terminal state the step log is watched for more steps."""
START_DEADLINE_SECONDS = 60.0
WAIT_DEADLINE_SECONDS = 10.0

Outcome = Literal["cancelled", "completed", "failed", "stuck"]


@dataclass(frozen=True)
class Arguments:
    """The slice of `bench.scale.Scale` an adapter needs, passed as JSON in argv[1]."""

    workloads: frozenset[str]
    repetitions: int
    w1_operations: int
    w2_round_trips: int
    w3_cancels: int
    redis_url: str
    postgres_admin_url: str | None
    work_dir: Path

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> Arguments:
        """Parse argv[1]; also make SIGTERM (the runner's timeout) unwind so workers get killed."""
        signal.signal(signal.SIGTERM, exit_on_signal)
        raw = json.loads(argv[1])
        return cls(
            workloads=frozenset(raw["workloads"]),
            repetitions=int(raw["repetitions"]),
            w1_operations=int(raw["w1_operations"]),
            w2_round_trips=int(raw["w2_round_trips"]),
            w3_cancels=int(raw["w3_cancels"]),
            redis_url=str(raw["redis_url"]),
            postgres_admin_url=raw.get("postgres_admin_url"),
            work_dir=Path(raw["work_dir"]),
        )

    def wants(self, workload: str) -> bool:
        return workload.split(".")[0] in self.workloads or workload in self.workloads


def exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def emit(result: Result) -> None:
    print(json.dumps(result.to_json()), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(fraction * 100) - 1]


def redis_db_url(base: str, db: int) -> str:
    """The same Redis server with another database number: each peer keeps to its own."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def poll_until(check: Callable[[], Any], deadline_seconds: float) -> Any:
    """`check()`'s first truthy value, or None once the deadline has passed."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_SECONDS)


# --- processes -------------------------------------------------------------------------------


class Processes:
    """Worker processes, each in its own process group, all killed on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{name}-{len(self.started)}.log").open("ab")
        self.started.append(
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        )
        out.close()
        # The runner kills these groups too, should this adapter itself be killed.
        groups = os.environ.get("BENCH_PROCESS_GROUPS")
        if groups:
            with open(groups, "a") as record:
                record.write(f"{self.started[-1].pid}\n")

    def check_alive(self) -> None:
        for process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"worker {process.args!r} exited with {process.returncode}")

    def stop(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.started = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def venv_bin(name: str) -> str:
    """A console script of the peers venv (the one running this adapter)."""
    return str(Path(sys.executable).parent / name)


# --- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new empty database on the admin URL's server, dropped afterwards; yields its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- step log (W3) ---------------------------------------------------------------------------


class StepLog:
    """One file per W3 task; each finished 5 ms step appends `time.monotonic()` to it.

    CLOCK_MONOTONIC is system-wide on Linux, so worker and client stamps compare directly.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.directory / key

    def stamps(self, key: str) -> list[float]:
        try:
            text = self.path(key).read_text()
        except FileNotFoundError:
            return []
        return [float(line) for line in text.split()]

    def started(self, key: str) -> bool:
        try:
            return self.path(key).stat().st_size > 0
        except FileNotFoundError:
            return False


def record_step(step_dir: str, key: str) -> None:
    """Called by the task after each 5 ms of work (inside the peer's worker)."""
    with open(os.path.join(step_dir, key), "a") as out:
        out.write(f"{time.monotonic()!r}\n")


# --- workload loops --------------------------------------------------------------------------


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
