"""`longrunning serve`, `worker` and `migrate`: flags into Settings, then app.py runs the node.

app.py (and with it every face, store and backend) is imported only when one of these commands
runs, so that the client commands (`ops`, `db`) start quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from longrunning.app import Endpoints, Settings, TlsFiles

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("LONGRUNNING_STORE"),
        help="store URL: postgresql://user@host/db, sqlite:///path/to/file.db or memory:// "
        "(default: the SQLite file in --data-dir; env LONGRUNNING_STORE)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the default SQLite store lives (env LONGRUNNING_DATA_DIR; "
        "default ~/.local/share/longrunning)",
    )


def _engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        default=os.environ.get("LONGRUNNING_MIGRATE", "true").lower() not in ("0", "false", "no"),
        help="only check that the store's schema is current, never change it: for database "
        "roles that may not (run `longrunning migrate` first; env LONGRUNNING_MIGRATE=false)",
    )
    parser.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE and register its @operation_kind handlers (repeatable)",
    )
    parser.add_argument(
        "--databases",
        type=Path,
        default=os.environ.get("LONGRUNNING_DATABASES") or None,
        metavar="FILE",
        help="the database servers this node manages, a TOML file (env LONGRUNNING_DATABASES; "
        "default: server 'local', SQLite files in --data-dir/databases/local)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=float(os.environ.get("LONGRUNNING_LEASE_SECONDS", "10")),
        help="lease length; a lost worker's operations are recovered within about this "
        "(default 10)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=30.0,
        help="finished operations are purged this many days after they end (default 30)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        help="serve operations of this queue (repeatable; default: the 'default' queue)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LONGRUNNING_LOG_LEVEL", "info"),
        help="debug, info, warning or error (env LONGRUNNING_LOG_LEVEL; default info)",
    )


def add_server_commands(sub: argparse._SubParsersAction[ParserT]) -> None:
    serve = sub.add_parser("serve", help="run the HTTP API with an embedded worker")
    _store_flags(serve)
    _engine_flags(serve)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0 picks)")
    serve.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve google.longrunning.Operations over gRPC on PORT (0 picks; "
        "env LONGRUNNING_GRPC_PORT; default: no gRPC)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=16,
        metavar="N",
        help="operations the embedded worker runs at once; 0 serves the API only (default 16)",
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        default=os.environ.get("LONGRUNNING_TLS_CERT") or None,
        metavar="FILE",
        help="serve HTTPS (and gRPC over TLS) with this PEM certificate chain; needs --tls-key "
        "(env LONGRUNNING_TLS_CERT)",
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        default=os.environ.get("LONGRUNNING_TLS_KEY") or None,
        metavar="FILE",
        help="the PEM private key of --tls-cert (env LONGRUNNING_TLS_KEY)",
    )
    serve.add_argument(
        "--azure-retry-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help="the Retry-After the Azure faces send while an operation runs: how often Azure "
        "clients poll (env LONGRUNNING_AZURE_RETRY_AFTER; default 1)",
    )
    worker = sub.add_parser("worker", help="run a worker only, on the same store as a server")
    _store_flags(worker)
    _engine_flags(worker)
    worker.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="operations run at once"
    )
    mig = sub.add_parser("migrate", help="apply the store's pending schema migrations")
    _store_flags(mig)
    mig.add_argument(
        "--check",
        action="store_true",
        help="only check that the schema is current (exit 1 naming what is missing)",
    )


def _settings(args: argparse.Namespace, *, concurrency: int) -> Settings:
    from longrunning.app import Settings, default_data_dir
    from longrunning.engine.config import EngineConfig
    from longrunning.engine.service import check_queue

    if concurrency < 0:
        raise ValueError("the number of workers must not be negative")
    if args.lease_seconds <= 0:
        raise ValueError("--lease-seconds must be positive")
    if args.retention_days <= 0:
        raise ValueError("--retention-days must be positive")
    grpc_port = getattr(args, "grpc_port", None)
    if grpc_port is None and "grpc_port" in args and os.environ.get("LONGRUNNING_GRPC_PORT"):
        text = os.environ["LONGRUNNING_GRPC_PORT"].strip()
        grpc_port = int(text) if text.isdigit() else -1
    if grpc_port is not None and not 0 <= grpc_port <= 65535:
        raise ValueError("--grpc-port (or LONGRUNNING_GRPC_PORT) must be a port, 0 picks one")
    retry_after = getattr(args, "azure_retry_after", None)
    if retry_after is None:
        text = os.environ.get("LONGRUNNING_AZURE_RETRY_AFTER", "1").strip()
        retry_after = int(text) if text.isdigit() else -1
    if not 0 <= retry_after <= 3600:
        raise ValueError(
            "--azure-retry-after (or LONGRUNNING_AZURE_RETRY_AFTER) must be 0 to 3600 seconds"
        )
    return Settings(
        store_url=_store_url(args),
        data_dir=args.data_dir or default_data_dir(),
        databases_file=args.databases,
        azure_retry_after=retry_after,
        migrate=args.migrate,
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 8080),
        grpc_port=grpc_port,
        tls=_tls(args),
        handler_modules=tuple(args.handlers),
        embedded_worker=concurrency > 0,
        engine=EngineConfig(
            lease_seconds=args.lease_seconds,
            concurrency=max(concurrency, 1),
            retention=timedelta(days=args.retention_days),
            queues=tuple(check_queue(queue) for queue in args.queue) or ("default",),
        ),
    )


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    from longrunning.app import TlsFiles

    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("--tls-cert and --tls-key go together: give both, or neither")
    return TlsFiles(cert=Path(cert), key=Path(key))


def _store_url(args: argparse.Namespace) -> str:
    if args.store:
        return str(args.store)
    from longrunning.app import default_data_dir, default_store_url

    data_dir: Path = args.data_dir or default_data_dir()
    return default_store_url(data_dir)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _until_signalled(run: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: stop waiting for the drain
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    assert callable(run)
    await run(stop)


async def run_serve(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    settings = _settings(args, concurrency=args.workers)

    def ready(endpoints: Endpoints) -> None:
        grpc = f" and grpc {endpoints.grpc}" if endpoints.grpc else ""
        print(
            f"longrunning serving {endpoints.http}{grpc} (store {settings.store_url})", flush=True
        )

    from longrunning.app import run_server

    await _until_signalled(lambda stop: run_server(settings, stop, on_ready=ready))
    return 0


async def run_worker(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    settings = _settings(args, concurrency=args.concurrency)

    def ready(worker_id: str) -> None:
        print(f"longrunning worker {worker_id} (store {settings.store_url})", flush=True)

    from longrunning.app import run_worker as run_worker_node

    await _until_signalled(lambda stop: run_worker_node(settings, stop, on_ready=ready))
    return 0


async def run_migrate(args: argparse.Namespace) -> int:
    url = _store_url(args)
    from longrunning.app import migrate

    await migrate(url, check_only=args.check)
    print(f"store {url} is {'current' if args.check else 'migrated'}", flush=True)
    return 0
