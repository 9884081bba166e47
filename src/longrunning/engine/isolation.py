"""Process-isolated handlers: the handler runs in a child process that leads its own process
group, so the last rungs of the cancel ladder (SIGTERM, then SIGKILL, to the whole group,
grandchildren such as pg_dump included) can stop anything it does.

The child gets the operation, reports progress and its outcome over a pipe, and hears the
cooperative stop request over the same pipe. No store access here, in parent or child.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from longrunning.core.json_values import JsonObject, JsonValue
from longrunning.core.operation import Failure, Operation, Progress
from longrunning.engine.context import OperationCancelled, OperationContext, OperationFailed

_STOP = "stop"


class ProcessKilled(Exception):
    """The handler's process group was signalled by the engine and has been reaped."""


class ProcessDied(Exception):
    """The handler's process ended without an outcome (crash, OOM kill, signal from elsewhere)."""


def _resolve(module_name: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "handler", target)  # an OperationKind, or the function itself


def _child_main(module_name: str, qualname: str, op: Operation, conn: Connection) -> None:
    os.setsid()  # lead a new process group: the engine signals the whole group
    handler = _resolve(module_name, qualname)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    if asyncio.iscoroutinefunction(handler):
        _report(send, lambda: asyncio.run(_run_async(handler, op, conn, send)))
        return
    # A plain handler runs on the child's main thread, where it may use signals like any program.
    ctx = OperationContext(
        op,
        loop=None,
        on_progress=lambda p: send(("progress", p)),
        on_metadata=lambda m: send(("metadata", m)),
    )
    _listen_for_stop(conn, ctx.request_stop)
    _report(send, lambda: handler(ctx))


async def _run_async(
    handler: Any, op: Operation, conn: Connection, send: Callable[[tuple[Any, ...]], None]
) -> JsonValue:
    loop = asyncio.get_running_loop()
    ctx = OperationContext(
        op,
        loop=loop,
        on_progress=lambda p: send(("progress", p)),
        on_metadata=lambda m: send(("metadata", m)),
    )
    _listen_for_stop(conn, lambda: loop.call_soon_threadsafe(ctx.request_stop))
    result: JsonValue = await handler(ctx)
    return result


def _listen_for_stop(conn: Connection, on_stop: Callable[[], object]) -> None:
    def listen() -> None:
        try:
            while conn.recv() != _STOP:
                pass
        except (EOFError, OSError):
            pass  # the parent is gone or done; either way, stop
        on_stop()

    threading.Thread(target=listen, daemon=True, name="stop-listener").start()


def _report(send: Callable[[tuple[Any, ...]], None], run: Callable[[], JsonValue]) -> None:
    try:
        send(("result", run()))
    except OperationCancelled:
        send(("cancelled",))
    except OperationFailed as exc:
        send(("failed", exc.failure, exc.retryable))
    except Exception as exc:
        send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessRun:
    """The parent's handle on one process-isolated handler run."""

    def __init__(
        self,
        handler: Any,
        op: Operation,
        *,
        on_progress: Callable[[Progress], None],
        on_metadata: Callable[[JsonObject], None],
    ) -> None:
        module_name, qualname = handler.__module__, handler.__qualname__
        context = multiprocessing.get_context("spawn")
        self._parent_conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(module_name, qualname, op, child_conn),
            name=f"longrunning-op-{op.id}",
            daemon=False,
        )
        self._child_conn = child_conn
        self._on_progress = on_progress
        self._on_metadata = on_metadata
        self._signalled = False

    async def run(self) -> JsonValue:
        """Start the child, relay its progress, return its result or raise how it ended."""
        loop = asyncio.get_running_loop()
        self._process.start()
        self._child_conn.close()
        outcome = await loop.run_in_executor(None, self._relay, loop)
        await loop.run_in_executor(None, self._process.join)
        self._parent_conn.close()
        if outcome is None:
            if self._signalled:
                raise ProcessKilled(f"handler process ended by signal {-self._exit_code()}")
            raise ProcessDied(f"handler process ended with exit code {self._exit_code()}")
        kind = outcome[0]
        if kind == "result":
            result: JsonValue = outcome[1]
            return result
        if kind == "cancelled":
            raise OperationCancelled
        if kind == "failed":
            failure: Failure = outcome[1]
            error = OperationFailed(failure.message, code=failure.code, retryable=outcome[2])
            error.failure = failure
            raise error
        raise RuntimeError(outcome[1])

    def _exit_code(self) -> int:
        return self._process.exitcode if self._process.exitcode is not None else 0

    def _relay(self, loop: asyncio.AbstractEventLoop) -> tuple[Any, ...] | None:
        """In a thread: forward progress until the outcome arrives or the pipe closes."""
        while True:
            try:
                message = self._parent_conn.recv()
            except (EOFError, OSError):
                return None
            if message[0] == "progress":
                loop.call_soon_threadsafe(self._on_progress, message[1])
            elif message[0] == "metadata":
                loop.call_soon_threadsafe(self._on_metadata, message[1])
            else:
                return tuple(message)

    def request_stop(self) -> None:
        """The cooperative rung: the child's `checkpoint()` starts raising."""
        with contextlib.suppress(OSError, ValueError):  # already gone
            self._parent_conn.send(_STOP)

    def signal_group(self, sig: signal.Signals) -> None:
        """SIGTERM or SIGKILL to the child's whole process group."""
        pid = self._process.pid
        if pid is None or self._process.exitcode is not None:
            return
        self._signalled = True
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            # The child has not called setsid() yet: it has no group, nor grandchildren.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
