"""Database and server names, the database target, file names of databases, and servers files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from longrunning.core.errors import InvalidRequest, ResourceNotFound
from longrunning.databases.names import (
    DatabaseRef,
    check_database_name,
    check_server_name,
    server_target,
)
from longrunning.databases.servers import (
    DEFAULT_PARENT,
    DEFAULT_SERVER,
    SUFFIX,
    DatabaseServers,
    PostgresServer,
    SqliteServer,
    default_servers,
    load_servers,
)

# Names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "0", "local", "my-server", "a--b", "0a-1b-2c", "x" * 63, "a" + "-b" * 31]
)
def test_valid_server_names(name: str) -> None:
    assert check_server_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 64,
        "Local",
        "-a",
        "a-",
        "-",
        "a_b",
        "a.b",
        "a b",
        "é",
        "a/b",
        " a",
        "a\n",
    ],
)
def test_invalid_server_names(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_server_name(name)
    assert caught.value.reason == "INVALID_SERVER_NAME"
    assert caught.value.metadata == {"server": name[:80]}
    assert "1 to 63" in caught.value.message


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "sales",
        "Sales 2026",
        "x" * 128,
        "données clients",
        "数据库",
        "a#b",
        "a.b.c",
        ".starts-with-dot",
        " leading space",
        "semi;colon,comma",
        "quote'\"s",
        "pipe|and^caret",
        "[brackets]{braces}(parens)",
        "a+b=c@d$e!f~g`h",
        "inner\u00a0nbsp",
    ],
)
def test_valid_database_names(name: str) -> None:
    assert check_database_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 129,
        "é" * 129,
        "trailing.",
        "trailing ",
        "trailing\u00a0",
        "trailing\u3000",
        ".",
        " ",
        *(f"a{c}b" for c in "<>*%&:\\/?"),
        "tab\there",
        "new\nline",
        "nul\x00",
        "esc\x1b[0m",
    ],
)
def test_invalid_database_names(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_database_name(name)
    assert caught.value.reason == "INVALID_DATABASE_NAME"
    assert caught.value.metadata == {"database": name[:80]}
    assert "1 to 128" in caught.value.message


def test_a_long_name_is_shown_cut_in_the_error() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_database_name("y" * 500)
    assert "y" * 80 in caught.value.message and "y" * 81 not in caught.value.message
    assert caught.value.metadata["database"] == "y" * 80


def test_checked_refs_check_both_names() -> None:
    assert DatabaseRef.checked("local", "sales") == DatabaseRef("local", "sales")
    with pytest.raises(InvalidRequest, match="server name"):
        DatabaseRef.checked("Local", "sales")
    with pytest.raises(InvalidRequest, match="database name"):
        DatabaseRef.checked("local", "sales.")


@pytest.mark.parametrize(
    "database", ["sales", "Sales 2026", "données clients", "数据库", "a#b", "a.b.c", "x" * 128]
)
def test_database_targets_round_trip(database: str) -> None:
    ref = DatabaseRef("my-server", database)
    assert ref.target == f"servers/my-server/databases/{database}"
    assert ref.target.startswith(server_target("my-server") + "/")
    assert DatabaseRef.from_target(ref.target) == ref
    assert str(ref) == f"my-server/{database}"


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "servers/local",
        "servers/local/databases/",
        "servers//databases/sales",
        "servers/local/tables/sales",
        "projects/p/locations/l",
        "/servers/local/databases/sales",
        "xservers/local/databases/sales",
        "accounts/42",
    ],
)
def test_targets_that_are_not_databases(target: str | None) -> None:
    assert DatabaseRef.from_target(target) is None


def test_refs_order_by_server_then_database() -> None:
    refs = [DatabaseRef("b", "a"), DatabaseRef("a", "z"), DatabaseRef("a", "b")]
    assert sorted(refs) == [DatabaseRef("a", "b"), DatabaseRef("a", "z"), DatabaseRef("b", "a")]


# Database files -----------------------------------------------------------------------------

AWKWARD = [
    "sales",
    "Sales 2026",
    "données clients",
    "数据库 🚀",
    "a#b",
    "a.b.c",
    "double..dots..x",
    "quote'\"s",
    "pipe|and^caret",
    "[brackets]{braces}(parens)",
    "a+b=c@d$e!f~g`h;i,j",
    "inner\u00a0nbsp",
    "%41-looks-encoded-but-has-no-percent"[3:],
]


@pytest.mark.parametrize("database", AWKWARD)
def test_database_file_names_round_trip(tmp_path: Path, database: str) -> None:
    check_database_name(database)
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    path = server.path(database)
    assert path.parent == tmp_path
    assert path.name.endswith(SUFFIX) and not path.name.startswith(".")
    assert "/" not in path.name and "\x00" not in path.name
    path.touch()
    assert server.database_names() == [database]


def test_file_names_are_distinct_and_listed_sorted(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    names = {server.path(name).name for name in AWKWARD}
    assert len(names) == len(AWKWARD)
    for name in AWKWARD:
        server.path(name).touch()
    (tmp_path / ".sales.sqlite3.0123456789ab.partial").touch()  # work in progress
    (tmp_path / ".hidden.sqlite3").touch()
    (tmp_path / "notes.txt").touch()
    (tmp_path / "sales.sqlite3-wal").touch()
    assert server.database_names() == sorted(AWKWARD)


def test_plain_names_are_plain_files(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    assert server.path("sales").name == "sales.sqlite3"
    assert server.path("Sales 2026").name == "Sales 2026.sqlite3"
    assert server.path("a/b").name == "a%2Fb.sqlite3"  # not a valid name, yet never a directory


def test_a_server_without_its_directory_has_no_databases(tmp_path: Path) -> None:
    assert (
        SqliteServer(name="local", directory=tmp_path / "missing", files=tmp_path).database_names()
        == []
    )


def test_a_database_name_starting_with_a_dot_is_listed(tmp_path: Path) -> None:
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    check_database_name(".starts-with-dot")
    server.path(".starts-with-dot").touch()
    assert server.database_names() == [".starts-with-dot"]


@pytest.mark.parametrize(
    "database", ['"' * 128, "é" * 128, "数" * 128], ids=["quotes", "accents", "cjk"]
)
def test_a_name_too_long_for_a_file_name_is_refused_clearly(tmp_path: Path, database: str) -> None:
    check_database_name(database)  # valid for Azure, but percent-encoded it exceeds 255 bytes
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    with pytest.raises(InvalidRequest, match="too long for a file name") as caught:
        server.path(database)
    assert caught.value.reason == "INVALID_DATABASE_NAME"


@pytest.mark.parametrize("length", [1, 100, 128])
def test_plain_names_up_to_128_characters_fit_with_room_for_the_partial_file(
    tmp_path: Path, length: int
) -> None:
    server = SqliteServer(name="local", directory=tmp_path, files=tmp_path / "files")
    name = server.path("d" * length).name
    # With room for the hidden `.{name}.{12 hex}.partial` sibling a database is built in.
    assert len(os.fsencode(name)) + len("." + ".0123456789ab.partial") <= 255


def test_default_servers(tmp_path: Path) -> None:
    servers = default_servers(tmp_path)
    [local] = list(servers)
    assert local == SqliteServer(
        name=DEFAULT_SERVER,
        directory=tmp_path / "databases" / DEFAULT_SERVER,
        files=tmp_path / "files" / DEFAULT_SERVER,
    )
    assert local.parent == DEFAULT_PARENT == "projects/local/locations/local"
    assert (local.copy_pages_per_step, local.copy_step_pause_seconds) == (256, 0.0)
    assert servers.get("local") is local
    assert isinstance(local, SqliteServer)
    assert local.path("sales") == local.directory / "sales.sqlite3"


def test_unknown_servers_are_not_found(tmp_path: Path) -> None:
    servers = default_servers(tmp_path)
    with pytest.raises(ResourceNotFound) as caught:
        servers.get("other")
    assert caught.value.reason == "SERVER_NOT_FOUND"
    assert caught.value.metadata == {"server": "other"}


def test_servers_iterate_by_name(tmp_path: Path) -> None:
    servers = DatabaseServers(
        {
            n: SqliteServer(name=n, directory=tmp_path / n, files=tmp_path)
            for n in ["zeta", "alpha", "mid"]
        }
    )
    assert [s.name for s in servers] == ["alpha", "mid", "zeta"]


# Servers files ------------------------------------------------------------------------------


def sqlite_server(servers: DatabaseServers, name: str) -> SqliteServer:
    server = servers.get(name)
    assert isinstance(server, SqliteServer)
    return server


def test_load_servers_reads_a_postgresql_server(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [servers.pg]
        dsn = "postgresql://app@db.internal:5432/postgres"
        database_prefix = "shop_"
        cancel_grace_seconds = 2
        files = "/srv/exports"
        parent = "projects/p/locations/eu"

        [servers.pg2]
        dsn = "postgres://db2/postgres"
        database_prefix = ""
        """,
    )
    servers = load_servers(path)
    assert servers.get("pg") == PostgresServer(
        name="pg",
        dsn="postgresql://app@db.internal:5432/postgres",
        files=Path("/srv/exports"),
        database_prefix="shop_",
        cancel_grace_seconds=2.0,
        parent="projects/p/locations/eu",
    )
    pg2 = servers.get("pg2")
    assert isinstance(pg2, PostgresServer)
    assert (pg2.database_prefix, pg2.cancel_grace_seconds) == ("", 5.0)
    assert pg2.files == (tmp_path / "conf" / "files" / "pg2").resolve()
    assert pg2.database_name("sales") == "sales"
    assert servers.get("pg").database_name("sales") == "shop_sales"  # type: ignore[union-attr]


def test_postgresql_names_must_fit_in_63_bytes(tmp_path: Path) -> None:
    server = PostgresServer(name="pg", dsn="postgresql://h/d", files=tmp_path)
    assert server.database_name("x" * 60) == "lr_" + "x" * 60
    with pytest.raises(InvalidRequest, match="at most 63 bytes") as caught:
        server.database_name("x" * 61)
    assert caught.value.reason == "INVALID_DATABASE_NAME"
    with pytest.raises(InvalidRequest):
        server.database_name("é" * 31)  # 62 bytes, plus the prefix


def write(tmp_path: Path, text: str, name: str = "servers.toml") -> Path:
    path = tmp_path / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_servers_reads_every_option(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [servers.local]
        directory = "databases/local"
        copy_pages_per_step = 16
        copy_step_pause_seconds = 0.25
        parent = "projects/p/locations/l"

        [servers.reports]
        directory = "/srv/sqlite/reports"

        [servers.paused]
        directory = "../elsewhere"
        copy_step_pause_seconds = 2
        """,
    )
    servers = load_servers(path)
    assert [s.name for s in servers] == ["local", "paused", "reports"]
    local = servers.get("local")
    assert local == SqliteServer(
        name="local",
        directory=(tmp_path / "conf" / "databases" / "local").resolve(),
        files=(tmp_path / "conf" / "files" / "local").resolve(),
        copy_pages_per_step=16,
        copy_step_pause_seconds=0.25,
        parent="projects/p/locations/l",
    )
    reports = sqlite_server(servers, "reports")
    assert reports.directory == Path("/srv/sqlite/reports")
    assert (reports.copy_pages_per_step, reports.copy_step_pause_seconds) == (256, 0.0)
    assert reports.parent == DEFAULT_PARENT
    paused = sqlite_server(servers, "paused")
    assert paused.directory == (tmp_path / "elsewhere").resolve()
    assert paused.copy_step_pause_seconds == 2.0
    assert isinstance(paused.copy_step_pause_seconds, float)
    assert not (tmp_path / "conf" / "databases").exists()  # created only when first needed


def test_a_relative_directory_is_resolved_against_the_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[servers.local]\ndirectory = "dbs"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative = Path(os.path.relpath(path, elsewhere))
    assert sqlite_server(load_servers(relative), "local").directory == tmp_path / "conf" / "dbs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("servers = [", "cannot read database servers from"),
        ("[servers.local]\ndirectory = 'a'\n[servers.local]\n", "cannot read"),
        ("", "expected only [servers.NAME] tables"),
        ("[servers]\n", "expected only [servers.NAME] tables"),
        ("servers = 3\n", "expected only [servers.NAME] tables"),
        ("title = 'x'\n[servers.local]\ndirectory = 'a'\n", "expected only [servers.NAME]"),
        ("[other.local]\ndirectory = 'a'\n", "expected only [servers.NAME] tables"),
        ("[servers]\nlocal = 5\n", "[servers.local] must be a table"),
        ("[servers.local]\ndirectory = 'a'\ncolour = 'blue'\n", "unknown option 'colour'"),
        ("[servers.local]\nDirectory = 'a'\n", "unknown option 'Directory'"),
        ("[servers.local]\n", "give either directory (SQLite) or dsn (PostgreSQL)"),
        ("[servers.local]\ndirectory = 'a'\ndsn = 'postgresql://h/d'\n", "give either"),
        ("[servers.local]\ndirectory = 'a'\nfiles = 5\n", "files must be a path"),
        ("[servers.local]\ndirectory = 'a'\nfiles = ''\n", "files must be a path"),
        ("[servers.local]\ndirectory = 'a'\ndatabase_prefix = 'x'\n", "for PostgreSQL servers"),
        ("[servers.local]\ndsn = 'mysql://h/d'\n", "dsn must be a postgresql:// URL"),
        ("[servers.local]\ndsn = 5\n", "dsn must be a postgresql:// URL"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ndirectory2 = 'a'\n", "unknown option"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ncopy_pages_per_step = 5\n", "SQLite"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ndatabase_prefix = 'A-'\n", "prefix"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ndatabase_prefix = 5\n", "prefix"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ncancel_grace_seconds = -1\n", "grace"),
        ("[servers.local]\ndsn = 'postgresql://h/d'\ncancel_grace_seconds = true\n", "grace"),
        ("[servers.local]\ndirectory = ''\n", "directory must be a path"),
        ("[servers.local]\ndirectory = 5\n", "directory must be a path"),
        ("[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = 0\n", "copy_pages_per_step"),
        ("[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = -5\n", "copy_pages_per_step"),
        (
            "[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = 1000001\n",
            "copy_pages_per_step must be an integer from 1 to 1000000",
        ),
        ("[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = 2.0\n", "copy_pages_per_step"),
        ("[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = '8'\n", "copy_pages_per_step"),
        ("[servers.local]\ndirectory = 'a'\ncopy_pages_per_step = true\n", "copy_pages_per_step"),
        (
            "[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = -0.5\n",
            "copy_step_pause_seconds must be from 0 to 60",
        ),
        ("[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = 61\n", "pause_seconds"),
        ("[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = nan\n", "pause_seconds"),
        ("[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = inf\n", "pause_seconds"),
        ("[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = '1'\n", "pause_seconds"),
        ("[servers.local]\ndirectory = 'a'\ncopy_step_pause_seconds = false\n", "pause_seconds"),
        ("[servers.local]\ndirectory = 'a'\nparent = 5\n", "parent must be a resource name"),
    ],
)
def test_load_servers_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(expected)) as caught:
        load_servers(path)
    message = str(caught.value)
    assert type(caught.value) is ValueError
    assert expected in message
    assert str(path) in message
    assert "\n" not in message
    if not expected.startswith(("cannot read", "expected only")):
        assert f"{path}: [servers.local]" in message  # names the server too


def test_load_servers_edges_of_the_ranges_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [servers.low]
        directory = "a"
        copy_pages_per_step = 1
        copy_step_pause_seconds = 0
        [servers.high]
        directory = "b"
        copy_pages_per_step = 1000000
        copy_step_pause_seconds = 60.0
        """,
    )
    servers = load_servers(path)
    low, high = sqlite_server(servers, "low"), sqlite_server(servers, "high")
    assert (low.copy_pages_per_step, low.copy_step_pause_seconds) == (1, 0.0)
    assert (high.copy_pages_per_step, high.copy_step_pause_seconds) == (1_000_000, 60.0)


def test_load_servers_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ValueError, match="cannot read database servers from") as caught:
        load_servers(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_load_servers_of_a_directory_or_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read database servers from"):
        load_servers(tmp_path)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[servers.local]\ndirectory = "caf\xe9"\n')
    with pytest.raises(ValueError, match=re.escape(f"cannot read database servers from {latin1}")):
        load_servers(latin1)


@pytest.mark.parametrize("name", ["Local", "a_b", "-a", "x" * 64])
def test_load_servers_bad_server_name(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f'[servers."{name}"]\ndirectory = "a"\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}: [servers.{name}]: ")) as caught:
        load_servers(path)
    message = str(caught.value)
    assert str(path) in message and f"[servers.{name}]" in message
    assert "server name" in message and "\n" not in message
