"""The composition root: builds stores, the engine and the faces from Settings, and runs a node.

Everything is wired here and nowhere else. `cli` parses flags into Settings and calls in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from longrunning.core.ports import OperationStore
from longrunning.databases.backends import Backends
from longrunning.databases.kinds import database_kinds
from longrunning.databases.servers import default_servers, load_servers
from longrunning.databases.service import DatabaseService
from longrunning.engine.config import EngineConfig
from longrunning.engine.demo import DEMO_KINDS
from longrunning.engine.kinds import HandlerRegistry
from longrunning.engine.recovery import LeaseReaper
from longrunning.engine.service import OperationService
from longrunning.engine.worker import Worker
from longrunning.faces.azure_arm.rest import arm_routes
from longrunning.faces.azure_classic.rest import classic_routes
from longrunning.faces.google.rest import google_routes
from longrunning.faces.google.rpc import start_grpc_server
from longrunning.faces.native.rest import http_exception_handler, native_routes
from longrunning.stores import open_store

log = logging.getLogger("longrunning")


def default_data_dir() -> Path:
    """$LONGRUNNING_DATA_DIR, else $XDG_DATA_HOME/longrunning, else ~/.local/share/longrunning."""
    if explicit := os.environ.get("LONGRUNNING_DATA_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "longrunning"


def default_store_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'longrunning.db').resolve()}"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate chain and its private key."""

    cert: Path
    key: Path

    def check(self) -> None:
        """Load them once, so that a wrong path or a mismatched pair fails the start with one
        clear line instead of inside the HTTP server."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except OSError as exc:  # ssl.SSLError is one too
            if isinstance(exc, ssl.SSLError):
                reason = f"{exc.reason or exc}; both must be PEM, the key unencrypted and the one "
                reason += "of the certificate"
            else:
                reason = exc.strerror or str(exc)
            raise ValueError(
                f"cannot use TLS certificate {self.cert} with key {self.key}: {reason}"
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    store_url: str
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    databases_file: Path | None = None
    """The database servers, a TOML file; None: server `local` in `data_dir`."""
    azure_retry_after: int = 1
    """Seconds Azure clients are told to wait between polls."""
    migrate: bool = True
    """Apply pending schema migrations at start; if off, only check that there are none."""
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None
    """Serve google.longrunning.Operations over gRPC on this port too (0 picks one)."""
    tls: TlsFiles | None = None
    """Serve HTTPS (and gRPC over TLS) with this certificate and key; plain text without."""
    handler_modules: tuple[str, ...] = ()
    engine: EngineConfig = field(default_factory=EngineConfig)
    embedded_worker: bool = True
    """`serve` runs a worker in the same process unless this is off (API-only nodes)."""
    max_body_bytes: int = 1_048_576


def build_backends(settings: Settings) -> Backends:
    servers = (
        default_servers(settings.data_dir)
        if settings.databases_file is None
        else load_servers(settings.databases_file)
    )
    return Backends(servers)


def build_registry(modules: Sequence[str], backends: Backends) -> HandlerRegistry:
    registry = HandlerRegistry((*DEMO_KINDS, *database_kinds(backends)))
    for module in modules:
        try:
            registry.add_module(module)
        except ImportError as exc:
            raise ValueError(f"cannot import handler module {module!r}: {exc}") from exc
    return registry


def build_http_app(
    service: OperationService, databases: DatabaseService, settings: Settings
) -> Starlette:
    return Starlette(
        routes=[
            *native_routes(service, databases=databases, max_body_bytes=settings.max_body_bytes),
            *google_routes(service, max_body_bytes=settings.max_body_bytes, databases=databases),
            *arm_routes(
                service,
                databases,
                retry_after=settings.azure_retry_after,
                max_body_bytes=settings.max_body_bytes,
            ),
            *classic_routes(service),
        ],
        exception_handlers={HTTPException: http_exception_handler},
    )


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a started node listens."""

    http: str
    """e.g. http://127.0.0.1:8080"""
    grpc: str | None = None
    """host:port of the gRPC server, if it runs."""


@contextlib.asynccontextmanager
async def opened_store(url: str, *, migrate: bool = True) -> AsyncIterator[OperationStore]:
    store = open_store(url, migrate=migrate)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the node stops the server and workers in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns TCP_NODELAY on for accepted connections only
    # when the socket says it is TCP. Without it every keep-alive response whose headers and body
    # go out in two writes waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


async def _background(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for `stop`, or fail fast if a background task dies."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def run_server(
    settings: Settings, stop: asyncio.Event, *, on_ready: Callable[[Endpoints], None]
) -> None:
    """Serve the HTTP API, the gRPC API if it has a port, and unless disabled an embedded
    worker, until `stop` is set."""
    tls = settings.tls
    if tls is not None:
        tls.check()
    backends = build_backends(settings)
    registry = build_registry(settings.handler_modules, backends)
    async with opened_store(settings.store_url, migrate=settings.migrate) as store:
        service = OperationService(store, registry)
        databases = DatabaseService(service, backends)
        reaper = LeaseReaper(store, config=settings.engine)
        worker = (
            Worker(store, registry, config=settings.engine, signals=service.signals)
            if settings.embedded_worker
            else None
        )
        sock = _bind(settings.host, settings.port)
        config = uvicorn.Config(
            build_http_app(service, databases, settings),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            lifespan="off",
            ssl_certfile=None if tls is None else str(tls.cert),
            ssl_keyfile=None if tls is None else str(tls.key),
        )
        server = _EmbeddedServer(config)
        tasks = [asyncio.create_task(reaper.run(), name="reaper")]
        if worker is not None:
            tasks.append(asyncio.create_task(worker.run(), name="worker"))
        http = asyncio.create_task(server.serve(sockets=[sock]), name="http")
        while not server.started:
            if http.done():
                await http  # it failed to start: raise why
            await asyncio.sleep(0.01)
        grpc_server = None
        try:
            if settings.grpc_port is not None:
                grpc_server, grpc_port = await start_grpc_server(
                    service,
                    settings.host,
                    settings.grpc_port,
                    tls=None if tls is None else (tls.cert.read_bytes(), tls.key.read_bytes()),
                )
            host, port = sock.getsockname()[:2]
            on_ready(
                Endpoints(
                    http=f"{'http' if tls is None else 'https'}://{_url_host(host)}:{port}",
                    grpc=None if grpc_server is None else f"{_url_host(host)}:{grpc_port}",
                )
            )
            await _background([*tasks, http], stop)
        finally:
            if grpc_server is not None:
                # Calls in flight (a WaitOperation, say) get a moment, then are cancelled.
                await grpc_server.stop(grace=2)
            if worker is not None:
                worker.stop()
            server.should_exit = True
            await asyncio.gather(http, *tasks[1:], return_exceptions=True)
            reaper.stop()
            await asyncio.gather(tasks[0], return_exceptions=True)
            sock.close()


async def run_worker(
    settings: Settings, stop: asyncio.Event, *, on_ready: Callable[[str], None]
) -> None:
    """Run a worker (and a reaper) on the store until `stop` is set."""
    registry = build_registry(settings.handler_modules, build_backends(settings))
    async with opened_store(settings.store_url, migrate=settings.migrate) as store:
        worker = Worker(store, registry, config=settings.engine)
        reaper = LeaseReaper(store, config=settings.engine)
        tasks = [
            asyncio.create_task(reaper.run(), name="reaper"),
            asyncio.create_task(worker.run(), name="worker"),
        ]
        on_ready(worker.worker_id)
        try:
            await _background(tasks, stop)
        finally:
            worker.stop()
            await asyncio.gather(tasks[1], return_exceptions=True)
            reaper.stop()
            await asyncio.gather(tasks[0], return_exceptions=True)


async def migrate(store_url: str, *, check_only: bool = False) -> None:
    """Apply pending migrations (opening a store applies them), or with `check_only` raise
    StoreError naming the missing ones, changing nothing."""
    async with opened_store(store_url, migrate=not check_only):
        pass
