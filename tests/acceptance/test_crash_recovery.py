"""kill -9 of a worker mid-operation, and of the server right after acknowledged starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.processes import NodeProcess, running, wait_for

pytestmark = pytest.mark.acceptance

LEASE = 2.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ops.db"


@pytest.fixture
def api(tmp_path: Path, store_url: str) -> Iterator[NodeProcess]:
    """An API-only node: every operation runs on the separate worker processes of the test."""
    node = NodeProcess(
        "serve", "--port", "0", "--workers", "0", "--store", store_url,
        "--lease-seconds", str(LEASE), "--handlers", "tests.engine.kinds",
        env={"PYTHONPATH": str(ROOT)}, log=tmp_path / "api.log",
    )  # fmt: skip
    yield node
    node.kill()


def worker(tmp_path: Path, store_url: str, name: str) -> NodeProcess:
    return NodeProcess(
        "worker", "--store", store_url, "--lease-seconds", str(LEASE),
        log=tmp_path / f"{name}.log",
    )  # fmt: skip


def test_killed_worker_operation_is_recovered_by_another_within_two_leases(
    tmp_path: Path, store_url: str, api: NodeProcess
) -> None:
    first = worker(tmp_path, store_url, "worker-a")
    second: NodeProcess | None = None
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:
            created = client.post(
                "/api/v1/operations",
                json={"kind": "demo.sleep", "request": {"duration_seconds": 3, "steps": 30}},
            )
            assert created.status_code == 201
            op_id = created.json()["id"]
            running = wait_for(
                client, op_id, lambda op: op["state"] == "RUNNING" and op["progress"]["percent"] > 0
            )
            assert running["attempt"] == 1
            second = worker(tmp_path, store_url, "worker-b")
            first.kill()
            killed_at = time.monotonic()
            retried = wait_for(client, op_id, lambda op: op["attempt"] == 2, timeout=4 * LEASE)
            recovery = time.monotonic() - killed_at
            assert recovery <= 2 * LEASE, f"recovered after {recovery:.2f}s"
            assert retried["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
            done = wait_for(client, op_id, lambda op: op["done"], timeout=15)
            assert done["state"] == "SUCCEEDED"
            assert done["attempt"] == 2
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_killed_worker_operation_that_cannot_be_retried_fails_unavailable(
    tmp_path: Path, store_url: str, api: NodeProcess
) -> None:
    first = worker(tmp_path, store_url, "worker-a")
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:
            op_id = client.post(
                "/api/v1/operations",
                json={"kind": "demo.fail", "request": {"after_seconds": 30}},
            ).json()["id"]
            wait_for(client, op_id, lambda op: op["state"] == "RUNNING")
            first.kill()
            killed_at = time.monotonic()
            # The API node's own reaper recovers it: no worker needs to be alive for that.
            done = wait_for(client, op_id, lambda op: op["done"], timeout=4 * LEASE)
            assert time.monotonic() - killed_at <= 2 * LEASE
            assert done["state"] == "FAILED"
            assert done["error"]["status"] == "UNAVAILABLE"
    finally:
        first.kill()


def test_server_killed_right_after_acknowledged_starts_loses_none(
    tmp_path: Path, store_url: str
) -> None:
    node = NodeProcess("serve", "--port", "0", "--store", store_url, log=tmp_path / "serve-1.log")
    acknowledged: list[str] = []
    try:
        with httpx.Client(base_url=node.url, timeout=10) as client:
            for i in range(200):
                response = client.post(
                    "/api/v1/operations",
                    json={
                        "kind": "demo.sleep",
                        "request": {"duration_seconds": 60},
                        "requestId": f"start-{i}",
                    },
                )
                assert response.status_code == 201
                acknowledged.append(response.json()["id"])
    finally:
        node.kill()  # at once after the last acknowledgement
    restarted = NodeProcess(
        "serve", "--port", "0", "--store", store_url, "--workers", "0",
        log=tmp_path / "serve-2.log",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as client:
            for i, op_id in enumerate(acknowledged):
                got = client.get(f"/api/v1/operations/{op_id}")
                assert got.status_code == 200, (i, got.text)
                assert got.json()["requestId"] == f"start-{i}"
    finally:
        restarted.kill()


def test_killed_worker_takes_its_process_isolated_handler_group_down(
    tmp_path: Path, store_url: str, api: NodeProcess
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    node = NodeProcess(
        "worker", "--store", store_url, "--lease-seconds", str(LEASE),
        "--handlers", "tests.engine.kinds",
        env={"PYTHONPATH": str(ROOT)},
        log=tmp_path / "worker.log",
    )  # fmt: skip
    try:
        with httpx.Client(base_url=api.url, timeout=10) as client:
            created = client.post(
                "/api/v1/operations",
                json={"kind": "test.process_stubborn", "request": {"pid_file": str(pid_file)}},
            )
            assert created.status_code == 201, created.text
            wait_for(client, created.json()["id"], lambda op: op["progress"]["percent"] > 0)
        grandchild = int(pid_file.read_text())
        assert running(grandchild)
        node.kill()  # SIGKILL to the worker's own group only: the handler leads another group
        deadline = time.monotonic() + 5
        while running(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(grandchild), "the handler's group outlived its worker"
    finally:
        node.kill()
