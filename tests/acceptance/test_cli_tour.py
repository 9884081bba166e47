"""The README's tour, as a user types it: the real `lro` CLI against a real `longrunning serve`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
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
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("tour")
    node = NodeProcess(
        "serve", "--port", "0", "--handlers", "tests.acceptance.example_handlers",
        env={"LONGRUNNING_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)},
        log=data / "serve.log",
    )  # fmt: skip
    assert str(data) in node.banner  # the default store lives in the data directory
    yield node.url, data
    assert node.terminate() == 0  # SIGTERM: a clean, graceful stop


@pytest.fixture(scope="module")
def server(tour: tuple[str, Path]) -> str:
    return tour[0]


def lro(server: str, *args: str, group: str = "ops") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, group, *args],
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


def fill_sales(path: Path, rows: int) -> None:
    """The tour's Python snippet, with fewer rows."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, note BLOB)"
        )
        db.execute(
            "INSERT INTO orders WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < ?) SELECT i, 'customer ' || (i % 5000), i % 997, randomblob(400) FROM n",
            (rows,),
        )
        db.commit()


def rows_in(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM orders").fetchone()[0])


def test_the_database_tour(tour: tuple[str, Path]) -> None:
    url, data = tour
    local = data / "databases" / "local"

    def db(*args: str) -> subprocess.CompletedProcess[str]:
        return lro(url, *args, group="db")

    created = db("create", "sales")
    assert created.returncode == 0, created.stderr
    assert "CREATE DATABASE local/sales SUCCEEDED" in created.stdout
    fill_sales(local / "sales.sqlite3", 150_000)
    for args in [
        ("copy", "sales", "sales-copy"),
        ("index", "sales", "orders", "customer"),
        ("export", "sales", "sales.sql"),
        ("import", "sales.sql", "sales-2"),
    ]:
        done = db(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert "SUCCEEDED" in done.stdout, done.stdout
    assert rows_in(local / "sales-copy.sqlite3") == rows_in(local / "sales-2.sqlite3") == 150_000
    with contextlib.closing(sqlite3.connect(local / "sales.sqlite3")) as conn:
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert ("ix_orders_customer",) in indexes
    files = db("files")
    assert files.returncode == 0 and "sales.sql" in files.stdout

    # Ctrl-C during an import: the CLI cancels, and the half-made database is gone.
    importing = subprocess.Popen(
        [CLI, "db", "import", "sales.sql", "sales-3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LONGRUNNING_URL": url},
    )
    ops_url = f"{url}/api/v1/operations"
    deadline = time.monotonic() + 30
    while not [
        op
        for op in httpx.get(ops_url, params={"filter": 'kind = "db.import"'}).json()["operations"]
        if op["state"] == "RUNNING" and op["progress"]["percent"] > 0
    ]:
        assert time.monotonic() < deadline, "the import never got going"
        time.sleep(0.02)
    importing.send_signal(signal.SIGINT)
    out, err = importing.communicate(timeout=30)
    assert importing.returncode == 4, (out, err)
    assert "IMPORT DATABASE local/sales-3 CANCELLED" in err, err
    listed = db("list")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [
        "sales",
        "sales-2",
        "sales-copy",
    ]
    assert sorted(p.name for p in local.iterdir()) == [
        "sales-2.sqlite3",
        "sales-copy.sqlite3",
        "sales.sqlite3",
    ]
