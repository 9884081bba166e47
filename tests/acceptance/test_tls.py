"""`serve --tls-cert/--tls-key`: HTTPS and gRPC over TLS from one certificate, checked by clients
that verify it (httpx, the lro CLI, google-api-core over REST and gRPC)."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import trustme
from google.api_core import operations_v1
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.protobuf import struct_pb2  # noqa: F401  (REST parsing resolves Struct; see google.md)

from tests.acceptance.processes import CLI, NodeProcess

pytestmark = pytest.mark.acceptance

TlsFiles = tuple[Path, Path, Path]


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """(CA certificate, server certificate chain, server key), as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    server = authority.issue_cert("127.0.0.1", "localhost")
    ca, cert, key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    authority.cert_pem.write_to_path(str(ca))
    server.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return ca, cert, key


@pytest.fixture(scope="module")
def node(tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = tmp_path_factory.mktemp("tls-node")
    _, cert, key = tls_files
    process = NodeProcess(
        "serve", "--port", "0", "--grpc-port", "0",
        env={
            "LONGRUNNING_DATA_DIR": str(data),
            "LONGRUNNING_TLS_CERT": str(cert),  # the environment works as the flags do
            "LONGRUNNING_TLS_KEY": str(key),
        },
        log=data / "serve.log",
    )  # fmt: skip
    yield process
    assert process.terminate() == 0


def test_https_is_served_and_verifies(node: NodeProcess, tls_files: TlsFiles) -> None:
    ca, _, _ = tls_files
    assert node.url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=node.url, verify=ssl.create_default_context(cafile=ca)) as client:
        started = client.post(
            "/api/v1/operations", json={"kind": "demo.sleep", "request": {"duration_seconds": 0}}
        )
        assert started.status_code == 201, started.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{node.url}/healthz")  # an unknown authority is refused, as it must be
    plain = node.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz")  # no plain text on the TLS port
    listed = subprocess.run(
        [CLI, "ops", "list", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "LONGRUNNING_URL": node.url, "SSL_CERT_FILE": str(ca)},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert started.json()["id"] in listed.stdout


def test_google_clients_over_tls(
    node: NodeProcess, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _, _ = tls_files
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    rest = operations_v1.AbstractOperationsClient(
        credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=node.url)
    )
    over_rest = [op.name for op in rest.list_operations("operations", "")]
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    channel = grpc.secure_channel(node.grpc_address, credentials)
    over_grpc = [
        op.name for op in operations_v1.OperationsClient(channel).list_operations("operations", "")
    ]
    channel.close()
    assert over_rest == over_grpc and over_rest  # the same operations, both ways


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "nope.pem", "--tls-key", "key.pem"], "No such file or directory"),
        (["--tls-cert", "key.pem", "--tls-key", "key.pem"], "both must be PEM"),
    ],
)
def test_bad_tls_files_fail_the_start_in_one_line(
    tls_files: TlsFiles, args: list[str], message: str, tmp_path: Path
) -> None:
    folder = tls_files[1].parent
    done = subprocess.run(
        [CLI, "serve", "--port", "0", "--store", "memory://", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=folder,
    )  # fmt: skip
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, done.stderr
