"""W2 (round trip) and W3 (cancel) on longrunning, with the SQLite and the PostgreSQL store, and
their floor, `ceiling-http-round-trips`: the same two sequential HTTP requests sent to the
hello-world app of W4 (bench/asgi_hello.py), which stores and runs nothing.

The client is aiohttp: a start, a cancel and a wait are plain HTTP calls, and aiohttp's C parser
costs ~1 ms less per request than httpx on this kind of machine (bench/findings.md), which in a
5 ms round trip is most of what would be measured. The floor is measured with the same client,
so `vs ceiling` shows how much of a round trip is longrunning's own.

Every repetition gets a fresh store and fresh processes (bench.longrunning_core.running_system).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.asgi_hello import hello_server
from bench.longrunning_core import (
    API,
    POSTGRES,
    SQLITE,
    Json,
    guarded,
    percentile,
    repeat,
    running_system,
    with_failures,
)
from bench.model import Result, unsupported
from bench.scale import Scale

W2_WARMUP = 5
W3_STEPS = 6000
"""Steps of 5 ms: 30 s, far longer than the cancels take; an operation that completes anyway is
counted `completed`."""
W3_TERMINAL_TIMEOUT_SECONDS = 10.0
"""A cancelled operation not terminal this long after the cancel request is `stuck`."""
W3_LOOK_AFTER_SECONDS = 0.5
"""How long after the last terminal state the handlers' traces are watched for late steps."""
FLOOR = "ceiling-http-round-trips"


class Client:
    """JSON over one aiohttp session; any non-2xx answer raises, naming the status and body."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def get(self, path: str) -> Json:
        async with self._session.get(path) as response:
            return await _body(response)

    async def post(self, path: str, body: Json | None = None, **params: str) -> Json:
        async with self._session.post(path, json=body, params=params or None) as response:
            return await _body(response)


async def _body(response: aiohttp.ClientResponse) -> Json:
    if response.status >= 300:
        text = await response.text()
        raise RuntimeError(f"{response.method} {response.url} answered {response.status}: {text}")
    answer: Json = await response.json()
    return answer


@asynccontextmanager
async def client(url: str, connections: int) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
        yield Client(session)


# ---------------------------------------------------------------------------------------------
# W2: round trip


async def w2_once(url: str, round_trips: int) -> list[float]:
    """Sequential start -> :wait until done; milliseconds per round trip."""
    timings: list[float] = []
    async with client(url, 2) as http:
        for i in range(W2_WARMUP + round_trips):
            began = time.perf_counter()
            op = await http.post(API, {"kind": "bench.noop"})
            if not op.get("done"):
                op = await http.post(f"{API}/{op['id']}:wait", timeout="30s")
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
    note = with_failures(
        f"{scale.w2_round_trips} sequential POST /operations (bench.noop) then POST :wait, one "
        f"client, after {W2_WARMUP} warm-up round trips; serve with its embedded worker",
        failures,
    )
    return _percentiles(
        "W2", system, per_rep, (50, 95, 99), note, {"round_trips": scale.w2_round_trips}
    )


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


async def _observe_running(http: Client, op_id: str) -> Json:
    deadline = time.monotonic() + W3_TERMINAL_TIMEOUT_SECONDS
    while True:
        op = await http.get(f"{API}/{op_id}")
        if op.get("state") != "PENDING" or time.monotonic() > deadline:
            return op
        await asyncio.sleep(0.005)


async def _cancel_and_observe(http: Client, op_id: str) -> CancelRecord:
    cancel_at = time.monotonic()
    op = await http.post(f"{API}/{op_id}:cancel")
    if not op.get("done"):
        wait = f"{int(W3_TERMINAL_TIMEOUT_SECONDS)}s"
        op = await http.post(f"{API}/{op_id}:wait", timeout=wait)
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
    async with client(url, 8) as http:
        started = await asyncio.gather(
            *(http.post(API, {"kind": "bench.steps", "request": request}) for _ in range(cancels))
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
    note = with_failures(
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
# The floor: the same two requests to an app that does nothing


async def floor_once(url: str, round_trips: int) -> list[float]:
    """What W2's start then wait, or W3's cancel then wait, costs in HTTP alone: two sequential
    POSTs with a JSON body and a JSON answer; milliseconds per pair."""
    timings: list[float] = []
    async with client(url, 2) as http:
        for i in range(W2_WARMUP + round_trips):
            began = time.perf_counter()
            await http.post(API, {"kind": "bench.noop"})
            await http.post(f"{API}/{i}:wait", timeout="30s")
            if i >= W2_WARMUP:
                timings.append((time.perf_counter() - began) * 1000)
    return timings


async def measure_floor(scale: Scale, workloads: list[str]) -> list[Result]:
    async def once(rep: int) -> list[float]:
        run_dir = scale.work_dir / "runs" / f"floor-{rep}-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(run_dir.mkdir, parents=True)
        with hello_server(run_dir) as (url, _):
            return await floor_once(url, scale.w2_round_trips)

    per_rep, failures = await repeat(scale, FLOOR, once)
    note = with_failures(
        f"{scale.w2_round_trips} pairs of sequential POSTs (JSON in, JSON out) to the W4 "
        "hello-world app (bench/asgi_hello.py), one aiohttp client: the HTTP part of a start "
        "then :wait (W2) or a :cancel then :wait (W3), with nothing stored or run",
        failures,
    )
    return [
        result
        for workload in workloads
        for result in _percentiles(
            workload, FLOOR, per_rep, (50, 95, 99) if workload == "W2" else (50, 99), note, {}
        )
    ]


def _percentiles(
    workload: str,
    system: str,
    per_rep: list[list[float]],
    quantiles: tuple[int, ...],
    note: str,
    extra: dict[str, Any],
) -> list[Result]:
    """One Result per quantile, a sample per repetition, from each repetition's timings (ms)."""
    return [
        Result(
            workload=workload,
            system=system,
            metric=f"p{q}_ms",
            unit="ms",
            higher_is_better=False,
            samples=[round(percentile(t, q / 100), 3) for t in per_rep],
            note=note,
            extra=extra,
        )
        for q in quantiles
    ]


# ---------------------------------------------------------------------------------------------
# Entry


async def measure(workloads: set[str], scale: Scale) -> list[Result]:
    results: list[Result] = []

    def say(what: str) -> None:
        print(f"bench: {what}", file=sys.stderr, flush=True)

    for system in (SQLITE, POSTGRES):
        if system == POSTGRES and scale.postgres_admin_url is None:
            names = sorted(w for w in workloads if w in {"W2", "W3"})
            results += unsupported(names, system, "p99_ms", "no PostgreSQL server for this run")
            continue
        if "W2" in workloads:
            say(f"W2 on {system}")
            results += await guarded(
                functools.partial(measure_w2, system, scale), "W2", system, "p99_ms"
            )
        if "W3" in workloads:
            say(f"W3 on {system}")
            results += await guarded(
                functools.partial(measure_w3, system, scale), "W3", system, "p99_ms"
            )
            say(f"W3.across-nodes on {system}")
            results += await guarded(
                functools.partial(measure_w3, system, scale, across_nodes=True),
                "W3.across-nodes",
                system,
                "p99_ms",
            )
    floors = sorted(w for w in workloads if w in {"W2", "W3"})
    if floors:
        say(f"{', '.join(floors)} on {FLOOR}")
        results += await guarded(
            functools.partial(measure_floor, scale, floors), floors[0], FLOOR, "p99_ms"
        )
    return results
