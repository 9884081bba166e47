"""`longrunning db ...` as a user types it: the real CLI in subprocesses against a real
`longrunning serve` whose server `local` keeps SQLite files in a temporary directory.

The server's copies go 8 pages a step with a 50 ms pause, so that copying a few MB takes
seconds: long enough to press Ctrl-C in the middle; the small databases here copy in one step.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.processes import CLI, NodeProcess, wait_for

pytestmark = pytest.mark.acceptance

SERVERS = """
[servers.local]
directory = "databases/local"
copy_pages_per_step = 8
copy_step_pause_seconds = 0.05
"""


@dataclass(frozen=True)
class Node:
    url: str
    databases: Path
    files: Path

    def path(self, database: str) -> Path:
        return self.databases / f"{database}.sqlite3"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("db")
    (data / "servers.toml").write_text(SERVERS)
    process = NodeProcess(
        "serve", "--port", "0", "--data-dir", str(data), "--databases", str(data / "servers.toml"),
        log=data / "serve.log",
    )  # fmt: skip
    yield Node(process.url, data / "databases" / "local", data / "files" / "local")
    assert process.terminate() == 0


def env(node: Node) -> dict[str, str]:
    # No terminal and no forced colours: the CLI must print plain lines.
    clean = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**clean, "LONGRUNNING_URL": node.url, "COLUMNS": "120"}


def db(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "db", *args], capture_output=True, text=True, timeout=60, env=env(node), check=False
    )


def ok(node: Node, *args: str) -> str:
    done = db(node, *args)
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def fill(path: Path, count: int, *, width: int = 10) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
        conn.executemany(
            "INSERT INTO items (name, note) VALUES (?, ?)",
            [(f"item {i}", "x" * width) for i in range(count)],
        )
        conn.commit()


def test_create_copy_list_and_drop(node: Node) -> None:
    out = ok(node, "create", "sales")
    lines = out.splitlines()
    assert lines[0].startswith("CREATE DATABASE local/sales: operation projects/")
    assert lines[-1].startswith("CREATE DATABASE local/sales SUCCEEDED")
    assert "\x1b" not in out  # no terminal: plain lines, no ANSI
    fill(node.path("sales"), 100)

    out = ok(node, "copy", "local/sales", "sales-copy")
    assert "DATABASE COPY local/sales-copy SUCCEEDED" in out
    assert "pages=" in out
    assert rows(node.path("sales-copy"), "SELECT count(*) FROM items") == [(100,)]

    listed = ok(node, "list").splitlines()
    assert listed[0].split() == ["name", "size", "created"]
    assert {line.split()[0] for line in listed[1:]} >= {"sales", "sales-copy"}
    by_name = {db["name"]: db for db in json.loads(ok(node, "list", "local", "--json"))}
    assert by_name["sales-copy"]["sizeBytes"] == node.path("sales-copy").stat().st_size
    assert ok(node, "servers").splitlines()[1].split() == [
        "local", "sqlite", "projects/local/locations/local"
    ]  # fmt: skip

    assert "DROP DATABASE local/sales-copy SUCCEEDED" in ok(node, "drop", "sales-copy")
    assert not node.path("sales-copy").exists()
    assert "sales-copy" not in ok(node, "list")


def test_export_files_import_backup_restore(node: Node) -> None:
    ok(node, "create", "orders")
    fill(node.path("orders"), 50)

    ok(node, "export", "orders", "orders.sql")
    assert (node.files / "orders.sql").is_file()
    ok(node, "backup", "orders", "orders.bak")
    assert (node.files / "orders.bak").is_file()
    files = ok(node, "files").splitlines()
    assert files[0].split() == ["name", "size", "modified"]
    assert {line.split()[0] for line in files[1:]} >= {"orders.sql", "orders.bak"}

    ok(node, "import", "orders.sql", "orders-imported")
    ok(node, "restore", "orders.bak", "local/orders-restored")
    for copy in ("orders-imported", "orders-restored"):
        assert rows(node.path(copy), "SELECT count(*), max(name) FROM items") == [(50, "item 9")]


def test_index_and_alter(node: Node) -> None:
    ok(node, "create", "shop")
    fill(node.path("shop"), 20)

    out = ok(node, "index", "shop", "items", "name", "--unique")
    assert "CREATE INDEX local/shop SUCCEEDED" in out
    indexes = rows(node.path("shop"), "PRAGMA index_list(items)")
    assert [(name, unique) for _, name, unique, *_ in indexes] == [("ix_items_name", 1)]

    out = ok(node, "alter", "--server", "local", "shop", "--vacuum", "--journal-mode", "WAL")
    assert "ALTER DATABASE local/shop SUCCEEDED" in out
    assert rows(node.path("shop"), "PRAGMA journal_mode") == [("wal",)]


def test_failures_are_one_line_with_distinct_exit_codes(node: Node) -> None:
    missing = db(node, "drop", "no-such-db")
    assert missing.returncode == 4  # it started, then FAILED
    assert missing.stderr.count("\n") == 1, missing.stderr
    assert missing.stderr.startswith("error: DROP DATABASE local/no-such-db FAILED")
    assert "NOT_FOUND" in missing.stderr

    unknown = db(node, "list", "nowhere")
    assert (unknown.returncode, unknown.stderr.count("\n")) == (1, 1)
    assert "SERVER_NOT_FOUND" in unknown.stderr

    across = db(node, "copy", "local/a", "other/b")
    assert (across.returncode, across.stderr.count("\n")) == (2, 1)
    assert "a copy stays on its server" in across.stderr

    nothing = db(node, "alter", "sales")
    assert (nothing.returncode, nothing.stderr.count("\n")) == (2, 1)


def test_no_wait_and_json(node: Node) -> None:
    started = json.loads(ok(node, "create", "quick", "--no-wait", "--json"))
    assert (started["kind"], started["done"]) == ("db.create", False)
    assert started["request"] == {"server": "local", "database": "quick"}
    assert started["target"] == "servers/local/databases/quick"
    with httpx.Client(base_url=node.url) as client:
        assert wait_for(client, started["id"], lambda op: op["done"])["state"] == "SUCCEEDED"
        described = client.get("/api/v1/servers/local/databases/quick").json()
    assert described["name"] == "quick"

    final = json.loads(ok(node, "copy", "quick", "quick-copy", "--json"))
    assert (final["state"], final["result"]["database"]) == ("SUCCEEDED", "quick-copy")


def test_ctrl_c_cancels_the_operation_and_leaves_nothing(node: Node) -> None:
    source = node.databases / "big.sqlite3"
    node.databases.mkdir(parents=True, exist_ok=True)
    fill(source, 3000, width=1000)  # about 3 MB: some 95 steps of 50 ms
    cli = subprocess.Popen(
        [CLI, "db", "copy", "big", "big-copy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(node),
    )
    assert cli.stdout is not None and cli.stderr is not None
    first = cli.stdout.readline()
    assert first.startswith("DATABASE COPY local/big-copy: operation ")
    op_id = first.rsplit("/", 1)[1].strip()
    with httpx.Client(base_url=node.url) as client:
        wait_for(client, op_id, lambda op: op["progress"]["percent"] > 0)
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=30)
        final = client.get(f"/api/v1/operations/{op_id}").json()
    assert cli.returncode == 4
    assert "cancelling" in out
    assert err.count("\n") == 1, err
    assert err.startswith("error: DATABASE COPY local/big-copy CANCELLED")
    assert (final["state"], final["cancelOutcome"]) == ("CANCELLED", "STOPPED_COOPERATIVELY")
    assert not node.path("big-copy").exists()
    assert not [p.name for p in node.databases.iterdir() if p.name.startswith(".")]
