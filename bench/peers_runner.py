"""The peers side of the benchmark, run from the project's venv: builds the separate peers venv
(`.bench/peers-venv`, from `bench/peers/requirements.txt`, never the project's dependencies),
starts one adapter subprocess per peer inside it, bounds each with a timeout (killing its
process group) and parses the `Result` JSON lines the adapters print.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from bench.model import Result
from bench.scale import Scale

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "bench" / "peers" / "requirements.txt"
VENV = ROOT / ".bench" / "peers-venv"
STAMP = VENV / "requirements.sha256"
PYTHON = VENV / "bin" / "python"

PEERS: dict[str, tuple[str, ...]] = {
    "celery": ("celery-redis",),
    "dramatiq": ("dramatiq-redis",),
    "dbos": ("dbos-postgres", "dbos-sqlite"),
    "arq": ("arq-redis",),
    "procrastinate": ("procrastinate-postgres",),
    "rq": ("rq-redis",),
}
"""Adapter module `bench.peers.<name>_bench` -> the systems it reports."""
OWNED = {"W1", "W2", "W3", "W4"}
BUILD_TIMEOUT_SECONDS = 900.0


async def measure(workloads: set[str], scale: Scale) -> list[Result]:
    wanted = {w for w in workloads if w.split(".")[0] in OWNED}
    if scale.smoke or not wanted:
        return []
    try:
        await build_venv()
    except Exception as error:
        return [
            failed(w, system, f"peers venv: {error}")
            for systems in PEERS.values()
            for system in systems
            for w in sorted(wanted)
        ]
    results: list[Result] = []
    for peer, systems in PEERS.items():
        results += await run_adapter(peer, systems, wanted, scale)
    return results


def failed(workload: str, system: str, note: str) -> Result:
    return Result(
        workload=workload,
        system=system,
        metric="status",
        unit="",
        higher_is_better=True,
        status="failed",
        note=note[:1000],
    )


async def build_venv() -> None:
    """Create or update the peers venv; a stamp of the requirements' hash makes it idempotent."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not PYTHON.exists():
        await run_checked(sys.executable, "-m", "venv", str(VENV))
    uv = ROOT / ".tools" / "bin" / "uv"
    if uv.exists():
        install = [str(uv), "pip", "install", "--python", str(PYTHON), "-r", str(REQUIREMENTS)]
    else:
        install = [str(PYTHON), "-m", "pip", "install", "-r", str(REQUIREMENTS)]
    await run_checked(*install)
    STAMP.write_text(digest + "\n")


async def run_checked(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), BUILD_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{argv[0]} timed out") from None
    if process.returncode != 0:
        tail = output.decode(errors="replace")[-800:]
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({process.returncode}): {tail}")


SLOWEST_PACE = {"rq": 8.0}
"""No-ops per second below which an adapter is taken as hung (RQ forks a process per job)."""
W1_CAP = {"rq": 1000}
"""W1 operations at most, for a peer so slow that 5,000 would take most of the run (RQ: ~15/s,
over 15 minutes for its W1 alone). A rate is what is compared; the note says the count."""


def w1_operations(peer: str, scale: Scale) -> int:
    return min(scale.w1_operations, W1_CAP.get(peer, scale.w1_operations))


def adapter_timeout(peer: str, scale: Scale, systems: int) -> float:
    """Generous but bounded: startup plus W1 twice (one and two workers) at the slowest pace
    expected, W2 at 200 ms a round trip and W3 at 3 s a cancel."""
    pace = SLOWEST_PACE.get(peer, 20.0)
    per_repetition = (
        2 * w1_operations(peer, scale) / pace + scale.w2_round_trips * 0.2 + scale.w3_cancels * 3.0
    )
    return systems * (120.0 + scale.repetitions * per_repetition)


async def run_adapter(
    peer: str, systems: tuple[str, ...], workloads: set[str], scale: Scale
) -> list[Result]:
    work_dir = scale.work_dir / "peers"
    work_dir.mkdir(parents=True, exist_ok=True)
    arguments = json.dumps(
        {
            "workloads": sorted(workloads),
            "repetitions": scale.repetitions,
            "w1_operations": w1_operations(peer, scale),
            "w2_round_trips": scale.w2_round_trips,
            "w3_cancels": scale.w3_cancels,
            "redis_url": scale.redis_url,
            "postgres_admin_url": scale.postgres_admin_url,
            "work_dir": str(work_dir),
        }
    )
    stderr_path = work_dir / f"{peer}.stderr.log"
    groups_path = work_dir / f"{peer}.process-groups"
    groups_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "BENCH_PROCESS_GROUPS": str(groups_path),
    }
    env.pop("VIRTUAL_ENV", None)
    timeout = adapter_timeout(peer, scale, len(systems))
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(PYTHON),
            "-m",
            f"bench.peers.{peer}_bench",
            arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=str(work_dir),
            env=env,
            start_new_session=True,
        )
        assert process.stdout is not None
        lines: list[bytes] = []

        async def collect() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                lines.append(line)
            await process.wait()

        problem = ""
        try:
            await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            problem = f"timed out after {timeout:.0f} s"
        finally:
            # The adapter's workers live in their own process groups, which the adapter kills
            # on its way out; SIGTERM first gives it the chance, SIGKILL makes sure.
            await stop_group(process)
            kill_recorded_groups(groups_path)
    results = parse(lines)
    if process.returncode not in (0, None) and not problem:
        problem = f"adapter exited with {process.returncode}"
    if problem:
        tail = stderr_path.read_text(errors="replace")[-600:]
        reported = {(r.workload, r.system) for r in results}
        for system in systems:
            for workload in sorted(workloads):
                if (workload, system) not in reported:
                    results.append(failed(workload, system, f"{problem}; stderr: {tail}"))
    return results


async def stop_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def kill_recorded_groups(path: Path) -> None:
    """SIGKILL the worker process groups an adapter recorded (all gone if it cleaned up)."""
    if not path.exists():
        return
    for line in path.read_text().split():
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(int(line), signal.SIGKILL)


def parse(lines: list[bytes]) -> list[Result]:
    results = []
    for line in lines:
        text = line.decode(errors="replace").strip()
        if not text.startswith("{"):
            continue
        try:
            results.append(Result.from_json(json.loads(text)))
        except (ValueError, TypeError):
            continue
    return results


def remove_venv() -> None:
    """For a clean rebuild (`python -c 'import bench.peers_runner as r; r.remove_venv()'`)."""
    shutil.rmtree(VENV, ignore_errors=True)
