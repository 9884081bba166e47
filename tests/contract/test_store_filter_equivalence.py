"""Random operations and random filter trees, on every store: a listing holds exactly the
operations `core.filtering.matches` selects, in keyset order across pages, each read back as
stored. This pins the SQL translation of filters to the reference evaluator."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longrunning.core.errors import Code
from longrunning.core.filtering import And, Comparator, Comparison, Filter, Not, Or, matches
from longrunning.core.listing import OperationQuery, decode_page_token, sort_key
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.testing import make_operation
from tests.store_kinds import STORE_KINDS, fresh_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(microseconds=m) for m in (-1, 0, 1, 999_999, 86_400_000_000)]
NUMBERS = [-1.0, 0.0, 1.0, 1.5, 2.0, 42.5, 100.0]
LABEL_KEYS = ["env", "team", "a.b", "*", "é"]

# GLOB, LIKE and JSON path specials, a space, and text outside ASCII and the BMP.
texts = st.text(alphabet="ab*?[]%_./é😀 ", max_size=4)
maybe_time = st.none() | st.sampled_from(TIMES)
eq_ne = st.sampled_from([Comparator.EQ, Comparator.NE])
any_comparator = st.sampled_from(list(Comparator))


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    return make_operation(
        id=draw(st.text(alphabet="aZé😀-", min_size=1, max_size=3)),
        parent=draw(st.sampled_from(["p/a", "p/b", "p/a*"])),
        kind=draw(texts),
        state=draw(st.sampled_from(State)),
        create_time=draw(st.sampled_from(TIMES)),
        update_time=draw(st.sampled_from(TIMES)),
        cancellable=draw(st.booleans()),
        cancel_requested_at=draw(maybe_time),
        cancel_outcome=draw(st.none() | st.sampled_from(CancelOutcome)),
        progress=Progress(percent=draw(st.sampled_from(NUMBERS[1:]))),
        error=draw(st.none() | st.builds(Failure, code=st.sampled_from(Code), message=texts)),
        start_time=draw(maybe_time),
        end_time=draw(maybe_time),
        attempt=draw(st.integers(0, 3)),
        labels=draw(st.dictionaries(st.sampled_from(LABEL_KEYS), texts, max_size=3)),
        request_id=draw(st.none() | texts),
        target=draw(st.none() | st.sampled_from(["db/1", "db/2", ""]) | texts),
        queue=draw(st.sampled_from(["default", "fast"])),
    )


_string_fields = ["name", "parent", "kind", "target", "queue", "request_id"]
_string_values = texts | st.sampled_from(["*", "p/a*", "*a*", "db/*", "", "*/operations/a*"])
leaves: st.SearchStrategy[Filter] = st.one_of(
    st.builds(
        Comparison,
        st.sampled_from(_string_fields + [f"labels.{key}" for key in LABEL_KEYS]),
        any_comparator,
        st.none() | _string_values,
    ),
    st.builds(Comparison, st.just("state"), eq_ne, st.none() | st.sampled_from(State)),
    st.builds(
        Comparison, st.just("cancel_outcome"), eq_ne, st.none() | st.sampled_from(CancelOutcome)
    ),
    st.builds(
        Comparison,
        st.sampled_from(["done", "cancel_requested", "cancellable"]),
        eq_ne,
        st.booleans(),
    ),
    st.builds(
        Comparison,
        st.sampled_from(["create_time", "update_time", "start_time", "end_time"]),
        any_comparator,
        st.none() | st.sampled_from(TIMES),
    ),
    st.builds(
        Comparison,
        st.sampled_from(["attempt", "percent"]),
        any_comparator,
        st.none() | st.sampled_from(NUMBERS),
    ),
    st.builds(
        Comparison,
        st.just("error.code"),
        any_comparator,
        st.none() | st.sampled_from([float(code) for code in Code]),
    ),
    st.builds(
        Comparison,
        st.just("labels"),
        st.just(Comparator.HAS),
        st.sampled_from([*LABEL_KEYS, "x"]),
    ),
)
filters: st.SearchStrategy[Filter] = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(children, max_size=3).map(lambda items: Or(tuple(items))),
        children.map(Not),
    ),
    max_leaves=8,
)


async def list_everything(store: OperationStore, query: OperationQuery) -> list[Operation]:
    listed: list[Operation] = []
    while True:
        page = await store.list_page(query)
        assert len(page.operations) <= query.page_size
        listed += page.operations
        if page.next_page_token is None:
            return listed
        cursor = decode_page_token(page.next_page_token, query)
        query = dataclasses.replace(query, after=cursor)


@pytest.mark.parametrize("kind", STORE_KINDS)
@settings(max_examples=50, deadline=None)
@given(
    ops=st.lists(operations(), max_size=12, unique_by=lambda op: op.id),
    checks=st.lists(st.tuples(filters, st.integers(1, 5), st.booleans()), min_size=1, max_size=4),
)
async def test_listing_agrees_with_matches_on_random_filters(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[Operation],
    checks: list[tuple[Filter, int, bool]],
) -> None:
    store = await fresh_store(kind, tmp_path_factory.mktemp("eq"))
    try:
        stored: dict[str, Operation] = {}
        for op in ops:
            kept = await store.insert(op)
            stored[kept.id] = kept
        for kept in stored.values():
            assert await store.get(kept.id) == kept
        for flt, page_size, newest_first in checks:
            query = OperationQuery(filter=flt, page_size=page_size, newest_first=newest_first)
            ordered = sorted(stored.values(), key=sort_key, reverse=newest_first)
            expected = [op for op in ordered if matches(flt, op)]
            assert await list_everything(store, query) == expected, flt
    finally:
        await store.close()
