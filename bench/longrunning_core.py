"""W1 (throughput) on longrunning, with the SQLite and the PostgreSQL store, and the W1
ceilings: raw SQLite (WAL) and raw PostgreSQL doing the same three committed writes per
operation that longrunning does (insert, claim, finish). Also what the other longrunning
workloads share: fresh stores, the processes on them, the HTTP client, percentiles.

Every repetition gets a fresh store (a new SQLite file, a new PostgreSQL database dropped
afterwards) and fresh processes, killed (process group SIGKILL) when it ends, even on errors.
Topology: `longrunning serve` with its embedded worker is the one worker process (the idiomatic
single-node deployment: `scripts/serve`); `W1.workers2` adds one `longrunning worker` process on
the same store. The client is this process, over HTTP with the native API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from bench.model import Result, unsupported
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


def with_failures(note: str, failures: list[str]) -> str:
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
        note=with_failures(
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
        note=with_failures(
            f"{COMMITS_PER_OPERATION} commits per operation (insert, claim, finish) on "
            f"longrunning's own schema and indexes; {how}; sequential, in-process",
            failures,
        ),
        extra={"operations": scale.w1_operations, "commits_per_operation": COMMITS_PER_OPERATION},
    )


# ---------------------------------------------------------------------------------------------
# Entry


async def guarded(
    what: Callable[[], Awaitable[list[Result]]], workload: str, system: str, metric: str
) -> list[Result]:
    """Run one measurement; on any error, one failed Result saying why."""
    higher, unit = (True, "ops/s") if metric == "ops_per_second" else (False, "ms")
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
            if "W1" in workloads:
                note = "no PostgreSQL server for this run"
                results += unsupported(["W1"], system, "ops_per_second", note)
            continue
        if "W1" in workloads:
            for name in W1_VARIANTS:
                print(f"bench: {name} on {system}", file=sys.stderr)
                results += await guarded(
                    _one(measure_w1(system, scale, name)), name, system, "ops_per_second"
                )
    if "W1" in workloads:
        ceilings = ["ceiling-sqlite-wal-normal", "ceiling-sqlite-wal-full"]
        if scale.postgres_admin_url is not None:
            ceilings.append("ceiling-postgres")
        for name in ceilings:
            print(f"bench: W1 ceiling {name}", file=sys.stderr)
            results += await guarded(
                _one(measure_ceiling(name, scale)), "W1", name, "ops_per_second"
            )
    return results
