"""W1 (throughput), W2 (round trip) and W3 (cancel) on longrunning, with the SQLite and the
PostgreSQL store, and the W1 ceilings: raw SQLite (WAL) and raw PostgreSQL doing the same three
committed writes per operation that longrunning does (insert, claim, finish).

Every repetition gets a fresh store (a new SQLite file, a new PostgreSQL database dropped
afterwards) and fresh processes, killed (process group SIGKILL) when it ends, even on errors.
Topology: `longrunning serve` with its embedded worker is the one worker process (the idiomatic
single-node deployment: `scripts/serve`); `W1.workers2` adds one `longrunning worker` process on
the same store. The client is this process, over HTTP with the native API.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from bench.model import Result
from bench.scale import Scale
from longrunning.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.acceptance.processes import NodeProcess  # noqa: E402
from tests.postgres_servers import create_database, drop_database  # noqa: E402

API = "/api/v1/operations"
Json = dict[str, Any]
_T = TypeVar("_T")

SQLITE = "longrunning-sqlite"
POSTGRES = "longrunning-postgres"
W1_CLIENT_CONCURRENCY = 32
"""Single starts in flight at once from the client (one HTTP connection each)."""
W1_BATCH = 100
"""Starts per `:batchStart` request in W1 (the batched variants)."""
W1_BATCHES_IN_FLIGHT = 4
W1_DEADLINE_SECONDS = 300.0
W2_WARMUP = 5
W3_STEPS = 6000
"""Steps of 5 ms: 30 s, far longer than the cancels take; an operation that completes anyway is
counted `completed`."""
W3_TERMINAL_TIMEOUT_SECONDS = 10.0
"""A cancelled operation not terminal this long after the cancel request is `stuck`."""
W3_LOOK_AFTER_SECONDS = 0.5
"""How long after the last terminal state the handlers' traces are watched for late steps."""
COMMITS_PER_OPERATION = 3
"""What longrunning commits for one operation that runs without progress: the insert at start,
the claim (PENDING -> RUNNING under a lease), the end (SUCCEEDED)."""


# ---------------------------------------------------------------------------------------------
# Stores and processes


@contextlib.contextmanager
def fresh_store(system: str, scale: Scale, tag: str) -> Iterator[str]:
    """A store URL for a new, empty store of the system's kind, removed afterwards."""
    if system == SQLITE:
        directory = scale.work_dir / "stores"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{tag}-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path.resolve()}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
    else:
        admin = scale.postgres_admin_url
        if admin is None:
            raise RuntimeError("no PostgreSQL server (postgres_admin_url is None)")
        name = f"bench_{tag.replace('-', '_').replace('.', '_')}_{uuid.uuid4().hex[:8]}".lower()
        url = create_database(admin, name)
        try:
            yield url
        finally:
            drop_database(admin, name)


def _node_env(store_url: str, data_dir: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
        "LONGRUNNING_STORE": store_url,
        "LONGRUNNING_DATA_DIR": str(data_dir),
        "LONGRUNNING_LOG_LEVEL": "warning",
    }


def migrate(store_url: str) -> None:
    """Create the store's schema before any node starts (in this process: a `longrunning
    migrate` subprocess would cost seconds of imports)."""

    async def run() -> None:
        store = open_store(store_url, migrate=True)
        await store.open()
        await store.close()

    asyncio.run(run())


@contextlib.contextmanager
def deployment(
    store_url: str,
    work_dir: Path,
    *,
    extra_workers: int = 0,
    concurrency: int = 16,
    embedded: bool = True,
) -> Iterator[str]:
    """`longrunning serve` (with its embedded worker unless `embedded` is false) plus
    `extra_workers` `longrunning worker` processes on store_url, loading bench.handlers; yields
    the API's URL; kills them all."""
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _node_env(store_url, data_dir)
    if extra_workers:
        migrate(store_url)  # before two processes race to do it
    nodes: list[NodeProcess] = []
    try:
        slots = str(concurrency) if embedded else "0"
        serve = ["serve", "--port", "0", "--workers", slots, "--handlers", "bench.handlers"]
        nodes.append(NodeProcess(*serve, env=env, log=work_dir / "serve.log"))
        for i in range(extra_workers):
            worker = ["worker", "--concurrency", str(concurrency), "--handlers", "bench.handlers"]
            nodes.append(NodeProcess(*worker, env=env, log=work_dir / f"worker{i}.log"))
        yield nodes[0].url
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.kill()


@contextlib.asynccontextmanager
async def running_system(
    system: str,
    scale: Scale,
    tag: str,
    *,
    extra_workers: int = 0,
    concurrency: int = 16,
    embedded: bool = True,
) -> AsyncIterator[str]:
    """A fresh store and the processes on it, for one repetition; yields the API's URL."""
    work_dir = scale.work_dir / "runs" / f"{tag}-{uuid.uuid4().hex[:6]}"
    work_dir.mkdir(parents=True, exist_ok=True)
    stack = contextlib.ExitStack()
    try:
        store_url = await asyncio.to_thread(stack.enter_context, fresh_store(system, scale, tag))
        url = await asyncio.to_thread(
            stack.enter_context,
            deployment(
                store_url,
                work_dir,
                extra_workers=extra_workers,
                concurrency=concurrency,
                embedded=embedded,
            ),
        )
        yield url
    finally:
        await asyncio.to_thread(stack.close)


def http_client(url: str, connections: int = 8) -> httpx.AsyncClient:
    # uvicorn closes a connection idle for 5 s; httpx would keep it for 5 s too, and a request
    # sent on it as the server closes it fails (ReadError). Let the client give up first.
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits)


async def _json(response: Awaitable[httpx.Response]) -> Json:
    answer = await response
    answer.raise_for_status()
    body: Json = answer.json()
    return body


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def repeat(
    scale: Scale, what: str, once: Callable[[int], Awaitable[_T]]
) -> tuple[list[_T], list[str]]:
    """`once(repetition)` for every repetition; a repetition that raises is left out and said
    why. Raises only when every repetition failed."""
    done: list[_T] = []
    failures: list[str] = []
    for rep in range(scale.repetitions):
        try:
            done.append(await once(rep))
        except Exception as exc:
            failures.append(f"repetition {rep + 1} failed: {exc!r}"[:300])
            print(f"bench: {what}: {failures[-1]}", file=sys.stderr)
    if not done:
        raise RuntimeError("; ".join(failures))
    return done, failures


def _with_failures(note: str, failures: list[str]) -> str:
    return f"{note}; {'; '.join(failures)}" if failures else note


# ---------------------------------------------------------------------------------------------
# W1: throughput


async def w1_once(url: str, operations: int, *, batch: int = 1) -> tuple[float, Json]:
    """Start `operations` bench.noop operations, one per request with W1_CLIENT_CONCURRENCY in
    flight, or `batch` per `:batchStart` request with W1_BATCHES_IN_FLIGHT in flight; time from
    the first start until a listing shows none left undone. Returns ops/s and details."""
    async with http_client(url, W1_CLIENT_CONCURRENCY + 2) as http:
        body = {"kind": "bench.noop"}
        sizes = [min(batch, operations - i) for i in range(0, operations, batch)]
        remaining = iter(sizes)

        async def starter() -> None:
            for size in remaining:
                if batch == 1:
                    await _json(http.post(API, json=body))
                else:
                    await _json(http.post(f"{API}:batchStart", json={"requests": [body] * size}))

        began = time.monotonic()
        async with asyncio.timeout(W1_DEADLINE_SECONDS):
            in_flight = W1_CLIENT_CONCURRENCY if batch == 1 else W1_BATCHES_IN_FLIGHT
            await asyncio.gather(*(starter() for _ in range(in_flight)))
            started = time.monotonic()
            undone = {"filter": "done = false", "pageSize": "1"}
            # Polling the server is the point: what a client sees is what is measured.
            while (await _json(http.get(API, params=undone))).get("operations"):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        ended = time.monotonic()
        failed = await _json(http.get(API, params={"filter": "state != SUCCEEDED"}))
    not_succeeded = len(failed.get("operations", []))
    if not_succeeded:
        raise RuntimeError(f"{not_succeeded} operations did not succeed")
    elapsed = ended - began
    details = {"seconds": round(elapsed, 3), "start_seconds": round(started - began, 3)}
    return operations / elapsed, details


W1_VARIANTS = {
    "W1": (0, W1_BATCH),
    "W1.workers2": (1, W1_BATCH),
    "W1.single": (0, 1),
}
"""Each W1 variant: (worker processes beside serve's embedded one, starts per request)."""


async def measure_w1(system: str, scale: Scale, workload: str) -> Result:
    extra_workers, batch = W1_VARIANTS[workload]

    async def once(rep: int) -> tuple[float, Json]:
        tag = f"w1-{system}-{rep}"
        async with running_system(system, scale, tag, extra_workers=extra_workers) as url:
            # A short warm-up, so that imports and first connections are not timed.
            await w1_once(url, min(50, scale.w1_operations), batch=batch)
            return await w1_once(url, scale.w1_operations, batch=batch)

    done, failures = await repeat(scale, f"{workload} on {system}", once)
    samples = [round(ops_per_second, 1) for ops_per_second, _ in done]
    details = [detail for _, detail in done]
    processes = "serve (embedded worker)" + (f" + {extra_workers} worker" if extra_workers else "")
    how = (
        f"one per request, {W1_CLIENT_CONCURRENCY} in flight"
        if batch == 1
        else f"{batch} per :batchStart request, {W1_BATCHES_IN_FLIGHT} in flight"
    )
    return Result(
        workload=workload,
        system=system,
        metric="ops_per_second",
        unit="ops/s",
        higher_is_better=True,
        samples=samples,
        note=_with_failures(
            f"{scale.w1_operations} bench.noop starts over HTTP, {how}, until a listing shows "
            f"none undone; {processes}, 16 slots each",
            failures,
        ),
        extra={"operations": scale.w1_operations, "repetitions": details, "failures": failures},
    )


# ---------------------------------------------------------------------------------------------
# W1 ceilings: the same committed writes per operation, without longrunning


_CEILING_INSERT = (
    "INSERT INTO operations (id, parent, kind, state, create_time, update_time, cancellable,"
    " progress_percent, metadata, request, result, attempt, max_attempts, idempotent, labels,"
    " queue, lease_epoch, version) VALUES ({p}, 'projects/local/locations/local', 'bench.noop',"
    " 'PENDING', {p}, {p}, {true}, 0, '{{}}', '{{}}', 'null', 0, 1, {false}, '{{}}', 'default',"
    " 0, 1)"
)
_CEILING_CLAIM = (
    "UPDATE operations SET state = 'RUNNING', update_time = {p}, start_time = {p}, attempt = 1,"
    " lease_owner = 'ceiling', lease_epoch = 1, lease_expires_at = {p}, version = 2"
    " WHERE id = {p} AND version = 1"
)
_CEILING_FINISH = (
    "UPDATE operations SET state = 'SUCCEEDED', update_time = {p}, end_time = {p},"
    " progress_percent = 100, lease_owner = NULL, lease_expires_at = NULL, version = 3"
    " WHERE id = {p} AND version = 2"
)


def _sqlite_ceiling_once(store_url: str, synchronous: str, n: int) -> float:
    migrate(store_url)
    path = store_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        marks = {"p": "?", "true": "1", "false": "0"}
        insert, claim, finish = (s.format(**marks) for s in _CEILING_STATEMENTS)
        began = time.monotonic()
        for _ in range(n):
            op_id, now = str(uuid.uuid4()), int(time.time() * 1_000_000)
            for sql, params in (
                (insert, (op_id, now, now)),
                (claim, (now, now, now + 10_000_000, op_id)),
                (finish, (now, now, op_id)),
            ):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, params)
                conn.execute("COMMIT")
        return n / (time.monotonic() - began)
    finally:
        conn.close()


def _postgres_ceiling_once(store_url: str, n: int) -> float:
    migrate(store_url)
    with psycopg.connect(store_url) as conn:
        marks = {"p": "%s", "true": "true", "false": "false"}
        insert, claim, finish = (s.format(**marks) for s in _CEILING_STATEMENTS)
        began = time.monotonic()
        for _ in range(n):
            op_id, now = str(uuid.uuid4()), datetime.now().astimezone()
            conn.execute(insert, (op_id, now, now))
            conn.commit()
            conn.execute(claim, (now, now, now, op_id))
            conn.commit()
            conn.execute(finish, (now, now, op_id))
            conn.commit()
        return n / (time.monotonic() - began)


_CEILING_STATEMENTS = (_CEILING_INSERT, _CEILING_CLAIM, _CEILING_FINISH)


async def measure_ceiling(name: str, scale: Scale) -> Result:
    store_system = POSTGRES if name == "ceiling-postgres" else SQLITE
    synchronous = "NORMAL" if name == "ceiling-sqlite-wal-normal" else "FULL"

    async def once(rep: int) -> float:
        with fresh_store(store_system, scale, f"{name}-{rep}") as store_url:
            if store_system == POSTGRES:
                return await asyncio.to_thread(
                    _postgres_ceiling_once, store_url, scale.w1_operations
                )
            return await asyncio.to_thread(
                _sqlite_ceiling_once, store_url, synchronous, scale.w1_operations
            )

    rates, failures = await repeat(scale, name, once)
    samples = [round(rate, 1) for rate in rates]
    how = (
        "PostgreSQL, one connection, synchronous_commit on"
        if store_system == POSTGRES
        else f"SQLite WAL, synchronous={synchronous}, one connection, BEGIN IMMEDIATE"
    )
    return Result(
        workload="W1",
        system=name,
        metric="ops_per_second",
        unit="ops/s",
        higher_is_better=True,
        samples=samples,
        note=_with_failures(
            f"{COMMITS_PER_OPERATION} commits per operation (insert, claim, finish) on "
            f"longrunning's own schema and indexes; {how}; sequential, in-process",
            failures,
        ),
        extra={"operations": scale.w1_operations, "commits_per_operation": COMMITS_PER_OPERATION},
    )


# ---------------------------------------------------------------------------------------------
# W2: round trip


async def w2_once(url: str, round_trips: int) -> list[float]:
    """Sequential start -> :wait until done; milliseconds per round trip."""
    timings: list[float] = []
    async with http_client(url, 2) as http:
        for i in range(W2_WARMUP + round_trips):
            began = time.perf_counter()
            op = await _json(http.post(API, json={"kind": "bench.noop"}))
            if not op.get("done"):
                op = await _json(http.post(f"{API}/{op['id']}:wait", params={"timeout": "30s"}))
            elapsed = time.perf_counter() - began
            if op.get("state") != "SUCCEEDED":
                raise RuntimeError(f"operation {op['id']} ended {op.get('state')}")
            if i >= W2_WARMUP:
                timings.append(elapsed * 1000)
    return timings


async def measure_w2(system: str, scale: Scale) -> list[Result]:

    async def once(rep: int) -> list[float]:
        async with running_system(system, scale, f"w2-{system}-{rep}") as url:
            return await w2_once(url, scale.w2_round_trips)

    per_rep, failures = await repeat(scale, f"W2 on {system}", once)
    note = _with_failures(
        f"{scale.w2_round_trips} sequential POST /operations (bench.noop) then POST :wait, one "
        f"client, after {W2_WARMUP} warm-up round trips; serve with its embedded worker",
        failures,
    )
    return [
        Result(
            workload="W2",
            system=system,
            metric=f"p{q}_ms",
            unit="ms",
            higher_is_better=False,
            samples=[round(percentile(t, q / 100), 3) for t in per_rep],
            note=note,
            extra={"round_trips": scale.w2_round_trips},
        )
        for q in (50, 95, 99)
    ]


# ---------------------------------------------------------------------------------------------
# W3: cancel


@dataclass
class CancelRecord:
    op_id: str
    cancel_at: float
    """time.monotonic() when the cancel request was sent."""
    terminal_seen_at: float | None
    """time.monotonic() when the client first had the terminal state in hand; None: stuck."""
    state: str
    cancel_outcome: str | None
    end_time: str | None


async def _observe_running(http: httpx.AsyncClient, op_id: str) -> Json:
    deadline = time.monotonic() + W3_TERMINAL_TIMEOUT_SECONDS
    while True:
        op = await _json(http.get(f"{API}/{op_id}"))
        if op.get("state") != "PENDING" or time.monotonic() > deadline:
            return op
        await asyncio.sleep(0.005)


async def _cancel_and_observe(http: httpx.AsyncClient, op_id: str) -> CancelRecord:
    cancel_at = time.monotonic()
    op = await _json(http.post(f"{API}/{op_id}:cancel"))
    if not op.get("done"):
        wait = f"{int(W3_TERMINAL_TIMEOUT_SECONDS)}s"
        op = await _json(http.post(f"{API}/{op_id}:wait", params={"timeout": wait}))
    seen = time.monotonic() if op.get("done") else None
    return CancelRecord(
        op_id, cancel_at, seen, str(op.get("state")), op.get("cancelOutcome"), op.get("endTime")
    )


def _parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _late_steps(trace: Path, record: CancelRecord) -> dict[str, int]:
    """Steps the handler took after the cancel request, after the client saw the terminal state,
    and after the store's endTime (wall clock), and whether it exited after either."""
    counts = {"after_cancel": 0, "after_terminal": 0, "after_end_time": 0, "exit_after": 0}
    if not trace.exists():
        return counts
    end_wall = _parse_rfc3339(record.end_time) if record.end_time else None
    for line in trace.read_text().splitlines():
        what, mono_text, wall_text = line.split()
        mono, wall = float(mono_text), float(wall_text)
        late_terminal = record.terminal_seen_at is not None and mono > record.terminal_seen_at
        late_end = end_wall is not None and wall > end_wall
        if what == "exit":
            counts["exit_after"] += int(late_terminal or late_end)
            continue
        counts["after_cancel"] += int(mono > record.cancel_at)
        counts["after_terminal"] += int(late_terminal)
        counts["after_end_time"] += int(late_end)
    return counts


async def w3_once(url: str, cancels: int, trace_dir: Path) -> Json:
    """Start `cancels` bench.steps operations; once each is seen RUNNING, cancel it and wait for
    its terminal state, one after the other while the others keep running."""
    request = {"steps": W3_STEPS, "step_seconds": 0.005, "trace_dir": str(trace_dir)}
    async with http_client(url, 8) as http:
        started = await asyncio.gather(
            *(
                _json(http.post(API, json={"kind": "bench.steps", "request": request}))
                for _ in range(cancels)
            )
        )
        records: list[CancelRecord] = []
        for op in started:
            seen = await _observe_running(http, op["id"])
            if seen.get("state") != "RUNNING":
                raise RuntimeError(f"operation {op['id']} never seen RUNNING: {seen.get('state')}")
            records.append(await _cancel_and_observe(http, op["id"]))
        # Watch the traces a while longer: a handler still stepping now would be the lie.
        await asyncio.sleep(W3_LOOK_AFTER_SECONDS)
    latencies = [
        (r.terminal_seen_at - r.cancel_at) * 1000 for r in records if r.terminal_seen_at is not None
    ]
    late = [_late_steps(trace_dir / r.op_id, r) for r in records]
    outcomes: dict[str, int] = {}
    for r in records:
        key = f"{r.state}/{r.cancel_outcome}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "latencies_ms": latencies,
        "cancelled": sum(r.state == "CANCELLED" for r in records),
        "completed": sum(r.state == "SUCCEEDED" for r in records),
        "stuck": sum(r.terminal_seen_at is None for r in records),
        "steps_after_terminal": sum(c["after_terminal"] for c in late),
        "steps_after_end_time": sum(c["after_end_time"] for c in late),
        "steps_after_cancel_request": sum(c["after_cancel"] for c in late),
        "exits_after_terminal": sum(c["exit_after"] for c in late),
        "outcomes": outcomes,
    }


async def measure_w3(system: str, scale: Scale, *, across_nodes: bool = False) -> list[Result]:
    """W3; `across_nodes`: the client talks to an API node (`serve --workers 0`) and the
    operations run in a separate `longrunning worker`, so the cancel reaches them through the
    store."""
    workload = "W3.across-nodes" if across_nodes else "W3"
    concurrency = max(16, scale.w3_cancels + 8)

    async def once(rep: int) -> Json:
        tag = f"{workload}-{system}-{rep}"
        async with running_system(
            system,
            scale,
            tag,
            concurrency=concurrency,
            extra_workers=int(across_nodes),
            embedded=not across_nodes,
        ) as url:
            trace_dir = (scale.work_dir / "traces" / f"{tag}-{uuid.uuid4().hex[:6]}").resolve()
            await asyncio.to_thread(trace_dir.mkdir, parents=True)
            return await w3_once(url, scale.w3_cancels, trace_dir)

    reps, failures = await repeat(scale, f"{workload} on {system}", once)
    note = _with_failures(
        f"{scale.w3_cancels} bench.steps running at once (5 ms steps, ctx.checkpoint() between "
        "them); each cancelled once seen RUNNING, one after the other; latency from the cancel "
        "request until :wait returned the terminal state; steps traced with CLOCK_MONOTONIC; "
        + (
            "API node `serve --workers 0` + one `worker` process"
            if across_nodes
            else "serve with its embedded worker"
        ),
        failures,
    )
    details = [{k: v for k, v in r.items() if k != "latencies_ms"} for r in reps]
    n = scale.w3_cancels

    def result(metric: str, unit: str, higher: bool, samples: list[float]) -> Result:
        return Result(
            workload=workload,
            system=system,
            metric=metric,
            unit=unit,
            higher_is_better=higher,
            samples=samples,
            note=note,
            extra={"cancels": n, "truthful": True, "repetitions": details},
        )

    def latency(q: float, r: Json) -> float:
        values: list[float] = r["latencies_ms"]
        return round(percentile(values, q), 3) if values else float("nan")

    return [
        result("p50_ms", "ms", False, [latency(0.5, r) for r in reps]),
        result("p99_ms", "ms", False, [latency(0.99, r) for r in reps]),
        result("cancelled_fraction", "fraction", True, [r["cancelled"] / n for r in reps]),
        result("completed", "operations", False, [float(r["completed"]) for r in reps]),
        result("stuck", "operations", False, [float(r["stuck"]) for r in reps]),
        result(
            "steps_after_terminal", "steps", False, [float(r["steps_after_terminal"]) for r in reps]
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Entry


async def _guarded(
    what: Callable[[], Awaitable[list[Result]]], workload: str, system: str, metric: str
) -> list[Result]:
    higher, unit = (True, "ops/s") if metric == "ops_per_second" else (False, "ms")
    """Run one measurement; on any error, one failed Result saying why."""
    try:
        return await what()
    except Exception as exc:
        print(f"bench: {workload} on {system} failed: {exc!r}", file=sys.stderr)
        return [
            Result(
                workload=workload,
                system=system,
                metric=metric,
                unit=unit,
                higher_is_better=higher,
                status="failed",
                note=repr(exc)[:500],
            )
        ]


def _one(result: Awaitable[Result]) -> Callable[[], Awaitable[list[Result]]]:
    async def run() -> list[Result]:
        return [await result]

    return run


async def measure(workloads: set[str], scale: Scale) -> list[Result]:
    systems = [SQLITE, POSTGRES]
    results: list[Result] = []
    for system in systems:
        if system == POSTGRES and scale.postgres_admin_url is None:
            for workload in sorted(w for w in workloads if w in {"W1", "W2", "W3"}):
                results.append(
                    Result(
                        workload=workload,
                        system=system,
                        metric="ops_per_second" if workload == "W1" else "p99_ms",
                        unit="",
                        higher_is_better=workload == "W1",
                        status="unsupported",
                        note="no PostgreSQL server for this run",
                    )
                )
            continue
        if "W1" in workloads:
            for name in W1_VARIANTS:
                print(f"bench: {name} on {system}", file=sys.stderr)
                results += await _guarded(
                    _one(measure_w1(system, scale, name)), name, system, "ops_per_second"
                )
        if "W2" in workloads:
            print(f"bench: W2 on {system}", file=sys.stderr)
            results += await _guarded(
                functools.partial(measure_w2, system, scale), "W2", system, "p99_ms"
            )
        if "W3" in workloads:
            print(f"bench: W3 on {system}", file=sys.stderr)
            results += await _guarded(
                functools.partial(measure_w3, system, scale), "W3", system, "p99_ms"
            )
            print(f"bench: W3.across-nodes on {system}", file=sys.stderr)
            results += await _guarded(
                functools.partial(measure_w3, system, scale, across_nodes=True),
                "W3.across-nodes",
                system,
                "p99_ms",
            )
    if "W1" in workloads:
        ceilings = ["ceiling-sqlite-wal-normal", "ceiling-sqlite-wal-full"]
        if scale.postgres_admin_url is not None:
            ceilings.append("ceiling-postgres")
        for name in ceilings:
            print(f"bench: W1 ceiling {name}", file=sys.stderr)
            results += await _guarded(
                _one(measure_ceiling(name, scale)), "W1", name, "ops_per_second"
            )
    return results
