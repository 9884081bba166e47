"""The README's tour, as a user types it: the real `lro` CLI against a real `longrunning serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.processes import CLI, NodeProcess

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("tour")
    node = NodeProcess(
        "serve", "--port", "0", "--handlers", "tests.acceptance.example_handlers",
        env={"LONGRUNNING_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)},
        log=data / "serve.log",
    )  # fmt: skip
    assert str(data) in node.banner  # the default store lives in the data directory
    yield node.url
    assert node.terminate() == 0  # SIGTERM: a clean, graceful stop


def lro(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "ops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LONGRUNNING_URL": server, "COLUMNS": "120"},
        check=False,
    )


def lro_json(server: str, *args: str) -> Any:
    done = lro(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_start_watch_cancel_ends_cancelled_with_its_outcome(server: str) -> None:
    op = lro_json(server, "start", "demo.sleep", "--param", "duration_seconds=30")
    assert op["state"] == "PENDING"
    watch = subprocess.Popen(
        [CLI, "ops", "watch", op["id"], "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LONGRUNNING_URL": server},
    )
    assert watch.stdout is not None
    seen = [json.loads(watch.stdout.readline())]
    while seen[-1]["progress"]["percent"] == 0:
        seen.append(json.loads(watch.stdout.readline()))
    assert seen[-1]["state"] == "RUNNING"

    cancelled = lro(server, "cancel", op["id"], "--wait")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert "STOPPED_COOPERATIVELY" in cancelled.stdout

    rest = [json.loads(line) for line in watch.stdout]
    assert watch.wait(timeout=10) == 4  # the watched operation did not succeed
    watch.stdout.close()
    percents = [event["progress"]["percent"] for event in seen + rest]
    assert percents == sorted(percents)  # progress never went backwards
    final = rest[-1]
    assert (final["state"], final["cancelOutcome"]) == ("CANCELLED", "STOPPED_COOPERATIVELY")
    assert final["error"]["status"] == "CANCELLED"

    again = lro_json(server, "cancel", op["id"])
    assert again["version"] == final["version"]  # a no-op on a finished operation


def test_a_handler_ignoring_cancel_ends_succeeded_completed_before_cancel(server: str) -> None:
    op = lro_json(
        server, "start", "demo.sleep", "--param", "duration_seconds=4", "--param",
        "ignore_cancel=true",
    )  # fmt: skip
    # The cancel must reach it while it runs: pending, it would end CANCELLED/NOT_STARTED; and
    # a CLI process starting under a loaded CI machine can take seconds, so a short sleep could
    # finish first and make the cancel a plain no-op.
    deadline = time.monotonic() + 30
    while (
        state := httpx.get(f"{server}/api/v1/operations/{op['id']}").json()["state"]
    ) == "PENDING":
        assert time.monotonic() < deadline, "the operation never started"
        time.sleep(0.02)
    assert state == "RUNNING"
    waited = lro(server, "cancel", op["id"], "--wait", "--json")
    assert waited.returncode == 4, waited.stderr  # it did not end CANCELLED...
    final = json.loads(waited.stdout)
    assert final["state"] == "SUCCEEDED"  # ...because it finished first, and says so
    assert final["cancelOutcome"] == "COMPLETED_BEFORE_CANCEL"
    assert final["cancelRequested"] is True


def test_user_handlers_load_from_a_module(server: str) -> None:
    done = lro(
        server, "start", "example.add", "--param", "a=2", "--param", "b=40", "--watch", "--json"
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len({event["id"] for event in events}) == 1  # one operation, followed until done
    assert events[-1]["state"] == "SUCCEEDED"
    assert events[-1]["result"] == {"sum": 42}


def test_lists_are_tables_and_errors_are_one_line(server: str) -> None:
    listed = lro(server, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split()[:4] == ["id", "kind", "state", "percent"]
    missing = lro(server, "get", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "NOT_FOUND" in missing.stderr
    unknown = lro(server, "start", "no.such.kind")
    assert unknown.returncode == 1
    assert "UNKNOWN_KIND" in unknown.stderr


def test_python_dash_m_runs_the_same_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "longrunning", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "serve" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--handlers", "no.such.module"], "cannot import handler module 'no.such.module'"),
        (["--handlers", "json"], "declares no @operation_kind handlers"),
        (["--retention-days", "-1"], "--retention-days must be positive"),
        (["--lease-seconds", "0"], "--lease-seconds must be positive"),
        (["--store", "postgresql://nowhere/db"], "failed to resolve host"),
        (["--no-migrate"], "missing migrations 0001_initial"),
        (["--queue", "Bad Queue"], "queue name 'Bad Queue' is not valid"),
        (["--grpc-port", "70000"], "--grpc-port (or LONGRUNNING_GRPC_PORT) must be a port"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_a_server_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [CLI, "serve", "--port", "0", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (1, 2)
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert done.stdout == ""  # it never said it was serving


def test_migrate_applies_and_check_only_changes_nothing(tmp_path: Path) -> None:
    def migrate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "migrate", "--data-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    stale = migrate("--check")
    assert stale.returncode == 1
    assert "missing migrations 0001_initial" in stale.stderr
    assert migrate().returncode == 0
    current = migrate("--check")
    assert current.returncode == 0
    assert "is current" in current.stdout
