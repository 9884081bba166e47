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
import time
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


def _child_main(
    module_name: str, qualname: str, op: Operation, conn: Connection, kill_grace: float
) -> None:
    os.setsid()  # lead a new process group: the engine signals the whole group
    handler = _resolve(module_name, qualname)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    if asyncio.iscoroutinefunction(handler):
        _report(send, lambda: asyncio.run(_run_async(handler, op, conn, send, kill_grace)))
        return
    # A plain handler runs on the child's main thread, where it may use signals like any program.
    ctx = OperationContext(
        op,
        loop=None,
        on_progress=lambda p: send(("progress", p)),
        on_metadata=lambda m: send(("metadata", m)),
    )
    _listen_for_stop(conn, ctx.request_stop, kill_grace)
    _report(send, lambda: handler(ctx))


async def _run_async(
    handler: Any,
    op: Operation,
    conn: Connection,
    send: Callable[[tuple[Any, ...]], None],
    kill_grace: float,
) -> JsonValue:
    loop = asyncio.get_running_loop()
    ctx = OperationContext(
        op,
        loop=loop,
        on_progress=lambda p: send(("progress", p)),
        on_metadata=lambda m: send(("metadata", m)),
    )
    _listen_for_stop(conn, lambda: loop.call_soon_threadsafe(ctx.request_stop), kill_grace)
    result: JsonValue = await handler(ctx)
    return result


def _listen_for_stop(conn: Connection, on_stop: Callable[[], object], kill_grace: float) -> None:
    """Relay the worker's stop request; and if the worker itself vanishes (its end of the pipe
    closes), stop too: nobody would record this run, and a recovered operation may already run
    elsewhere. Cooperatively first, then SIGKILL to the whole group, grandchildren included."""

    def listen() -> None:
        stopped = False
        try:
            while True:
                if conn.recv() == _STOP and not stopped:
                    stopped = True
                    on_stop()
        except (EOFError, OSError):
            pass
        with contextlib.suppress(RuntimeError):  # the handler's loop may be closed already
            on_stop()
        time.sleep(kill_grace)
        os.killpg(0, signal.SIGKILL)

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
        kill_grace: float,
    ) -> None:
        module_name, qualname = handler.__module__, handler.__qualname__
        context = multiprocessing.get_context("spawn")
        self._parent_conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(module_name, qualname, op, child_conn, kill_grace),
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
        try:
            outcome = await self._relay(loop)
            await self._exited(loop)
        finally:
            self._parent_conn.close()
        self._process.join()  # it has exited: this only reaps it
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

    async def _relay(self, loop: asyncio.AbstractEventLoop) -> tuple[Any, ...] | None:
        """Forward progress until the outcome arrives or the pipe closes. Reads on the event
        loop when the pipe is readable: no thread per child, so no pool caps how many run."""
        outcome: asyncio.Future[tuple[Any, ...] | None] = loop.create_future()

        def readable() -> None:
            try:
                while self._parent_conn.poll():
                    message = self._parent_conn.recv()
                    if message[0] == "progress":
                        self._on_progress(message[1])
                    elif message[0] == "metadata":
                        self._on_metadata(message[1])
                    elif not outcome.done():
                        outcome.set_result(tuple(message))
            except (EOFError, OSError):
                if not outcome.done():
                    outcome.set_result(None)

        fd = self._parent_conn.fileno()
        loop.add_reader(fd, readable)
        try:
            return await outcome
        finally:
            loop.remove_reader(fd)

    async def _exited(self, loop: asyncio.AbstractEventLoop) -> None:
        exited: asyncio.Future[None] = loop.create_future()
        sentinel = self._process.sentinel

        def ended() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(sentinel, ended)
        try:
            await exited
        finally:
            loop.remove_reader(sentinel)

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
