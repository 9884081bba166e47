"""PostgreSQL servers for tests: the shared server named by LONGRUNNING_TEST_POSTGRES_URL, where a
test gets a database of its own (create_database, drop_database), and PrivateCluster, a throwaway
server a test may restart, stop or crash without disturbing anyone else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ADMIN_URL_ENV = "LONGRUNNING_TEST_POSTGRES_URL"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
_TIMEOUT = 30.0
_SERVER_USER = "postgres"


def admin_url() -> str | None:
    """The shared server's URL for a role that may create databases, or None when not set."""
    return os.environ.get(ADMIN_URL_ENV) or None


def require_admin_url() -> str:
    """admin_url(), or skip the test saying what is missing (CI turns that skip into a failure,
    see tests/no_skips_in_ci.py)."""
    admin = admin_url()
    if admin is None:
        pytest.skip(f"no PostgreSQL server: set {ADMIN_URL_ENV}")
    return admin


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The postgresql:// URL of a new, empty database on the shared server, dropped afterwards."""
    admin, name = require_admin_url(), f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain database name ([a-z_][a-z0-9_]*, 63 at most): {name!r}")


def create_database(admin_url: str, name: str) -> str:
    """Create an empty UTF-8 database on admin_url's server; return a postgresql:// URL for it
    (the form `--store` and LONGRUNNING_STORE take)."""
    _check_name(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(name)
            )
        )
    return database_url(admin_url, name)


def database_url(admin_url: str, name: str) -> str:
    """The postgresql:// URL of database `name` on the server and as the user of `admin_url`."""
    _check_name(name)
    parts = conninfo_to_dict(admin_url)
    user = f"{quote(str(parts['user']), safe='')}@" if parts.get("user") else ""
    password = parts.get("password")
    if password:
        user = f"{user[:-1]}:{quote(str(password), safe='')}@"
    host, port = parts.get("host", "127.0.0.1"), parts.get("port", "5432")
    return f"postgresql://{user}{host}:{port}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database if it exists, ending any session still connected to it."""
    _check_name(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _bindir() -> Path:
    """The newest directory holding the server binaries (initdb, postgres)."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(done.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: _version(p.parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise RuntimeError("no PostgreSQL server binaries (initdb, postgres) found")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _processes_in(directory: Path) -> list[int]:
    """The live processes whose working directory is this one (every PostgreSQL server process
    works in its data directory); zombies have none."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if cwd.readlink() == directory:
                found.append(int(cwd.parent.name))
        except OSError:
            continue
    return found


class PrivateCluster:
    """A throwaway PostgreSQL cluster on a free port of 127.0.0.1, trust auth, role postgres.

    As root the server runs as the postgres OS user; when that user cannot reach base_dir (pytest's
    tmp_path is under a 0700 directory), the cluster lives in a fresh directory under the system
    temporary directory instead. The server runs as our child (not daemonized), so a killed
    postmaster is reaped.
    """

    def __init__(self, base_dir: Path) -> None:
        self._base_dir = base_dir
        self.dir = base_dir
        self.port = 0
        self._as_root = os.geteuid() == 0
        self._own_dir = False
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", _SERVER_USER, "--", *args] if self._as_root else list(args)

    def init(self) -> None:
        """initdb into data_dir, then configure a free port, TCP on 127.0.0.1 and fsync."""
        self._base_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self._base_dir, _SERVER_USER, _SERVER_USER)
            reach = subprocess.run(self._command("test", "-w", str(self._base_dir)), check=False)
            if reach.returncode:
                self.dir = Path(tempfile.mkdtemp(prefix="longrunning-pg-"))
                self._own_dir = True
                shutil.chown(self.dir, _SERVER_USER, _SERVER_USER)
        initdb = [str(_bindir() / "initdb"), "-D", str(self.data_dir), "-A", "trust"]
        initdb += ["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]
        done = subprocess.run(self._command(*initdb), capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        self.port = _free_port()
        # A Unix socket path is at most 107 bytes; the tests connect over TCP anyway.
        sockets = str(self.dir) if len(str(self.dir)) < 90 else ""
        settings = (
            f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
            f"unix_socket_directories = '{sockets}'\nfsync = on\nmax_connections = 100\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def start(self) -> None:
        """Start the server (log in log_path) and wait until it accepts connections."""
        with self.log_path.open("ab") as log:
            self._server = subprocess.Popen(
                self._command(str(_bindir() / "postgres"), "-D", str(self.data_dir)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _TIMEOUT
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    log_tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start:\n{log_tail}") from None
                time.sleep(0.1)

    def _postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def _wait_stopped(self) -> None:
        assert self._server is not None
        self._server.wait(timeout=_TIMEOUT)
        self._server = None

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Shut the server down in pg_ctl's mode and wait until it has exited."""
        if self._server is None:
            return
        if self._server.poll() is None:
            os.kill(self._postmaster_pid(), _STOP_SIGNALS[mode])
        self._wait_stopped()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster, then its children, as a power cut would."""
        if self._server is None:
            return
        os.kill(self._postmaster_pid(), signal.SIGKILL)
        self._wait_stopped()
        deadline = time.monotonic() + _TIMEOUT
        while survivors := _processes_in(self.data_dir.resolve()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes outlived SIGKILL: {survivors}")
            for pid in survivors:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def __enter__(self) -> PrivateCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir if self._own_dir else self.data_dir, ignore_errors=True)
