"""A real `longrunning serve` over HTTPS plus a separate `worker`, for Microsoft's own clients.

The API node runs no worker (`--workers 0`), so that a test can freeze the worker process
(SIGSTOP) and see what the faces say while work is in flight but stopped.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from tests.acceptance.processes import NodeProcess

ROOT = Path(__file__).resolve().parents[3]
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
SERVER = "testsvr"


@dataclass(frozen=True)
class AzureServer:
    url: str
    """https://127.0.0.1:PORT"""
    ca: Path
    """The CA certificate that verifies the server's (for `connection_verify`)."""
    server_dir: Path
    """Where server `testsvr` keeps its SQLite files."""
    files_dir: Path
    """Its files directory: where exports are written and imports read from."""
    worker: NodeProcess

    def native(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, verify=ssl.create_default_context(cafile=self.ca), timeout=30
        )

    def start(self, kind: str, request: dict[str, object], *, target: str | None = None) -> str:
        """Start an operation through the native API; its id."""
        body: dict[str, object] = {"kind": kind, "request": request}
        if target is not None:
            body["target"] = target
        with self.native() as client:
            reply = client.post("/api/v1/operations", json=body)
        assert reply.status_code in (200, 201), reply.text
        op_id: str = reply.json()["id"]
        return op_id


@pytest.fixture(scope="package")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    data = tmp_path_factory.mktemp("azure")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    ca, cert, key = data / "ca.pem", data / "cert.pem", data / "key.pem"
    authority.cert_pem.write_to_path(str(ca))
    issued.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    servers = data / "servers.toml"
    # Small, paced copy steps: a copy of a few MB runs for seconds, long enough to cancel.
    servers.write_text(
        f'[servers.{SERVER}]\ndirectory = "dbs"\n'
        "copy_pages_per_step = 16\ncopy_step_pause_seconds = 0.02\n"
    )
    env = {
        "LONGRUNNING_DATA_DIR": str(data),
        "LONGRUNNING_DATABASES": str(servers),
        "PYTHONPATH": str(ROOT),
    }
    api = NodeProcess(
        "serve", "--port", "0", "--workers", "0", "--tls-cert", str(cert), "--tls-key", str(key),
        env=env, log=data / "serve.log",
    )  # fmt: skip
    worker = NodeProcess("worker", env=env, log=data / "worker.log")
    try:
        yield AzureServer(
            url=api.url,
            ca=ca,
            server_dir=data / "dbs",
            files_dir=data / "files" / SERVER,
            worker=worker,
        )
    finally:
        worker.terminate()
        api.terminate()


def new_id() -> str:
    return str(uuid.uuid4())
