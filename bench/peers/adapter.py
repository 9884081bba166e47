"""What every peer adapter shares: its arguments, Result lines on stdout, worker process groups,
a flushed Redis database or a fresh PostgreSQL one, its work directory and the step log that
catches work done after a reported terminal state. The workload loops are in
`bench.peers.workloads`.

Runs INSIDE the peers venv (`.bench/peers-venv`), started by `bench/peers_runner.py` as
`python -m bench.peers.<peer>_bench '<json arguments>'` with the repository root on PYTHONPATH.
Only the standard library, psycopg and redis (each when a database is asked for) and
`bench.model` are imported here; peer libraries are imported by the adapter modules only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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


# --- databases -------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_database(
    args: Arguments, db: int, env_var: str | None = None
) -> Iterator[tuple[str, Any]]:
    """The peer's own Redis database (`db`), flushed before and after; yields its URL and a
    client. `env_var`, where given, passes the URL on to the peer's app module and workers."""
    import redis

    url = redis_db_url(args.redis_url, db)
    if env_var is not None:
        os.environ[env_var] = url
    store = redis.Redis.from_url(url)
    store.flushdb()
    try:
        yield url, store
    finally:
        store.flushdb()


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


# --- work directory and step log (W3) --------------------------------------------------------


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


@dataclass(frozen=True)
class Workspace:
    """A peer's corner of the work directory: worker logs and the W3 step log."""

    logs: Path
    steps: StepLog

    @classmethod
    def of(cls, args: Arguments, peer: str) -> Workspace:
        work = args.work_dir / peer
        return cls(logs=work / "logs", steps=StepLog(work / "steps"))

    @property
    def step_dir(self) -> str:
        """The step log's directory, as the tasks take it."""
        return str(self.steps.directory)
