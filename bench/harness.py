"""The benchmark run: parse the command line, make sure PostgreSQL (and for the peers Redis)
answer, call every measuring module for the workloads asked for, write the results JSON and
regenerate the report.

Measuring modules are imported lazily and each is optional: `bench.longrunning_core` (W1 and
its ceilings), `bench.longrunning_latency` (W2, W3 and their HTTP floor),
`bench.longrunning_reads` (W4-W6 and the ASGI ceiling) and
`bench.peers_runner` (every peer, in its own environment; not in a smoke run or with
`--no-peers`). A module that is missing is skipped with a printed line; one that raises becomes
a `failed` result, never the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from bench import report
from bench.model import Result
from bench.scale import Scale, full_scale, smoke_scale

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
PUBLISHED_REPORT = ROOT / "docs" / "benchmarks.md"
MODULES = (
    "bench.longrunning_core",
    "bench.longrunning_latency",
    "bench.longrunning_reads",
    "bench.peers_runner",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure longrunning, its peers and the machine's ceilings; write the "
        "results JSON and the report (docs/benchmarks.md) with its charts.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI size: seconds, tiny counts, 1 repetition, no peers, no wrk; the report goes "
        "to the work directory unless --report names another file (never docs/benchmarks.md)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated, e.g. W1,W2 (default: all)",
    )
    parser.add_argument("--repetitions", type=int, help="default 3 (1 with --smoke)")
    parser.add_argument("--no-peers", action="store_true", help="measure no peer")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/latest.json)")
    parser.add_argument("--report", type=Path, help="report markdown (default docs/benchmarks.md)")
    parser.add_argument(
        "--work-dir", type=Path, help="scratch space (default .bench/runs/<time>; kept for logs)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LONGRUNNING_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
        help="a role that may create databases (default $LONGRUNNING_TEST_POSTGRES_URL, else "
        f"{DEFAULT_POSTGRES})",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: regenerate the report from the results JSON (--out), e.g. after "
        "editing bench/findings.md",
    )
    args = parser.parse_args(argv)
    asked = {w.strip().upper() for w in args.workloads.split(",") if w.strip()}
    unknown = asked - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}; known: {WORKLOADS}")
    args.workloads = asked
    if args.repetitions is not None and args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    return args


def _postgres_answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def ensure_postgres(url: str, *, may_start: bool) -> str | None:
    """The admin URL when a PostgreSQL server answers there (started by scripts/ensure-postgres
    if allowed and needed), else None: PostgreSQL systems are then `unsupported`."""
    if _postgres_answers(url):
        return url
    if may_start and url == DEFAULT_POSTGRES:
        print("bench: PostgreSQL does not answer; running scripts/ensure-postgres", flush=True)
        done = subprocess.run([str(ROOT / "scripts" / "ensure-postgres")], timeout=600, check=False)
        if done.returncode == 0 and _postgres_answers(url):
            return url
    print(f"bench: no PostgreSQL server at {url}; PostgreSQL runs are skipped", flush=True)
    return None


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis() -> bool:
    """Whether Redis answers on 127.0.0.1:6379, starting a throwaway one (no persistence) if
    redis-server is installed and none answers."""
    if _redis_answers():
        return True
    server = shutil.which("redis-server")
    if server is None:
        print("bench: no Redis on 127.0.0.1:6379 and no redis-server to start", flush=True)
        return False
    print("bench: starting redis-server on 127.0.0.1:6379", flush=True)
    command = [server, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"]
    subprocess.run([*command, "--save", "", "--appendonly", "no"], timeout=30, check=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_answers():
            return True
        time.sleep(0.1)
    print("bench: redis-server did not answer within 10 s", flush=True)
    return False


def machine_facts(postgres_url: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "postgres": None,
        "git_commit": None,
    }
    if postgres_url is not None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(postgres_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            facts["postgres"] = row[0] if row else None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        facts["git_commit"] = done.stdout.strip() or None
    return facts


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


async def collect(scale: Scale, workloads: set[str], *, peers: bool) -> list[Result]:
    results: list[Result] = []
    for name in MODULES:
        if name == "bench.peers_runner" and not peers:
            print(f"bench: {name} skipped (smoke run or --no-peers)", flush=True)
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            print(f"bench: {name} is not available ({exc}); skipped", flush=True)
            continue
        began = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        try:
            found: list[Result] = await module.measure(workloads, scale)
        except Exception as exc:
            print(f"bench: {name} raised {exc!r}", file=sys.stderr, flush=True)
            found = [
                Result(
                    workload=",".join(sorted(workloads)),
                    system=name,
                    metric="",
                    unit="",
                    higher_is_better=True,
                    status="failed",
                    note=f"{type(exc).__name__}: {exc}"[:500],
                )
            ]
        print(f"bench: {name}: {len(found)} results in {time.monotonic() - began:.0f} s")
        results += found
    return results


def write_run(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(run, indent=1) + "\n")
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work_dir: Path = (args.work_dir or ROOT / ".bench" / "runs" / stamp).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        out = args.out or work_dir / "results.json"
        report_path = args.report or work_dir / "benchmarks.md"
        if report_path.resolve() == PUBLISHED_REPORT.resolve():
            print("bench: a smoke run never writes docs/benchmarks.md", file=sys.stderr)
            return 2
    else:
        out = args.out or ROOT / "bench" / "results" / "latest.json"
        report_path = args.report or PUBLISHED_REPORT
    if args.report_only:
        report.write(json.loads(out.read_text()), report_path)
        print(f"bench: wrote {report_path} from {out}", flush=True)
        return 0
    peers = not args.smoke and not args.no_peers
    postgres = ensure_postgres(args.postgres_url, may_start=not args.smoke)
    if peers:
        ensure_redis()
    make = smoke_scale if args.smoke else full_scale
    scale = make(
        work_dir,
        postgres,
        args.redis_url,
        repetitions=args.repetitions or (1 if args.smoke else 3),
    )
    began = time.monotonic()
    print(f"bench: work directory {work_dir}", flush=True)
    results = asyncio.run(collect(scale, args.workloads, peers=peers))
    run = {
        "machine": machine_facts(postgres),
        "scale": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(scale).items()},
        "workloads": sorted(args.workloads),
        "seconds": round(time.monotonic() - began, 1),
        "results": [r.to_json() for r in results],
    }
    write_run(out, run)
    report.write(run, report_path)
    failed = [r for r in results if r.status == "failed"]
    print(
        f"bench: {len(results)} results ({len(failed)} failed) in {run['seconds']} s; "
        f"wrote {out} and {report_path}",
        flush=True,
    )
    return 0
