"""W4 (status reads), W5 (filtered listing) and W6 (scale) on longrunning, with the SQLite and the
PostgreSQL store, and the W4 ceiling `ceiling-asgi-hello`.

- W4: `w4_stored` finished operations are written straight into a fresh store
  (bench/stored_operations.py), then `longrunning serve --workers 0 --grpc-port 0` (API only,
  one process) answers single-operation reads of random ids for `w4_seconds` from
  `w4_connections` connections: `W4.native` (GET /api/v1/operations/{id}), `W4.google-rest`
  (GET /v1/{name}) and `W4.google-grpc` (GetOperation). HTTP load comes from wrk when installed
  (not in smoke runs), else from a Python process; gRPC load from a Python grpc.aio process
  (bench/load.py). The ceiling is a hello-world Starlette app on the same uvicorn stack
  (bench/asgi_hello.py), read with the same generator and the same paths (`W4.native`).
- W5: `w5_stored` operations of a realistic mix (bench/stored_operations.py) in a fresh store,
  then walks of `w5_pages` pages of 100 through the native API, newest first, following
  nextPageToken: `W5.not-done-kind` (`done = false AND kind = "bench.kind1"`) and
  `W5.not-done-label` (`done = false AND labels.team = "gamma"`); p50 and p99 ms per page.
- W6: W1 (bench.noop starts over HTTP, `w1_operations`, time until none is left undone) with
  `serve --workers 0` and 1, 2 and 4 `longrunning worker` processes on PostgreSQL
  (`W6.workers1/2/4`); and `w6_running` bench.sleep operations running at once in one worker
  (`--concurrency w6_running`): that worker's peak RSS (VmHWM) once all of them run
  (`W6.running`, on both stores).

Every measurement runs in fresh processes on a fresh store that is removed afterwards; every wait
has a deadline; on an error the measurement returns a failed Result saying why.
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
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from bench import load
from bench.asgi_hello import hello_server
from bench.longrunning_core import (
    POSTGRES,
    SQLITE,
    W1_BATCH,
    W1_BATCHES_IN_FLIGHT,
    fresh_store,
    http_client,
    percentile,
    w1_once,
)
from bench.model import Result, unsupported
from bench.scale import Scale
from bench.stored_operations import migrate, seed
from longrunning.app import opened_store
from longrunning.core.listing import build_query

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.acceptance.processes import NodeProcess  # noqa: E402

_A = TypeVar("_A")

PARENT = "projects/local/locations/local"
"""Where operations live unless started under another parent (engine.service.DEFAULT_PARENT)."""
CEILING = "ceiling-asgi-hello"
W5_PAGE_SIZE = 100
W5_FILTERS = {
    "W5.not-done-kind": 'done = false AND kind = "bench.kind1"',
    "W5.not-done-label": 'done = false AND labels.team = "gamma"',
}
W6_WORKER_CONCURRENCY = 16
"""Per worker process in W6.workersN: the worker's default."""


def _env(store_url: str, data_dir: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
        "LONGRUNNING_STORE": store_url,
        "LONGRUNNING_DATA_DIR": str(data_dir),
        "LONGRUNNING_LOG_LEVEL": "warning",
    }


def _run_dir(scale: Scale, tag: str) -> Path:
    path = scale.work_dir / "runs" / f"{tag}-{uuid.uuid4().hex[:6]}"
    (path / "data").mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _nodes(store_url: str, run_dir: Path, *commands: list[str]) -> Iterator[list[NodeProcess]]:
    """`longrunning` processes on store_url (bench.handlers loaded), started at once and
    SIGKILLed at the end."""
    env = _env(store_url, run_dir / "data")

    def start(i: int, command: list[str]) -> NodeProcess:
        log = run_dir / f"{command[0]}{i}.log"
        return NodeProcess(*command, "--handlers", "bench.handlers", env=env, log=log)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = [pool.submit(start, i, command) for i, command in enumerate(commands)]
    nodes = [f.result() for f in futures if f.exception() is None]
    try:
        for future in futures:
            future.result()  # raises why a node did not start
        yield nodes
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mb(pid: int, field: str) -> float:
    """VmHWM (peak resident set) or VmRSS of a live process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} for process {pid}")


def _failed(workload: str, system: str, metric: str, exc: BaseException) -> Result:
    print(f"bench: {workload} on {system} failed: {exc!r}", file=sys.stderr)
    return Result(
        workload=workload,
        system=system,
        metric=metric,
        unit="",
        higher_is_better=metric.endswith("per_second"),
        status="failed",
        note=f"{type(exc).__name__}: {exc}"[:500],
    )


async def _guarded(
    what: Callable[[], Awaitable[list[Result]]], workloads: list[str], system: str, metric: str
) -> list[Result]:
    try:
        return await what()
    except Exception as exc:
        return [_failed(workload, system, metric, exc) for workload in workloads]


# ---------------------------------------------------------------------------------------------
# W4: status reads


def _http_load(
    scale: Scale, base_url: str, paths: Path, seconds: float | None = None
) -> load.LoadReport:
    seconds = scale.w4_seconds if seconds is None else seconds
    if not scale.smoke and load.wrk_available():
        return load.run_wrk(base_url, paths, connections=scale.w4_connections, seconds=seconds)
    return load.run_python_http(base_url, paths, connections=scale.w4_connections, seconds=seconds)


async def _loaded(
    pid: int, scale: Scale, run: Callable[[float], load.LoadReport]
) -> list[tuple[load.LoadReport, float]]:
    """A warm-up (full runs only), then `repetitions` load runs; each with the share of one core
    the server process used meanwhile."""
    if not scale.smoke:
        await asyncio.to_thread(run, min(2.0, scale.w4_seconds))
    reports: list[tuple[load.LoadReport, float]] = []
    for _ in range(scale.repetitions):
        cpu, began = _cpu_seconds(pid), time.monotonic()
        report = await asyncio.to_thread(run, scale.w4_seconds)
        reports.append((report, (_cpu_seconds(pid) - cpu) / (time.monotonic() - began)))
    return reports


def _w4_result(
    workload: str, system: str, runs: list[tuple[load.LoadReport, float]], setup: str
) -> Result:
    reports = [report for report, _ in runs]
    errors = sum(r.errors for r in reports)
    requests = sum(r.requests for r in reports)
    generator = reports[0].generator
    note = f"load: {generator}; {setup}"
    status: Any = "ok"
    if errors:
        note += f"; {errors} of {requests} requests failed"
        if errors > requests / 100:
            status = "failed"
    return Result(
        workload=workload,
        system=system,
        metric="requests_per_second",
        unit="req/s",
        higher_is_better=True,
        samples=[round(r.requests_per_second, 1) for r in reports],
        status=status,
        note=note,
        extra={
            "generator": generator,
            "p50_ms": [r.p50_ms for r in reports],
            "p99_ms": [r.p99_ms for r in reports],
            "server_cpu_cores": [round(cpu, 2) for _, cpu in runs],
            "requests": [r.requests for r in reports],
            "errors": [r.errors for r in reports],
        },
    )


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


async def measure_w4(system: str, scale: Scale) -> list[Result]:
    run_dir = _run_dir(scale, f"w4-{system}")
    with fresh_store(system, scale, "w4") as store_url:
        began = time.monotonic()
        ids = await seed(store_url, scale.w4_stored, mixed=False)
        seeded = time.monotonic() - began
        native = _write_lines(run_dir / "native.paths", [f"/api/v1/operations/{i}" for i in ids])
        google = _write_lines(
            run_dir / "google.paths", [f"/v1/{PARENT}/operations/{i}" for i in ids]
        )
        names = _write_lines(run_dir / "grpc.names", [f"{PARENT}/operations/{i}" for i in ids])
        serve = ["serve", "--port", "0", "--grpc-port", "0", "--workers", "0"]
        with _nodes(store_url, run_dir, serve) as (node,):
            async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
                for path in (f"/api/v1/operations/{ids[0]}", f"/v1/{PARENT}/operations/{ids[0]}"):
                    (await http.get(path)).raise_for_status()
            setup = (
                f"{len(ids)} finished operations stored ({seeded:.1f} s to store), GETs of random"
                " ids; `serve --workers 0` (API only, one process)"
            )
            pid, url = node.proc.pid, node.url
            results = [
                _w4_result(
                    "W4.native",
                    system,
                    await _loaded(pid, scale, lambda s: _http_load(scale, url, native, s)),
                    setup,
                ),
                _w4_result(
                    "W4.google-rest",
                    system,
                    await _loaded(pid, scale, lambda s: _http_load(scale, url, google, s)),
                    setup,
                ),
            ]
            grpc_target = node.grpc_address

            def grpc_run(seconds: float) -> load.LoadReport:
                return load.run_python_grpc(
                    grpc_target, names, calls=scale.w4_connections, seconds=seconds
                )

            results.append(
                _w4_result("W4.google-grpc", system, await _loaded(pid, scale, grpc_run), setup)
            )
    return results


async def measure_w4_ceiling(scale: Scale) -> list[Result]:
    run_dir = _run_dir(scale, "w4-ceiling")
    ids = [str(uuid.uuid4()) for _ in range(max(scale.w4_stored, 1))]
    native = _write_lines(run_dir / "native.paths", [f"/api/v1/operations/{i}" for i in ids])
    setup = (
        "hello-world Starlette JSON endpoint, uvicorn Server.serve on asyncio (httptools), one "
        "process, no access log: the stack `longrunning serve` runs, but with TCP_NODELAY on "
        "its connections (bench/asgi_hello.py says why); same paths as W4.native"
    )
    with hello_server(run_dir) as (url, pid):
        result = _w4_result(
            "W4.native",
            CEILING,
            await _loaded(pid, scale, lambda s: _http_load(scale, url, native, s)),
            setup,
        )
    if not scale.smoke:
        # What the missing TCP_NODELAY alone costs the same app (see bench/asgi_hello.py).
        with hello_server(run_dir, "--no-nodelay") as (url, _):
            report = await asyncio.to_thread(_http_load, scale, url, native)
        result.extra["without_tcp_nodelay"] = report.to_json()
    return [result]


# ---------------------------------------------------------------------------------------------
# W5: filtered listing


async def _walk(http: httpx.AsyncClient, flt: str, pages: int) -> tuple[list[float], int]:
    """Walk up to `pages` pages of the filter; each page's ms and the rows seen."""
    times: list[float] = []
    rows = 0
    token = ""
    for _ in range(pages):
        params = {"filter": flt, "pageSize": str(W5_PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        began = time.perf_counter()
        response = await http.get("/api/v1/operations", params=params)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        body = response.json()
        rows += len(body.get("operations", []))
        token = body.get("nextPageToken", "")
        if not token:
            break
    return times, rows


async def _store_walk(store_url: str, flt: str, pages: int) -> list[float]:
    """The same walk on the store itself, in this process: each page's ms without HTTP."""
    times: list[float] = []
    async with opened_store(store_url) as store:
        token: str | None = None
        for _ in range(pages):
            query = build_query(filter_text=flt, page_size=W5_PAGE_SIZE, page_token=token)
            began = time.perf_counter()
            page = await store.list_page(query)
            times.append((time.perf_counter() - began) * 1000)
            token = page.next_page_token
            if not token:
                break
    return times


async def measure_w5(system: str, scale: Scale) -> list[Result]:
    run_dir = _run_dir(scale, f"w5-{system}")
    results: list[Result] = []
    with fresh_store(system, scale, "w5") as store_url:
        began = time.monotonic()
        ids = await seed(store_url, scale.w5_stored, mixed=True)
        seeded = time.monotonic() - began
        with _nodes(store_url, run_dir, ["serve", "--port", "0", "--workers", "0"]) as (node,):
            async with http_client(node.url, 2) as http:
                for workload, flt in W5_FILTERS.items():
                    cold, cold_rows = await _walk(http, flt, scale.w5_pages)
                    walks = [
                        await _walk(http, flt, scale.w5_pages) for _ in range(scale.repetitions)
                    ]
                    in_store = await _store_walk(store_url, flt, scale.w5_pages)
                    note = (
                        f"{len(ids)} operations stored ({seeded:.0f} s to store; 95 % done, 5 % "
                        f"pending or running spread over the history, 8 kinds, labels), filter "
                        f"`{flt}`, {W5_PAGE_SIZE} a page, newest first, {len(cold)} pages a walk "
                        f"({cold_rows} rows); one client, sequential; a sample is one walk's "
                        f"percentile over at most {scale.w5_pages} pages (p99 is about the "
                        "slowest page); the first (cold) walk is in extra, not in the samples"
                    )
                    if system == SQLITE:
                        note += "; SQLite store not ANALYZEd (the store never runs ANALYZE)"
                    else:
                        note += "; VACUUM ANALYZE after the load, as autovacuum would"
                    extra = {
                        "filter": flt,
                        "pages_per_walk": [len(t) for t, _ in walks],
                        "rows_per_walk": [n for _, n in walks],
                        "cold_walk_page_ms": [round(t, 2) for t in cold],
                        "page_ms": [[round(t, 2) for t in times] for times, _ in walks],
                        "setup_seconds": round(seeded, 1),
                        "store_only_page_ms": [round(t, 2) for t in in_store],
                        "store_only_p50_ms": round(percentile(in_store, 0.5), 2),
                        "store_only_p99_ms": round(percentile(in_store, 0.99), 2),
                    }
                    for metric, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
                        results.append(
                            Result(
                                workload=workload,
                                system=system,
                                metric=metric,
                                unit="ms",
                                higher_is_better=False,
                                samples=[round(percentile(t, q), 3) for t, _ in walks],
                                note=note,
                                extra=extra,
                            )
                        )
    return results


# ---------------------------------------------------------------------------------------------
# W6: scale


async def measure_w6_workers(workers: int, scale: Scale) -> Result:
    samples: list[float] = []
    details: list[dict[str, Any]] = []
    for rep in range(scale.repetitions):
        run_dir = _run_dir(scale, f"w6-workers{workers}-{rep}")
        with fresh_store(POSTGRES, scale, f"w6w{workers}") as store_url:
            await migrate(store_url)
            worker = ["worker", "--concurrency", str(W6_WORKER_CONCURRENCY)]
            serve = ["serve", "--port", "0", "--workers", "0"]
            with _nodes(store_url, run_dir, serve, *([worker] * workers)) as nodes:
                rate, detail = await w1_once(nodes[0].url, scale.w1_operations, batch=W1_BATCH)
        samples.append(round(rate, 1))
        details.append(detail)
    return Result(
        workload=f"W6.workers{workers}",
        system=POSTGRES,
        metric="ops_per_second",
        unit="ops/s",
        higher_is_better=True,
        samples=samples,
        note=(
            f"W1 as in longrunning_core.w1_once ({scale.w1_operations} bench.noop starts, "
            f"{W1_BATCH} per :batchStart request, until a listing shows none undone); "
            "`serve --workers 0` (API only) + "
            f"{workers} `longrunning worker --concurrency {W6_WORKER_CONCURRENCY}`; "
            f"{os.cpu_count()} cores shared by client, API node, workers and PostgreSQL"
        ),
        extra={"runs": details},
    )


def _count_running(store_url: str) -> int:
    sql = "SELECT count(*) FROM operations WHERE state = 'RUNNING'"
    if store_url.startswith("sqlite:"):
        path = "/" + store_url.removeprefix("sqlite:").lstrip("/")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    with psycopg.connect(store_url) as pg:
        row = pg.execute(sql).fetchone()
        return int(row[0]) if row else 0


async def _w6_running_once(system: str, scale: Scale, rep: int) -> tuple[float, dict[str, Any]]:
    count = scale.w6_running
    ramp_deadline = 60.0 if scale.smoke else 600.0
    hold = 1.0 if scale.smoke else 12.0  # past a lease renewal (leases are 10 s)
    sleep_seconds = ramp_deadline + hold + 60
    run_dir = _run_dir(scale, f"w6-running-{system}-{rep}")
    with fresh_store(system, scale, "w6run") as store_url:
        await migrate(store_url)
        worker = ["worker", "--concurrency", str(count)]
        serve = ["serve", "--port", "0", "--workers", "0"]
        with _nodes(store_url, run_dir, serve, worker) as (api, node):
            pid = node.proc.pid
            idle_mb = _status_mb(pid, "VmRSS")
            began = time.monotonic()
            async with http_client(api.url, W1_BATCHES_IN_FLIGHT + 2) as http:
                body = {"kind": "bench.sleep", "request": {"seconds": sleep_seconds}}
                sizes = [min(W1_BATCH, count - i) for i in range(0, count, W1_BATCH)]
                remaining = iter(sizes)

                async def starter() -> None:
                    for size in remaining:
                        batch = {"requests": [body] * size}
                        answer = await http.post("/api/v1/operations:batchStart", json=batch)
                        answer.raise_for_status()

                async with asyncio.timeout(ramp_deadline):
                    await asyncio.gather(*(starter() for _ in range(W1_BATCHES_IN_FLIGHT)))
            started = time.monotonic() - began
            running = 0
            while time.monotonic() - began < ramp_deadline:
                running = await asyncio.to_thread(_count_running, store_url)
                if running >= count:
                    break
                await asyncio.sleep(0.2)
            all_running = time.monotonic() - began
            if running < count:
                raise RuntimeError(
                    f"only {running} of {count} operations running after {ramp_deadline:.0f} s"
                    f" (peak RSS so far {_status_mb(pid, 'VmHWM'):.0f} MB)"
                )
            await asyncio.sleep(hold)
            still = await asyncio.to_thread(_count_running, store_url)
            peak = _status_mb(pid, "VmHWM")
            detail = {
                "idle_rss_mb": round(idle_mb, 1),
                "rss_mb": round(_status_mb(pid, "VmRSS"), 1),
                "start_seconds": round(started, 1),
                "all_running_seconds": round(all_running, 1),
                "running_after_hold": still,
            }
            if still < count:
                raise RuntimeError(
                    f"only {still} of {count} still running after {hold} s: {detail}"
                )
    return peak, detail


async def measure_w6_running(system: str, scale: Scale) -> Result:
    samples: list[float] = []
    details: list[dict[str, Any]] = []
    for rep in range(scale.repetitions):
        peak, detail = await _w6_running_once(system, scale, rep)
        samples.append(round(peak, 1))
        details.append(detail)
    return Result(
        workload="W6.running",
        system=system,
        metric="peak_rss_mb",
        unit="MB",
        higher_is_better=False,
        samples=samples,
        note=(
            f"{scale.w6_running} bench.sleep operations ({W1_BATCH} per :batchStart request) "
            "running at once in one "
            f"`longrunning worker --concurrency {scale.w6_running}` (API: `serve --workers 0`); "
            "VmHWM of the worker process after all ran for a lease period"
        ),
        extra={"runs": details},
    )


# ---------------------------------------------------------------------------------------------
# Entry


async def measure(workloads: set[str], scale: Scale) -> list[Result]:
    wanted = {w.split(".", 1)[0] for w in workloads}
    systems = [SQLITE, POSTGRES]
    no_postgres = "no PostgreSQL server for this run"
    results: list[Result] = []

    def say(what: str) -> None:
        print(f"bench: {what}", file=sys.stderr, flush=True)

    if "W4" in wanted:
        w4 = ["W4.native", "W4.google-rest", "W4.google-grpc"]
        for system in systems:
            if system == POSTGRES and scale.postgres_admin_url is None:
                results += unsupported(w4, system, "requests_per_second", no_postgres)
                continue
            say(f"W4 on {system}")
            results += await _guarded(
                functools.partial(measure_w4, system, scale), w4, system, "requests_per_second"
            )
        say(f"W4 on {CEILING}")
        results += await _guarded(
            functools.partial(measure_w4_ceiling, scale),
            ["W4.native"],
            CEILING,
            "requests_per_second",
        )
    if "W5" in wanted:
        w5 = list(W5_FILTERS)
        for system in systems:
            if system == POSTGRES and scale.postgres_admin_url is None:
                results += unsupported(w5, system, "p99_ms", no_postgres)
                continue
            say(f"W5 on {system}")
            results += await _guarded(
                functools.partial(measure_w5, system, scale), w5, system, "p99_ms"
            )
    if "W6" in wanted:
        if scale.postgres_admin_url is None:
            names = ["W6.workers1", "W6.workers2", "W6.workers4"]
            results += unsupported(names, POSTGRES, "ops_per_second", no_postgres)
        else:
            for workers in (1, 2, 4):
                say(f"W6.workers{workers} on {POSTGRES}")
                results += await _guarded(
                    functools.partial(_listed, measure_w6_workers, workers, scale),
                    [f"W6.workers{workers}"],
                    POSTGRES,
                    "ops_per_second",
                )
        for system in systems:
            if system == POSTGRES and scale.postgres_admin_url is None:
                results += unsupported(["W6.running"], system, "peak_rss_mb", no_postgres)
                continue
            say(f"W6.running on {system}")
            results += await _guarded(
                functools.partial(_listed, measure_w6_running, system, scale),
                ["W6.running"],
                system,
                "peak_rss_mb",
            )
    return results


async def _listed(
    what: Callable[[_A, Scale], Awaitable[Result]], argument: _A, scale: Scale
) -> list[Result]:
    return [await what(argument, scale)]
