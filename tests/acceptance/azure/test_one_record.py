"""One operation, five views: ARM (azure-mgmt-sql), the classic XML API, the store's
`dm_operation_status` view (read with sqlite3, as an operator would), `lro ops dmv`, and the
native API all show the same id, state, percent and error, through a cancel and a failure."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import ssl
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from tests.acceptance.azure.conftest import SERVER, SUBSCRIPTION, AzureServer
from tests.acceptance.processes import wait_for

pytestmark = pytest.mark.acceptance

NS = "{http://schemas.microsoft.com/windowsazure}"
DATABASE = "shared"
PREFIX = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Sql"


def _views(azure_server: AzureServer, op_id: str) -> dict[str, dict[str, Any]]:
    """(state code, percent, error code, error text) of `op_id` in every view."""
    with azure_server.native() as client:
        native = client.get(f"/api/v1/operations/{op_id}").json()
        arm_list = client.get(
            f"{PREFIX}/servers/{SERVER}/databases/{DATABASE}/operations",
            params={"api-version": "2025-01-01"},
        ).json()["value"]
        classic = client.get(
            f"/{SUBSCRIPTION}/services/sqlservers/servers/{SERVER}/databaseoperations/{op_id}",
            headers={"x-ms-version": "2012-03-01"},
        )
    assert classic.status_code == 200, classic.text
    xml = ET.fromstring(classic.content)
    arm = next(item for item in arm_list if item["name"] == op_id)["properties"]
    store = azure_server.server_dir.parent / "longrunning.db"
    with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as conn:
        dm = conn.execute(
            "SELECT session_activity_id, state_desc, percent_complete, error_code, error_desc,"
            " major_resource_id, operation FROM dm_operation_status"
            " WHERE session_activity_id = ?",
            (op_id,),
        ).fetchone()
    error = native.get("error") or {}
    return {
        "native": {
            "id": native["id"],
            "state": native["state"]
            + ("+cancel" if native["cancelRequested"] and not native["done"] else ""),
            "percent": int(native["progress"]["percent"])
            if native["state"] != "SUCCEEDED"
            else 100,
            "error": (error.get("code", 0), error.get("message")),
        },
        "arm": {
            "id": arm_list and next(i for i in arm_list if i["name"] == op_id)["name"],
            "state": arm["state"],
            "percent": arm["percentComplete"],
            "error": (arm.get("errorCode", 0), arm.get("errorDescription")),
        },
        "classic": {
            "id": xml.findtext(f"{NS}Id"),
            "state": xml.findtext(f"{NS}State"),
            "percent": int(xml.findtext(f"{NS}PercentComplete") or -1),
            "error": (int(xml.findtext(f"{NS}ErrorCode") or -1), xml.findtext(f"{NS}Error")),
        },
        "dm": {
            "id": dm[0],
            "state": dm[1],
            "percent": dm[2],
            "error": (dm[3], dm[4]),
        },
    }


_SAME_STATE = {
    "RUNNING": ("InProgress", "IN_PROGRESS"),
    "RUNNING+cancel": ("CancelInProgress", "CANCEL_IN_PROGRESS"),
    "CANCELLED": ("Cancelled", "CANCELLED"),
    "FAILED": ("Failed", "FAILED"),
}


def _assert_agree(views: dict[str, dict[str, Any]], op_id: str) -> str:
    native = views["native"]
    arm_state, sql_state = _SAME_STATE[native["state"]]
    assert {v["id"] for v in views.values()} == {op_id}
    assert views["arm"]["state"] == arm_state
    assert views["classic"]["state"] == views["dm"]["state"] == sql_state
    assert {v["percent"] for v in views.values()} == {native["percent"]}, views
    code, message = native["error"]
    for name in ("arm", "classic", "dm"):
        assert views[name]["error"][0] == code, (name, views)
        assert (views[name]["error"][1] or None) == message, (name, views)
    return str(native["state"])


def test_a_cancelled_operation_reads_the_same_everywhere(azure_server: AzureServer) -> None:
    target = f"servers/{SERVER}/databases/{DATABASE}"
    op_id = azure_server.start("demo.sleep", {"duration_seconds": 30, "steps": 300}, target=target)
    with azure_server.native() as client:
        wait_for(client, op_id, lambda op: op["progress"]["percent"] >= 2)
    worker = azure_server.worker.proc.pid
    os.kill(worker, signal.SIGSTOP)  # progress stands still while the views are read
    try:
        assert _assert_agree(_views(azure_server, op_id), op_id) == "RUNNING"
        with azure_server.native() as client:
            assert client.post(f"/api/v1/operations/{op_id}:cancel").status_code == 200
        assert _assert_agree(_views(azure_server, op_id), op_id) == "RUNNING+cancel"
    finally:
        os.kill(worker, signal.SIGCONT)
    with azure_server.native() as client:
        wait_for(client, op_id, lambda op: op["done"] is True)
    views = _views(azure_server, op_id)
    assert _assert_agree(views, op_id) == "CANCELLED"
    assert views["native"]["error"][0] == 1  # google.rpc.Code CANCELLED, as Google's face says


def test_a_failed_operation_reads_the_same_everywhere(azure_server: AzureServer) -> None:
    op_id = azure_server.start(
        "demo.fail",
        {"code": "PERMISSION_DENIED", "message": "no write access to the backup folder"},
        target=f"servers/{SERVER}/databases/{DATABASE}",
    )
    with azure_server.native() as client:
        wait_for(client, op_id, lambda op: op["done"] is True)
    views = _views(azure_server, op_id)
    assert _assert_agree(views, op_id) == "FAILED"
    assert views["arm"]["error"] == (7, "no write access to the backup folder")


def test_the_views_are_served_only_over_verified_tls(azure_server: AzureServer) -> None:
    # A client that does not trust the fixture's CA is refused: the TLS in these tests is real.
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ssl.create_default_context()) as c:
        c.get(azure_server.url + "/healthz")
