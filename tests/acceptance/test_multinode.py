"""Several `longrunning` processes sharing one PostgreSQL database, as a deployment would run them.

API nodes (`serve --workers 0`) take the requests, `worker` processes claim and run operations.
Each test gets a fresh database on the server LONGRUNNING_TEST_POSTGRES_URL names (skipped
without it, which CI turns into a failure); the outage test runs its own throwaway server.
`audit.record` (tests/acceptance/audit_handlers.py) logs "<operation id> <pid>" per run, which
tells how often each operation ran, and where.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.acceptance.processes import CLI, Json, NodeProcess, wait_for
from tests.postgres_servers import PrivateCluster, fresh_database, require_admin_url

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0
OUTAGE = 20.0
"""Much longer than the node's 5 s wait for a connection: starts during the outage are refused."""
RECOVERY = 5.0
"""How soon after PostgreSQL is back the node must take starts again."""


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, migrated database of its own on the shared server, dropped after the test."""
    with fresh_database("longrunning_multinode") as url:
        migrate = subprocess.run(
            [CLI, "migrate", "--store", url], capture_output=True, text=True, timeout=60
        )
        assert migrate.returncode == 0, migrate.stderr
        yield url


class Nodes:
    """Starts API nodes and workers on one store, loading the audit handlers; kills them all."""

    def __init__(self, store_url: str, log_dir: Path) -> None:
        self.store_url = store_url
        self.log_dir = log_dir
        self.audit_file = log_dir / "audit.log"
        self.started: list[NodeProcess] = []

    def launch(self, name: str, *args: str) -> NodeProcess:
        node = NodeProcess(
            *args, "--store", self.store_url, "--handlers", "tests.acceptance.audit_handlers",
            env={"PYTHONPATH": str(ROOT), "LONGRUNNING_AUDIT_FILE": str(self.audit_file)},
            log=self.log_dir / f"{name}.log",
        )  # fmt: skip
        self.started.append(node)
        return node

    def api(self, name: str, *args: str) -> NodeProcess:
        return self.launch(name, "serve", "--port", "0", "--workers", "0", *args)

    def worker(self, name: str, *args: str) -> NodeProcess:
        return self.launch(name, "worker", *args)

    def audit(self) -> list[tuple[str, int]]:
        """(operation id, pid) per run of `audit.record`, in the order they ran."""
        if not self.audit_file.exists():
            return []
        lines = self.audit_file.read_text().splitlines()
        return [(op_id, int(pid)) for op_id, pid in (line.split() for line in lines)]

    def kill_all(self) -> None:
        for node in self.started:
            node.kill()


@pytest.fixture
def nodes(tmp_path: Path, database_url: str) -> Iterator[Nodes]:
    started = Nodes(database_url, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def start(client: httpx.Client, kind: str, request: Json, **fields: object) -> str:
    response = client.post("/api/v1/operations", json={"kind": kind, "request": request, **fields})
    assert response.status_code == 201, response.text
    op_id: str = response.json()["id"]
    return op_id


def list_all(client: httpx.Client, filter_: str) -> list[Json]:
    """Every operation matching the filter, page by page (bounded)."""
    found: list[Json] = []
    token = ""
    for _ in range(100):
        params = {"filter": filter_, "pageSize": "1000", "pageToken": token}
        page = client.get("/api/v1/operations", params=params)
        assert page.status_code == 200, page.text
        found += page.json()["operations"]
        token = page.json().get("nextPageToken", "")
        if not token:
            return found
    raise AssertionError("more than 100 pages")


def wait_until_none_left(client: httpx.Client, filter_: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while list_all(client, filter_):
        assert time.monotonic() < deadline, f"after {timeout}s, some are still {filter_!r}"
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_a_thousand_starts_through_two_nodes_run_exactly_once_on_two_workers(
    nodes: Nodes,
) -> None:
    apis = [nodes.api("api-a"), nodes.api("api-b")]
    workers = [nodes.worker(f"worker-{n}", "--concurrency", "16") for n in "ab"]
    clients = [httpx.Client(base_url=api.url, timeout=30) for api in apis]
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            ids = list(
                pool.map(lambda i: start(clients[i % 2], "audit.record", {"n": i}), range(1000))
            )
        assert len(set(ids)) == 1000
        wait_until_none_left(clients[0], "done = false", timeout=120)
        finished = list_all(clients[1], 'kind = "audit.record"')
    finally:
        for client in clients:
            client.close()
    assert {op["id"] for op in finished} == set(ids)
    assert {op["state"] for op in finished} == {"SUCCEEDED"}
    assert {op["attempt"] for op in finished} == {1}
    runs = nodes.audit()
    repeated = {op_id: n for op_id, n in Counter(op_id for op_id, _ in runs).items() if n > 1}
    assert not repeated, f"ran more than once: {repeated}"
    assert {op_id for op_id, _ in runs} == set(ids)
    by_pid = Counter(pid for _, pid in runs)
    assert set(by_pid) == {w.proc.pid for w in workers}, f"runs per pid: {by_pid}"


def test_cancel_sent_to_another_node_stops_the_operation_at_once(nodes: Nodes) -> None:
    node_a, node_b = nodes.api("api-a"), nodes.api("api-b")
    nodes.worker("worker-a")
    nodes.worker("worker-b")
    with (
        httpx.Client(base_url=node_a.url, timeout=10) as a,
        httpx.Client(base_url=node_b.url, timeout=10) as b,
    ):
        op_id = start(a, "demo.sleep", {"duration_seconds": 30, "steps": 300})
        wait_for(a, op_id, lambda op: op["state"] == "RUNNING" and op["progress"]["percent"] > 0)
        sent = time.monotonic()
        cancel = b.post(f"/api/v1/operations/{op_id}:cancel")
        assert cancel.status_code == 200, cancel.text
        done = wait_for(b, op_id, lambda op: op["done"], timeout=15)
        took = time.monotonic() - sent
    assert done["state"] == "CANCELLED"
    assert done["cancelOutcome"] == "STOPPED_COOPERATIVELY"
    assert done["progress"]["percent"] < 50
    assert took < 5, f"cancelled after {took:.2f}s: polled, not notified?"


def test_killed_worker_operation_is_recovered_by_the_other_within_two_leases(
    nodes: Nodes,
) -> None:
    lease = ("--lease-seconds", str(LEASE))
    api = nodes.api("api", *lease)
    first = nodes.worker("worker-a", *lease)
    with httpx.Client(base_url=api.url, timeout=10) as client:
        op_id = start(client, "demo.sleep", {"duration_seconds": 4, "steps": 40})
        running = wait_for(
            client, op_id, lambda op: op["state"] == "RUNNING" and op["progress"]["percent"] > 0
        )
        assert running["attempt"] == 1
        nodes.worker("worker-b", *lease)  # the only one left once the first is gone
        first.kill()
        killed_at = time.monotonic()
        retried = wait_for(client, op_id, lambda op: op["attempt"] == 2, timeout=4 * LEASE + 5)
        recovery = time.monotonic() - killed_at
        assert recovery <= 2 * LEASE + 1, f"recovered after {recovery:.2f}s"
        assert retried["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
        done = wait_for(client, op_id, lambda op: op["done"], timeout=2 * LEASE + 15)
    assert done["state"] == "SUCCEEDED"
    assert done["attempt"] == 2


def test_an_operation_runs_only_on_a_worker_serving_its_queue(nodes: Nodes) -> None:
    api = nodes.api("api")
    on_db_a = nodes.worker("worker-db-a", "--queue", "db-a")
    on_default = nodes.worker("worker-default")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        queued = {
            queue: [start(client, "audit.record", {}, queue=queue) for _ in range(10)]
            for queue in ("db-a", "default")
        }
        wait_until_none_left(client, "done = false", timeout=30)
    ran_on = dict(nodes.audit())
    assert {ran_on[op_id] for op_id in queued["db-a"]} == {on_db_a.proc.pid}
    assert {ran_on[op_id] for op_id in queued["default"]} == {on_default.proc.pid}


class Starter(threading.Thread):
    """Starts short operations one after another until told to stop (or 150 s, 5,000 starts),
    recording every acknowledged id and every other outcome."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acknowledged: list[str] = []
        self.refused: list[tuple[float, int, Json]] = []  # (seconds taken, status, body)
        self.errors: list[tuple[float, str]] = []  # (seconds taken, exception)
        self.halt = threading.Event()

    def run(self) -> None:
        body = {"kind": "demo.sleep", "request": {"duration_seconds": 0.05, "steps": 1}}
        deadline = time.monotonic() + 150
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for _ in range(5000):
                if self.halt.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                try:
                    response = client.post("/api/v1/operations", json=body)
                except httpx.HTTPError as exc:
                    self.errors.append((time.monotonic() - sent, repr(exc)))
                    continue
                if response.status_code == 201:
                    self.acknowledged.append(response.json()["id"])
                else:
                    self.refused.append(
                        (time.monotonic() - sent, response.status_code, response.json())
                    )
                time.sleep(0.02)

    def wait_acknowledged(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count:
            assert self.is_alive(), "the starter stopped early"
            assert time.monotonic() < deadline, f"{len(self.acknowledged)} of {count} starts"
            time.sleep(0.05)


@pytest.mark.timeout(240)
def test_postgres_restart_mid_load_loses_no_acknowledged_start(tmp_path: Path) -> None:
    require_admin_url()  # a PostgreSQL installation is needed
    with PrivateCluster(tmp_path / "pg") as cluster:
        nodes = Nodes(cluster.url, tmp_path)
        try:
            node = nodes.launch("serve", "serve", "--port", "0", "--lease-seconds", "5")
            starter = Starter(node.url)
            starter.start()
            try:
                starter.wait_acknowledged(50, timeout=30)
                cluster.stop()
                before = len(starter.refused)
                time.sleep(OUTAGE)
                refused_while_down = len(starter.refused) - before
                cluster.start()
                up_at = time.monotonic()
                starter.wait_acknowledged(len(starter.acknowledged) + 1, timeout=60)
                recovered_after = time.monotonic() - up_at
                starter.wait_acknowledged(len(starter.acknowledged) + 20, timeout=30)
            finally:
                starter.halt.set()
                starter.join(timeout=15)
            assert not starter.errors, f"requests that hung or broke: {starter.errors[:5]}"
            assert refused_while_down > 0, f"no start refused in a {OUTAGE} s outage"
            for took, status, body in starter.refused:
                assert status == 503, (status, body)
                assert body["error"]["status"] == "UNAVAILABLE", body
                assert took < 10, f"a refusal took {took:.1f}s"
            with httpx.Client(base_url=node.url, timeout=10) as client:
                wait_until_none_left(client, "done = false", timeout=60)
                for op_id in starter.acknowledged:
                    got = client.get(f"/api/v1/operations/{op_id}")
                    assert got.status_code == 200, (op_id, got.text)
                    assert got.json()["state"] == "SUCCEEDED", got.json()
            assert recovered_after < RECOVERY, (
                f"starts succeeded again only {recovered_after:.1f}s after PostgreSQL was back"
            )
        finally:
            nodes.kill_all()


def test_the_store_url_may_come_from_the_environment(database_url: str) -> None:
    env = {**os.environ, "LONGRUNNING_STORE": database_url}
    checked = subprocess.run(
        [CLI, "migrate", "--check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert "is current" in checked.stdout
    worker = subprocess.run(
        [CLI, "worker", "--no-migrate", "--queue", "bad queue!"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 1
    assert "queue name 'bad queue!' is not valid" in worker.stderr
