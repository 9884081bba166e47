"""Files that appear whole or not at all: written under a hidden partial name, then published.

For exports and backups of any kind of server: the writer works on `partial_path(path)` (a dot
file beside the final name, so listings skip it), and `publish` makes it durable and gives it
its name with `os.link`, which fails rather than replacing a file made meanwhile. Whoever wrote
a partial removes it when the work fails or is cancelled (`discard`). Blocking functions: call
them in a thread. Nothing here knows about databases.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from longrunning.core.errors import Code
from longrunning.engine.context import OperationFailed


def partial_path(path: Path) -> Path:
    """Hidden, unique, in the same directory (so the link is within one file system)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def publish(partial: Path, path: Path, *, server: str) -> int:
    """Give a complete partial its name, durably; return its size. The partial is gone after,
    whatever happens; an existing `path` is never replaced (ALREADY_EXISTS)."""
    try:
        fsync(partial)
        os.link(partial, path)
    except FileExistsError:
        raise OperationFailed(
            f"file {path.name!r} was created on server {server!r} meanwhile",
            code=Code.ALREADY_EXISTS,
        ) from None
    finally:
        discard(partial)
    # The directory entry is what makes the name durable.
    fsync(path.parent)
    return path.stat().st_size
