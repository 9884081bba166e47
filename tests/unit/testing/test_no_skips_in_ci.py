"""tests.no_skips_in_ci: in CI a skip fails the run saying why; elsewhere a skip is a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

SKIPPING_TESTS = """
import pytest


@pytest.fixture
def server():
    pytest.skip("no server")


def test_skips_itself():
    pytest.skip("why")


def test_needs_a_server(server):
    pass
"""

MODULE_SKIP = """
import pytest

pytest.skip("whole module", allow_module_level=True)


def test_never_collected():
    pass
"""


def run_pytest(directory: Path, tests: str, *, ci: bool) -> subprocess.CompletedProcess[str]:
    """Run pytest with only the plugin (and builtins) on a directory holding the given tests."""
    (directory / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (directory / "conftest.py").write_text('pytest_plugins = ["tests.no_skips_in_ci"]\n')
    (directory / "test_skipping.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS"}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", str(directory)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_in_ci_a_skip_in_a_test_or_a_fixture_fails_saying_why(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, SKIPPING_TESTS, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped in CI: why" in done.stdout
    assert "skipped in CI: no server" in done.stdout
    assert "1 failed, 1 error" in done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, SKIPPING_TESTS, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout
    assert "skipped in CI" not in done.stdout


@pytest.mark.parametrize("ci", [True, False])
def test_a_module_level_skip_fails_collection_in_ci_only(tmp_path: Path, ci: bool) -> None:
    done = run_pytest(tmp_path, MODULE_SKIP, ci=ci)
    assert done.returncode == (2 if ci else 5), done.stdout + done.stderr  # 5: no tests
    assert ("skipped in CI: whole module" in done.stdout) is ci
