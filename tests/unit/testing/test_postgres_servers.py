"""tests.postgres_servers: a database of one's own on the shared server, and a private cluster
that survives a restart and a crash with its committed data."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.postgres_servers import (
    PrivateCluster,
    create_database,
    drop_database,
    require_admin_url,
)


def shared_server() -> str:
    return require_admin_url()


def database_exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def test_a_created_database_is_empty_utf8_and_dropping_it_ends_its_sessions() -> None:
    admin = shared_server()
    name = f"longrunning_test_{uuid.uuid4().hex[:12]}"
    url = create_database(admin, name)
    try:
        session = psycopg.connect(url, autocommit=True)
        row = session.execute("SELECT current_database(), pg_client_encoding()").fetchone()
        assert row == (name, "UTF8")
        session.execute("CREATE TABLE t (x int)")
        drop_database(admin, name)  # while the session is still connected
        assert not database_exists(admin, name)
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        session.close()
    finally:
        drop_database(admin, name)
    drop_database(admin, name)  # dropping a missing database is no error


@pytest.mark.parametrize("name", ["", "Upper", "has-dash", "1digit", 'quote"', "x" * 64])
def test_database_names_are_plain_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain database name"):
        create_database("postgresql://nowhere.invalid/postgres", name)
    with pytest.raises(ValueError, match="not a plain database name"):
        drop_database("postgresql://nowhere.invalid/postgres", name)


def count_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM kept").fetchone()
    assert row is not None
    count: int = row[0]
    return count


@pytest.mark.slow
def test_a_private_cluster_keeps_committed_data_through_a_restart_and_a_crash(
    tmp_path: Path,
) -> None:
    with PrivateCluster(tmp_path / "pg") as cluster:
        assert cluster.data_dir.is_dir()
        with psycopg.connect(cluster.url) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (1), (2)")
        cluster.restart()
        assert count_rows(cluster.url) == 2
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("INSERT INTO kept VALUES (3)")
            cluster.kill()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.url, connect_timeout=2)
        cluster.start()
        assert count_rows(cluster.url) == 3
        assert "not properly shut down; automatic recovery in progress" in (
            cluster.log_path.read_text()
        )
    assert not cluster.data_dir.exists()
