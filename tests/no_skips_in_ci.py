"""A pytest plugin: in CI (CI=true) a skipped test fails, saying "skipped in CI: <reason>".

A skip is how a test says its environment is missing (a PostgreSQL server, say); locally that is
fine, but CI must provide everything, so there a skip is a broken setup that would otherwise pass
unnoticed. Covers pytest.skip in a test or a fixture, skip and skipif marks, and module-level skips
(those become collection errors). Expected failures (xfail) are left alone. Register it with
`pytest_plugins = ["tests.no_skips_in_ci"]` in the top-level conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

SKIPPED_IN_CI = "skipped in CI"


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: <reason>")
        return longrepr[2].removeprefix("Skipped: ")
    return str(longrepr)


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.longrepr = f"{SKIPPED_IN_CI}: {_reason(report)}"
        report.outcome = "failed"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_if_skipped(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_if_skipped(report)
    return report
