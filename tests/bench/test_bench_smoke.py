"""The benchmark harness keeps working: `python -m bench --smoke` end to end, in seconds.

Tiny counts, one repetition, no peers, no wrk; longrunning on SQLite, and on PostgreSQL when
LONGRUNNING_TEST_POSTGRES_URL names a server (CI always does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_servers import ADMIN_URL_ENV

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT_SECONDS = 170

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SMOKE_TIMEOUT_SECONDS + 10)]


def _results(run: dict[str, Any], workload: str, system: str) -> dict[str, dict[str, Any]]:
    return {
        r["metric"]: r
        for r in run["results"]
        if r["workload"] == workload and r["system"] == system
    }


def test_smoke_run_measures_w1_to_w3_and_writes_the_report(tmp_path: Path) -> None:
    out, report = tmp_path / "results.json", tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench", "--smoke", "--work-dir", str(tmp_path / "work")]
    command += ["--out", str(out), "--report", str(report)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads(out.read_text())
    systems = ["longrunning-sqlite"]
    if os.environ.get(ADMIN_URL_ENV):
        systems.append("longrunning-postgres")
    failed = [r for r in run["results"] if r["status"] == "failed"]
    assert not failed, failed

    for system in systems:
        for workload in ("W1", "W1.workers2"):
            w1 = _results(run, workload, system)["ops_per_second"]
            assert w1["status"] == "ok" and min(w1["samples"]) > 0, w1
        w2 = _results(run, "W2", system)
        for metric in ("p50_ms", "p95_ms", "p99_ms"):
            assert w2[metric]["status"] == "ok" and min(w2[metric]["samples"]) > 0, w2[metric]
        for workload in ("W3", "W3.across-nodes"):
            w3 = _results(run, workload, system)
            assert all(r["status"] == "ok" for r in w3.values()), w3
            assert w3["stuck"]["samples"] == [0], w3["stuck"]
            assert w3["steps_after_terminal"]["samples"] == [0], w3["steps_after_terminal"]
            assert w3["cancelled_fraction"]["samples"] == [1.0], w3["cancelled_fraction"]
            assert min(w3["p99_ms"]["samples"]) > 0, w3["p99_ms"]
    ceilings = _results(run, "W1", "ceiling-sqlite-wal-full")["ops_per_second"]
    assert ceilings["status"] == "ok" and min(ceilings["samples"]) > 0
    for workload in ("W2", "W3"):
        floor = _results(run, workload, "ceiling-http-round-trips")["p99_ms"]
        assert floor["status"] == "ok" and min(floor["samples"]) > 0, floor

    text = report.read_text()
    assert "| system | role | median |" in text and "## W3" in text
    assert "## Goals (issue 7)" in text
    assert list((tmp_path / "benchmarks").glob("*.png")), "no chart was drawn"
