"""The W4 ceiling: a hello-world Starlette endpoint on the server stack `longrunning serve` uses.

Same as src/longrunning/app.py's `run_server`: uvicorn `Server.serve` on a socket bound by hand,
inside `asyncio.run` (the standard event loop: `serve` does not install uvloop), uvicorn's
default HTTP protocol (httptools when installed), no access log, no lifespan, one process.
`--uvloop` runs the same app on uvloop instead, for comparison only.

One difference, on purpose: the socket is created with `IPPROTO_TCP`, so that asyncio sets
TCP_NODELAY on every accepted connection, as it does for a server that `uvicorn.run` or
`loop.create_server(host, port)` binds. A socket made as `socket.socket(AF_INET, SOCK_STREAM)`
(protocol 0) gets no TCP_NODELAY from asyncio: a response written in two parts (headers, body)
then waits for the client's delayed ACK, about 40 ms on Linux, on every keep-alive request.
`--no-nodelay` reproduces that, to show what it costs.

    python -m bench.asgi_hello --port 0   # prints "serving http://127.0.0.1:PORT"

`hello_server` runs it that way from the harness (the W4 ceiling, the W2 and W3 floor).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_ROOT = Path(__file__).resolve().parents[1]


async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world", "path": request.path_params.get("rest", "")})


def build_app() -> Starlette:
    # POST too: the W2 and W3 round-trip floors send what a start, a cancel and a wait send.
    return Starlette(routes=[Route("/{rest:path}", hello, methods=["GET", "POST"])])


async def serve(host: str, port: int, *, nodelay: bool = True) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP if nodelay else 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        build_app(), log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"asgi-hello serving http://{bound_host}:{bound_port}", flush=True)
    await task


@contextlib.contextmanager
def hello_server(run_dir: Path, *flags: str) -> Iterator[tuple[str, int]]:
    """This app in a process of its own (`flags` as for `main`), killed at the end; yields its
    URL and pid. Its stderr goes to run_dir/asgi-hello.log."""
    log = (run_dir / "asgi-hello.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.asgi_hello", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=_ROOT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().decode() if readable else ""
        match = re.search(r"serving (http://\S+)", line)
        if match is None:
            raise RuntimeError(f"asgi_hello did not start: {line!r}")
        yield match[1], proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.asgi_hello", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (not what serve does)")
    parser.add_argument(
        "--no-nodelay", dest="nodelay", action="store_false", help="bind without IPPROTO_TCP"
    )
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port, nodelay=args.nodelay))
    else:
        asyncio.run(serve(args.host, args.port, nodelay=args.nodelay))


if __name__ == "__main__":
    main()
