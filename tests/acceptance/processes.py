"""Real `longrunning` processes for acceptance tests, from the installed CLI, killed for real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CLI = str(Path(sys.executable).with_name("longrunning"))


class NodeProcess:
    """A `longrunning serve` or `worker` subprocess; its first stdout line says it is up."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path) -> None:
        self.args = [CLI, *args]
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.banner = self._read_banner()

    def _read_banner(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                if b"\n" in buffer:
                    return buffer.split(b"\n", 1)[0].decode()
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(
            f"{' '.join(self.args)} did not start: {self.log_path.read_text()[-2000:]}"
        )

    @property
    def url(self) -> str:
        match = re.search(r"serving (https?://\S+)", self.banner)
        assert match, self.banner
        return match.group(1)

    @property
    def grpc_address(self) -> str:
        """host:port of the gRPC server, for a node started with --grpc-port."""
        match = re.search(r" and grpc (\S+)", self.banner)
        assert match, self.banner
        return match.group(1)

    def kill(self) -> None:
        """SIGKILL, no goodbye: the crash the tests are about."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code


Json = dict[str, Any]


def wait_for(
    client: httpx.Client, op_id: str, predicate: Callable[[Json], bool], timeout: float = 30.0
) -> Json:
    deadline = time.monotonic() + timeout
    while True:
        op: Json = client.get(f"/api/v1/operations/{op_id}").json()
        if predicate(op):
            return op
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last seen {op}")
        time.sleep(0.05)


def running(pid: int) -> bool:
    """Alive and not a zombie (in a container, nobody may reap an orphan's zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
