"""Load generators for the read workloads (W4): `wrk` when it is installed, else a Python process.

Every generator runs in a process of its own, never in the harness's event loop, and issues
GETs of paths picked at random from a file (one path, or one gRPC operation name, per line) over
a fixed number of keep-alive connections for a fixed time. Each returns a `LoadReport`.

- `run_wrk`: `wrk --latency` with a Lua script that picks the paths; its text output is parsed.
- `run_python_http`: `python -m bench.load http ...`: raw asyncio HTTP/1.1 keep-alive
  connections (uvloop when importable), so that the client costs as little as Python allows.
- `run_python_grpc`: `python -m bench.load grpc ...`: grpc.aio `GetOperation` calls, that many
  at once over one channel (gRPC multiplexes calls on one HTTP/2 connection).

A Python generator shares the machine's cores with the server it measures and is slower than
wrk: its figure is a floor, and the report's note says which generator ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]

_WRK_SCRIPT = """\
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  math.randomseed(math.floor(os.clock() * 1000000) + os.time())
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


@dataclass(frozen=True)
class LoadReport:
    generator: str
    """`wrk -t2 -c64 -d10s`, `python-http -c64`, `python-grpc -c64`..."""
    requests: int
    """Completed requests (with any status)."""
    seconds: float
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    """Responses that were not 2xx, failed calls and socket errors."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    base_url: str, paths_file: Path, *, connections: int, seconds: float, threads: int = 2
) -> LoadReport:
    """Run wrk against base_url with the paths in paths_file (absolute paths, one a line)."""
    script = paths_file.with_suffix(".lua")
    script.write_text(_WRK_SCRIPT)
    duration = max(1, round(seconds))
    threads = max(1, min(threads, connections))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
        "--",
        str(paths_file),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {(done.stderr or done.stdout)[-500:]}")
    return parse_wrk(done.stdout, f"wrk -t{threads} -c{connections} -d{duration}s")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str, generator: str = "wrk") -> LoadReport:
    """The figures of a `wrk --latency` run from its text output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if rps is None or total is None:
        raise ValueError(f"unexpected wrk output: {output[-500:]}")
    percentiles = {
        int(m[1]): _ms(m[2]) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M)
    }
    errors = 0
    if non2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non2xx[1])
    if sockets := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(sockets[i]) for i in range(1, 5))
    return LoadReport(
        generator=generator,
        requests=int(total[1]),
        seconds=_ms(total[2] + total[3]) / 1000,
        requests_per_second=float(rps[1]),
        p50_ms=percentiles.get(50),
        p99_ms=percentiles.get(99),
        errors=errors,
    )


def _python_process(args: list[str], timeout: float) -> LoadReport:
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load process exited {done.returncode}: {done.stderr[-1000:]}")
    return LoadReport(**json.loads(done.stdout.strip().splitlines()[-1]))


def run_python_http(
    base_url: str, paths_file: Path, *, connections: int, seconds: float
) -> LoadReport:
    """The Python HTTP/1.1 generator, in a process of its own."""
    args = ["http", base_url, str(paths_file), f"--connections={connections}"]
    return _python_process([*args, f"--seconds={seconds}"], timeout=seconds + 60)


def run_python_grpc(target: str, names_file: Path, *, calls: int, seconds: float) -> LoadReport:
    """The Python gRPC GetOperation generator, in a process of its own."""
    args = ["grpc", target, str(names_file), f"--connections={calls}"]
    return _python_process([*args, f"--seconds={seconds}"], timeout=seconds + 60)


def _summary(generator: str, latencies: list[float], errors: int, seconds: float) -> LoadReport:
    ordered = sorted(latencies)

    def percentile(q: float) -> float | None:
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    count = len(latencies) + errors
    return LoadReport(
        generator=generator,
        requests=count,
        seconds=seconds,
        requests_per_second=count / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        errors=errors,
    )


async def _http_load(base_url: str, paths: list[str], connections: int, seconds: float) -> str:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    header = f"Host: {parts.netloc}\r\nUser-Agent: bench.load\r\nAccept: */*\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        clock, pick = time.perf_counter, random.choice
        try:
            while clock() < stop_at:
                began = clock()
                writer.write(b"GET " + pick(paths).encode() + b" HTTP/1.1\r\n" + header)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if head[9:10] == b"2":
                    latencies.append(clock() - began)
                else:
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    stop_at = began + seconds
    outcomes = await asyncio.gather(
        *(connection() for _ in range(connections)), return_exceptions=True
    )
    errors += sum(1 for outcome in outcomes if isinstance(outcome, BaseException))
    elapsed = time.perf_counter() - began
    report = _summary(f"python-http -c{connections}", latencies, errors, elapsed)
    return json.dumps(report.to_json())


async def _grpc_load(target: str, names: list[str], calls: int, seconds: float) -> str:
    import grpc
    from google.longrunning import operations_pb2, operations_pb2_grpc

    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = operations_pb2_grpc.OperationsStub(channel)  # type: ignore[no-untyped-call]
        await channel.channel_ready()
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal errors
            clock, pick = time.perf_counter, random.choice
            while clock() < stop_at:
                began = clock()
                try:
                    request = operations_pb2.GetOperationRequest(name=pick(names))
                    await stub.GetOperation(request, timeout=10)
                    latencies.append(clock() - began)
                except grpc.RpcError:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(calls)))
        elapsed = time.perf_counter() - began
    return json.dumps(_summary(f"python-grpc -c{calls}", latencies, errors, elapsed).to_json())


def _run(coroutine: Any) -> str:
    try:
        import uvloop
    except ImportError:
        result: str = asyncio.run(coroutine)
        return result
    return str(uvloop.run(coroutine))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("protocol", choices=["http", "grpc"])
    parser.add_argument("target", help="http://host:port, or host:port for grpc")
    parser.add_argument("paths", type=Path, help="a file of paths (http) or names (grpc)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    lines = [line for line in args.paths.read_text().splitlines() if line]
    if args.protocol == "http":
        print(_run(_http_load(args.target, lines, args.connections, args.seconds)), flush=True)
    else:
        print(_run(_grpc_load(args.target, lines, args.connections, args.seconds)), flush=True)


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


if __name__ == "__main__":
    main()
