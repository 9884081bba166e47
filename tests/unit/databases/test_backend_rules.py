"""The rules every backend shares: file names, index specs, and monotonic progress with an ETA."""

from __future__ import annotations

from datetime import datetime

import pytest

from longrunning.core.errors import InvalidRequest
from longrunning.core.json_values import JsonObject
from longrunning.databases.backend import IndexSpec, check_file_name
from longrunning.databases.work import ProgressClock


@pytest.mark.parametrize("name", ["sales.sql", "a", "Sales-2026_11.bacpac", "9" * 200])
def test_valid_file_names(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".hidden", "../up", "a/b", "a\\b", "x" * 201, "-dash", "a b", "é.sql", "x.partial"],
)
def test_invalid_file_names(name: str) -> None:
    with pytest.raises(InvalidRequest, match="file name") as caught:
        check_file_name(name)
    assert caught.value.reason == "INVALID_FILE_NAME"


def test_index_specs_round_trip() -> None:
    spec = IndexSpec.from_json({"name": "ix", "table": "t", "columns": ["a", 'b "c"']})
    assert spec == IndexSpec(name="ix", table="t", columns=("a", 'b "c"'), unique=False)
    assert IndexSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "request.index must be an object"),
        ({"name": "i", "table": "t", "columns": []}, "1 to 32 columns"),
        ({"name": "i", "table": "t", "columns": ["c"] * 33}, "1 to 32 columns"),
        ({"name": "i", "table": "t", "columns": "c"}, "1 to 32 columns"),
        ({"name": "i", "table": "t", "columns": [5]}, r"columns\[\] must be a name"),
        ({"name": "i", "table": "x" * 64, "columns": ["c"]}, "request.index.table"),
        ({"name": "i\x00", "table": "t", "columns": ["c"]}, "must not contain NUL"),
        ({"table": "t", "columns": ["c"]}, "request.index.name"),
    ],
)
def test_invalid_index_specs(value: object, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        IndexSpec.from_json(value)


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[float, str | None, datetime | None]] = []

    @property
    def operation_id(self) -> str:
        return "op"

    @property
    def cancel_requested(self) -> bool:
        return False

    def checkpoint(self) -> None:
        pass

    async def sleep(self, seconds: float) -> None:
        pass

    def report_progress(
        self, percent: float, *, phase: str | None = None, eta: datetime | None = None
    ) -> None:
        self.reports.append((percent, phase, eta))

    def update_metadata(self, values: JsonObject) -> None:
        pass


def test_progress_never_moves_backwards_and_has_an_eta_only_mid_way() -> None:
    work = Recorder()
    clock = ProgressClock(work)
    clock.report(0, 100, "start")
    clock.report(50, 100, "half")
    clock.report(40, 120, "the estimate grew")  # 33 %: shown as 50 %, never less
    clock.report(150, 100, "more than estimated")
    clock.report(1, 0, "no total")
    percents = [percent for percent, _, _ in work.reports]
    assert percents == [0.0, 50.0, 50.0, 100.0, 100.0]
    assert [phase for _, phase, _ in work.reports][2] == "the estimate grew"
    etas = [eta for _, _, eta in work.reports]
    assert etas[0] is None and etas[1] is not None and etas[1].tzinfo is not None
    assert etas[3] is None
