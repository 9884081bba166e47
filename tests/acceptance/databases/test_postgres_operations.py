"""Issue #6, acceptance: "On PostgreSQL with a table of at least 5 million rows: CREATE INDEX
reports progress from the server's progress view; a cancel mid-way ends CANCELLED and leaves no
INVALID index; an export cancelled mid-way leaves no file."

End to end: a real `longrunning serve` (embedded worker, SQLite store) on 127.0.0.1 whose one
database server is the shared PostgreSQL server, driven with the Python client over the native
API: the operation states asserted are the ones every face shows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from longrunning.client import NativeClient
from tests.acceptance.processes import NodeProcess
from tests.postgres_servers import database_url, require_admin_url

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

ROWS = 5_000_000
Json = dict[str, Any]


@dataclass(frozen=True)
class Server:
    node: NodeProcess
    admin_url: str
    prefix: str
    files: Path

    def url_of(self, database: str) -> str:
        return database_url(self.admin_url, self.prefix + database)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    admin = require_admin_url()
    root = tmp_path_factory.mktemp("pg-ops")
    prefix = f"lr_e2e{uuid.uuid4().hex[:8]}_"
    servers = root / "servers.toml"
    servers.write_text(
        f'[servers.pg]\ndsn = "{admin}"\ndatabase_prefix = "{prefix}"\n'
        'files = "files"\ncancel_grace_seconds = 2\n'
    )
    node = NodeProcess(
        "serve", "--port", "0", "--data-dir", str(root / "data"), "--databases", str(servers),
        log=root / "serve.log",
    )  # fmt: skip
    try:
        yield Server(node, admin, prefix, root / "files")
    finally:
        node.terminate()
        with psycopg.connect(admin, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE left(datname, %s) = %s",
                (len(prefix), prefix),
            ).fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shop(server: Server) -> str:
    """Database `shop` made through the server, with 5,000,000 rows in table `orders`."""

    async def create() -> Json:
        async with NativeClient(server.node.url) as client:
            op = await client.create_database("pg", "shop")
            return await client.wait(op["id"], timeout=60)

    done = asyncio.run(create())
    assert done["state"] == "SUCCEEDED", done
    started = time.monotonic()
    with psycopg.connect(server.url_of("shop"), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id bigint NOT NULL, customer text NOT NULL, total numeric)"
        )
        conn.execute(
            "INSERT INTO orders SELECT i, md5(i::text), i %% 1000 FROM generate_series(1, %s) i",
            (ROWS,),
        )
        conn.execute("ANALYZE orders")
    print(f"\nfilled {ROWS:,} rows in {time.monotonic() - started:.1f} s")
    return "shop"


async def follow_until(
    client: NativeClient, op_id: str, mid_way: asyncio.Event, seen: list[Json], percent: float
) -> None:
    async for version in client.watch(op_id):
        seen.append(version)
        if version["state"] == "RUNNING" and version["progress"]["percent"] >= percent:
            mid_way.set()
        if version["done"]:
            return


async def index_state(server: Server, name: str) -> list[tuple[str, bool]]:
    async with await psycopg.AsyncConnection.connect(server.url_of("shop")) as conn:
        rows = await conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            (name,),
        )
        return [(str(r[0]), bool(r[1])) for r in await rows.fetchall()]


async def test_create_index_reports_progress_and_a_cancel_leaves_no_invalid_index(
    server: Server, shop: str
) -> None:
    async with NativeClient(server.node.url) as client:
        op = await client.create_index("pg", shop, "orders", ["customer"], name="ix_cancelled")
        seen: list[Json] = []
        mid_way = asyncio.Event()
        watching = asyncio.create_task(follow_until(client, op["id"], mid_way, seen, 5))
        async with asyncio.timeout(120):
            await mid_way.wait()
        running = seen[-1]
        assert 0 < running["progress"]["percent"] < 100
        # The phase is PostgreSQL's own, read from pg_stat_progress_create_index.
        assert "building index" in running["progress"]["phase"], running["progress"]
        assert running["metadata"]["postgres"]["phase"].startswith("building index")
        await client.cancel(op["id"])
        async with asyncio.timeout(60):
            await watching
    final = seen[-1]
    assert final["state"] == "CANCELLED", final
    percents = [v["progress"]["percent"] for v in seen]
    assert percents == sorted(percents)
    assert await index_state(server, "ix_cancelled") == []  # no INVALID index left behind
    async with await psycopg.AsyncConnection.connect(server.url_of(shop)) as conn:
        invalid = await conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        assert await invalid.fetchone() == (0,)
        count = await conn.execute("SELECT count(*) FROM orders")
        assert await count.fetchone() == (ROWS,)


async def test_create_index_runs_to_a_valid_index(server: Server, shop: str) -> None:
    async with NativeClient(server.node.url) as client:
        op = await client.create_index("pg", shop, "orders", ["total"], name="ix_total")
        seen = [version async for version in client.watch(op["id"])]
    final = seen[-1]
    assert final["state"] == "SUCCEEDED", final
    assert final["result"]["valid"] is True and final["result"]["index"] == "ix_total"
    percents = [v["progress"]["percent"] for v in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    assert await index_state(server, "ix_total") == [("ix_total", True)]


async def test_an_export_cancelled_mid_way_leaves_no_file(server: Server, shop: str) -> None:
    async with NativeClient(server.node.url) as client:
        op = await client.export_database("pg", shop, "shop.dump")
        seen: list[Json] = []
        mid_way = asyncio.Event()
        watching = asyncio.create_task(follow_until(client, op["id"], mid_way, seen, 1))
        async with asyncio.timeout(120):
            await mid_way.wait()
        assert "rows" in seen[-1]["progress"]["phase"], seen[-1]["progress"]
        await client.cancel(op["id"])
        async with asyncio.timeout(30):
            await watching
        assert seen[-1]["state"] == "CANCELLED", seen[-1]
        assert await client.list_files("pg") == []
    leftovers = sorted(p.name for p in server.files.iterdir()) if server.files.exists() else []
    assert leftovers == []  # neither the file nor its hidden partial
    async with await psycopg.AsyncConnection.connect(server.admin_url) as conn:
        dumps = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'longrunning-%%'"
        )
        assert await dumps.fetchone() == (0,)  # no pg_dump session left behind
