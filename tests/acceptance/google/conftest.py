"""A real `longrunning serve` with HTTP and gRPC on 127.0.0.1, for Google's own clients, with one
SQLite database server, `local`, under the parent `DB_PARENT`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from google.longrunning import operations_pb2
from google.protobuf import json_format
from grpc import Channel, insecure_channel

from tests.acceptance.processes import NodeProcess

ROOT = Path(__file__).resolve().parents[3]
DB_PARENT = "projects/db-tests/locations/local"
"""Where the database server `local` lives and lists its operations."""


@dataclass(frozen=True)
class GoogleServer:
    http: str
    """http://127.0.0.1:PORT, the REST endpoint, scheme included (the clients need it)."""
    grpc: str
    """127.0.0.1:PORT"""
    databases: Path
    """Where server `local` keeps its SQLite files."""
    files: Path
    """Its files directory: exports and backups."""

    def start(
        self, kind: str, request: dict[str, Any] | None = None, *, parent: str, **fields: Any
    ) -> operations_pb2.Operation:
        """Start an operation through the `:start` custom method; the Operation it returns."""
        body = {"kind": kind, "request": request or {}, **fields}
        reply = requests.post(f"{self.http}/v1/{parent}/operations:start", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        return json_format.Parse(reply.content, operations_pb2.Operation())

    def channel(self) -> Channel:
        return insecure_channel(self.grpc)


@pytest.fixture(scope="package")
def google_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoogleServer]:
    data = tmp_path_factory.mktemp("google")
    servers = data / "servers.toml"
    # Small, paced copy steps: a copy of a few MB runs for seconds, long enough to cancel.
    servers.write_text(
        f'[servers.local]\ndirectory = "databases/local"\nparent = "{DB_PARENT}"\n'
        "copy_pages_per_step = 16\ncopy_step_pause_seconds = 0.02\n"
    )
    node = NodeProcess(
        "serve", "--port", "0", "--grpc-port", "0",
        "--handlers", "tests.acceptance.google.handlers",
        env={
            "LONGRUNNING_DATA_DIR": str(data),
            "LONGRUNNING_DATABASES": str(servers),
            "PYTHONPATH": str(ROOT),
        },
        log=data / "serve.log",
    )  # fmt: skip
    yield GoogleServer(
        http=node.url,
        grpc=node.grpc_address,
        databases=data / "databases" / "local",
        files=data / "files" / "local",
    )
    assert node.terminate() == 0


@pytest.fixture
def parent() -> str:
    """A parent of this test's own, so that listings see only its operations."""
    return f"projects/p-{uuid.uuid4().hex[:12]}/locations/us-central1"
