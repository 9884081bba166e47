"""Throughput of one PostgreSQL database carrying several longrunning nodes, on this machine.

Starts API nodes (`serve --workers 0`) and workers on a fresh database, drives short operations
through the API nodes with bounded concurrency, and reports end-to-end operations per second,
the PostgreSQL sessions the nodes held, and the CPU time PostgreSQL and the nodes spent.

    .venv/bin/python bench/scale_out.py --admin-url postgresql://postgres@127.0.0.1/postgres \
        --api-nodes 2 --workers 2 --operations 2000

Every node, the database and the client share this machine's cores, so on a small machine the
numbers are a floor for the database, not a ceiling. Bounded: at most --operations starts and
--timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.acceptance.processes import NodeProcess  # noqa: E402
from tests.postgres_servers import create_database, drop_database  # noqa: E402


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _postgres_pids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall()
    return [row[0] for row in rows]


async def _drive(urls: list[str], count: int, concurrency: int, timeout: float) -> list[str]:
    ids: list[str] = []
    slots = asyncio.Semaphore(concurrency)
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]

    async def start(i: int) -> None:
        async with slots:
            body = {"kind": "demo.sleep", "request": {"duration_seconds": 0, "steps": 1}}
            response = await clients[i % len(clients)].post("/api/v1/operations", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(start(i) for i in range(count)))
    finally:
        for client in clients:
            await client.aclose()
    return ids


def _done(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM operations WHERE state = 'SUCCEEDED'").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("LONGRUNNING_TEST_POSTGRES_URL"))
    parser.add_argument("--api-nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="per worker")
    parser.add_argument("--clients", type=int, default=32, help="requests in flight")
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if not args.admin_url:
        parser.error("--admin-url (or LONGRUNNING_TEST_POSTGRES_URL) is required")
    name = f"longrunning_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(args.admin_url, name)
    logs = Path(f"/tmp/{name}")
    logs.mkdir()
    nodes: list[NodeProcess] = []
    try:
        subprocess_env = {"LONGRUNNING_STORE": url, "LONGRUNNING_LOG_LEVEL": "warning"}
        NodeProcess("migrate", env=subprocess_env, log=logs / "migrate.log").terminate()
        api = ["serve", "--port", "0", "--workers", "0"]
        worker = ["worker", "--concurrency", str(args.concurrency)]
        for i in range(args.api_nodes):
            nodes.append(NodeProcess(*api, env=subprocess_env, log=logs / f"api{i}.log"))
        for i in range(args.workers):
            nodes.append(NodeProcess(*worker, env=subprocess_env, log=logs / f"worker{i}.log"))
        api_urls = [node.url for node in nodes[: args.api_nodes]]
        node_pids = [node.proc.pid for node in nodes]
        pg_pids = _postgres_pids(url)
        sessions = len(pg_pids)
        cpu_nodes, cpu_pg = _cpu_seconds(node_pids), _cpu_seconds(pg_pids)
        began = time.monotonic()
        ids = asyncio.run(_drive(api_urls, args.operations, args.clients, args.timeout))
        started = time.monotonic() - began
        while _done(url) < len(ids) and time.monotonic() - began < args.timeout:
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        finished = _done(url)
        pg_pids = _postgres_pids(url)
        cpu_nodes = _cpu_seconds(node_pids) - cpu_nodes
        cpu_pg = _cpu_seconds(pg_pids) - cpu_pg
        print(
            f"{args.api_nodes} API nodes, {args.workers} workers, {os.cpu_count()} cores: "
            f"{len(ids)} started in {started:.1f} s ({len(ids) / started:.0f}/s); "
            f"{finished} succeeded in {elapsed:.1f} s ({finished / elapsed:.0f}/s end to end); "
            f"PostgreSQL sessions {sessions} idle, {len(pg_pids)} after; "
            f"CPU: nodes {cpu_nodes:.1f} s, PostgreSQL {cpu_pg:.1f} s "
            f"({cpu_pg / max(finished, 1) * 1000:.2f} ms per operation)"
        )
    finally:
        for node in nodes:
            node.kill()
        drop_database(args.admin_url, name)


if __name__ == "__main__":
    main()
