"""`longrunning ops ...` against a real server on a socket (uvicorn on 127.0.0.1, port 0) with a
running worker: JSON and human output, exit codes, and the one-line errors.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from longrunning.cli.ops import add_ops_commands, run_ops

UNKNOWN_ID = "6f1c2e0a-3b7d-4c59-9a2e-0d4b8f7e1a22"

pytestmark = pytest.mark.usefixtures("running_worker")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lro")
    add_ops_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ops", *argv])


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = await run_ops(parse(*argv, "--server", self.url))
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self(*argv, "--json")
        assert (code, err) == (0, ""), err
        return json.loads(out)


@pytest.fixture
def cli(live_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(live_url, capsys)


async def test_start_then_watch_json_prints_one_document_per_event(cli: Cli) -> None:
    op = await cli.json(
        "start", "demo.sleep", "--param", "duration_seconds=0.3", "--param", "steps=3"
    )
    assert (op["kind"], op["request"]) == ("demo.sleep", {"duration_seconds": 0.3, "steps": 3})

    code, out, _ = await cli("watch", op["id"], "--json")

    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert events[-1]["state"] == "SUCCEEDED"
    assert events[-1]["progress"]["percent"] == 100.0


async def test_start_with_watch_shows_progress_and_a_summary(cli: Cli) -> None:
    code, out, err = await cli(
        "start", "demo.sleep", "--request", '{"duration_seconds": 0.2, "steps": 2}', "--watch"
    )
    assert (code, err) == (0, "")
    assert "100%" in out
    assert "step 2 of 2" in out
    assert "demo.sleep" in out
    assert "SUCCEEDED" in out.splitlines()[-1]


async def test_get_shows_a_panel_with_labels_and_request(cli: Cli) -> None:
    op = await cli.json("start", "demo.sleep", "--param", "duration_seconds=0", "--label", "team=a")
    await cli("wait", op["id"])

    code, out, _ = await cli("get", op["id"])

    assert code == 0
    for text in (op["id"], "SUCCEEDED", "team=a", '"duration_seconds":0', "result", "100%"):
        assert text in out


async def test_cancel_wait_ends_cancelled_and_reports_the_outcome(cli: Cli) -> None:
    op = await cli.json("start", "demo.sleep", "--param", "duration_seconds=30")
    await cli("wait", op["id"], "--timeout", "0.3")

    code, out, _ = await cli("cancel", op["id"], "--wait", "10")

    assert code == 0
    assert "CANCELLED" in out
    assert "STOPPED_COOPERATIVELY" in out
    again = await cli.json("get", op["id"])
    assert again["cancelOutcome"] in ("STOPPED_COOPERATIVELY", "NOT_STARTED")


async def test_cancel_without_wait_returns_at_once(cli: Cli) -> None:
    op = await cli.json("start", "demo.sleep", "--param", "duration_seconds=30")
    after = await cli.json("cancel", op["id"])
    assert after["cancelRequested"] is True


async def test_wait_and_watch_exit_4_when_the_operation_failed(cli: Cli) -> None:
    op = await cli.json("start", "demo.fail", "--param", "message=out of disk")

    wait_code, wait_out, _ = await cli("wait", op["id"])
    watch_code, watch_out, _ = await cli("watch", op["id"])

    assert (wait_code, watch_code) == (4, 4)
    assert "out of disk" in wait_out
    assert "FAILED" in watch_out.splitlines()[-1]
    assert "out of disk" in watch_out.splitlines()[-1]


async def test_wait_exits_5_when_it_times_out_first(cli: Cli) -> None:
    op = await cli.json("start", "demo.sleep", "--param", "duration_seconds=30")
    code, out, _ = await cli("wait", op["id"], "--timeout", "0.2", "--json")
    assert code == 5
    assert json.loads(out)["done"] is False
    await cli("cancel", op["id"])


async def test_list_shows_a_table_and_all_pages(cli: Cli) -> None:
    ids = [(await cli.json("start", "demo.sleep", "--param", "duration_seconds=30"))["id"]
           for _ in range(3)]  # fmt: skip

    code, out, _ = await cli("list")
    one_page = await cli.json("list", "--page-size", "1")
    every = await cli.json("list", "--page-size", "1", "--all")

    assert code == 0
    for header in ("id", "kind", "state", "percent", "phase", "created", "parent"):
        assert header in out
    assert all(op_id in out for op_id in ids)
    assert len(one_page["operations"]) == 1
    assert "nextPageToken" in one_page
    assert [op["id"] for op in every["operations"]] == ids[::-1]
    code, out, _ = await cli("list", "--page-size", "1")
    assert f"--page-token {one_page['nextPageToken']}" in out
    for op_id in ids:
        await cli("cancel", op_id)


async def test_delete_forgets_the_operation(cli: Cli) -> None:
    op = await cli.json("start", "demo.sleep", "--param", "duration_seconds=0")
    await cli("wait", op["id"])
    code, out, _ = await cli("delete", op["id"])
    assert (code, out.strip()) == (0, f"deleted {op['id']}")
    assert (await cli("get", op["id"]))[0] == 1


async def test_unknown_id_prints_one_error_line_and_exits_1(cli: Cli) -> None:
    code, out, err = await cli("get", UNKNOWN_ID)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("error: NOT_FOUND (OPERATION_NOT_FOUND): ")
    assert UNKNOWN_ID in err


async def test_server_refusal_of_a_start_exits_1(cli: Cli) -> None:
    code, _, err = await cli("start", "no.such.kind")
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT (UNKNOWN_KIND): ")


async def test_unreachable_server_prints_one_line_naming_it_and_exits_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await run_ops(parse("get", UNKNOWN_ID, "--server", "http://127.0.0.1:9"))
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1
    assert err.startswith("error: UNAVAILABLE (UNREACHABLE): ")
    assert "http://127.0.0.1:9" in err


async def test_server_url_comes_from_the_environment(
    live_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGRUNNING_URL", live_url)
    assert await run_ops(parse("list", "--json")) == 0
    assert "operations" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv",
    [
        ("start", "demo.sleep", "--param", "no-equals-sign"),
        ("start", "demo.sleep", "--request", "{not json"),
        ("start", "demo.sleep", "--request", "[1, 2]"),
        ("start", "demo.sleep", "--label", "=v"),
    ],
)
async def test_usage_errors_exit_2_without_calling_the_server(
    cli: Cli, argv: tuple[str, ...]
) -> None:
    code, out, err = await cli(*argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert (await cli.json("list"))["operations"] == []


async def test_server_url_without_http_scheme_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_ops(parse("list", "--server", "ftp://example.com")) == 2
    assert capsys.readouterr().err.startswith("error: server URL 'ftp://example.com' must")


@pytest.mark.parametrize(
    "argv",
    [
        ("start",),
        ("start", "demo.sleep", "--request", "{}", "--param", "a=1"),
        ("list", "--page-size", "0"),
        ("wait", "x", "--timeout", "-1"),
        ("explode",),
    ],
)
def test_bad_arguments_are_argparse_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(*argv)
    assert caught.value.code == 2
