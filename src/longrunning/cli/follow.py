"""Following an operation the CLI started until it is done: a live rich progress bar on a
terminal, plain progress lines otherwise (CI, pipes: no ANSI), nothing with --json.

Ctrl-C while following asks the server to cancel the operation and keeps following it until it
has truthfully ended; a second Ctrl-C stops following (the operation goes on, its cancel still
requested). Progress comes from the client's watch (server-sent events), never from polling.
No argument parsing and no exit codes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.text import Text

from longrunning.cli import render
from longrunning.client import ClientError, NativeClient

Json = dict[str, Any]

PLAIN_LINE_SECONDS = 1.0
"""Without a terminal, a progress line at most this often, unless the state changes."""


@dataclass(frozen=True, slots=True)
class Followed:
    op: Json | None
    """The operation as last seen; done unless `detached`."""
    detached: bool = False


class _Display:
    """Where updates and notes go: the rich bar, plain lines, or nowhere (--json)."""

    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.live = not quiet and console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_key: tuple[object, ...] | None = None
        self._last_line = ""
        self._last_time = 0.0

    @contextlib.contextmanager
    def shown(self) -> Iterator[None]:
        if not self.live:
            yield
            return
        self._bar = render.progress_bar(self.console)
        with self._bar:
            self._task = self._bar.add_task("", total=100.0, phase="", eta=None)
            yield
        self._bar = None

    def update(self, op: Json) -> None:
        if self.quiet:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, **render.progress_update(op))
            return
        if op.get("done"):
            return  # the closing line (the caller's) says how it ended
        key = (op.get("state"), op.get("cancelRequested"))
        line = render.progress_line(op)
        now = time.monotonic()
        changed = key != self._last_key
        if changed or (line != self._last_line and now - self._last_time >= PLAIN_LINE_SECONDS):
            print(line, flush=True)
            self._last_key, self._last_line, self._last_time = key, line, now

    def note(self, text: str, *, style: str = "magenta") -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(Text(text, style=style), soft_wrap=True)
        else:
            print(text, flush=True)


async def follow(
    client: NativeClient, op: Json, console: Console, *, quiet: bool, header: str | None = None
) -> Followed:
    """Follow `op` until it is done, or until a second Ctrl-C. `header` is printed first, once
    Ctrl-C means cancel: whoever sees it may interrupt."""
    display = _Display(console, quiet=quiet)
    op_id = str(op["id"])
    last: list[Json] = [op]

    async def watch() -> None:
        async for update in client.watch(op_id):
            last.append(update)
            display.update(update)

    watching = asyncio.create_task(watch())
    cancels: list[asyncio.Task[None]] = []
    detached = False

    async def cancel() -> None:
        try:
            await client.cancel(op_id)
        except ClientError as exc:
            display.note(f"cannot cancel: {exc.message}; still waiting (Ctrl-C again to stop)")

    def interrupted() -> None:
        nonlocal detached
        if cancels:
            detached = True
            watching.cancel()
            return
        display.note("cancelling... (Ctrl-C again to stop waiting; the cancel stands)")
        cancels.append(asyncio.create_task(cancel()))

    with _on_interrupt(interrupted), display.shown():
        if header is not None:
            display.note(header, style="")
        display.update(op)
        try:
            await watching
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not detached or (current is not None and current.cancelling()):
                raise  # cancelled from outside, not detached by a second Ctrl-C
            return Followed(last[-1], detached=True)
        finally:
            if cancels:
                # The cancel request goes out whatever happened to the watch; asyncio.wait, not
                # `await task` under suppress(CancelledError), which would swallow our own cancel.
                await asyncio.wait(cancels)
    return Followed(last[-1])


@contextlib.contextmanager
def _on_interrupt(handler: Callable[[], None]) -> Iterator[None]:
    """Run `handler` on SIGINT instead of asyncio.run's KeyboardInterrupt, where the loop can
    (the main thread of a Unix process); elsewhere Ctrl-C keeps its default meaning."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:  # e.g. asyncio.run's own, which it restores at its end
            signal.signal(signal.SIGINT, previous)
