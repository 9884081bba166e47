"""The OperationStore listing contract, run on every store: every filter field and operator on a
small hand-built dataset, keyset pagination in both orders, parent scoping and page tokens."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from longrunning.core.errors import Code, InvalidRequest
from longrunning.core.filtering import matches, parse_filter
from longrunning.core.listing import build_query
from longrunning.core.operation import CancelOutcome, Failure, Operation, Progress, State
from longrunning.core.ports import OperationStore
from longrunning.testing import make_operation

T0 = datetime(2026, 3, 1, tzinfo=UTC)
P1 = "projects/p1/locations/l"
P2 = "projects/p2/locations/l"


def t(i: float) -> datetime:
    return T0 + timedelta(seconds=i, microseconds=int(i))


DATASET = [
    make_operation(
        id="a", parent=P1, now=t(0), labels={"env": "prod", "team": "a_b%c"}, request_id="req-1"
    ),
    make_operation(
        id="b",
        parent=P1,
        now=t(1),
        kind="demo.copy",
        state=State.RUNNING,
        target="db/1",
        labels={"env": "dev"},
        start_time=t(1),
        attempt=1,
        progress=Progress(percent=42.5, phase="copying"),
        queue="fast",
        lease_owner="w",
        lease_epoch=1,
        lease_expires_at=t(9),
    ),
    make_operation(
        id="c",
        parent=P2,
        now=t(2),
        state=State.SUCCEEDED,
        start_time=t(2),
        end_time=t(3),
        attempt=1,
        progress=Progress(percent=100.0),
        result={"ok": True},
    ),
    make_operation(
        id="d",
        parent=P2,
        now=t(3),
        kind="x%y_z",
        state=State.FAILED,
        target="db/2",
        cancellable=False,
        start_time=t(3),
        end_time=t(4),
        attempt=2,
        error=Failure(code=Code.NOT_FOUND, message="gone"),
    ),
    make_operation(
        id="e",
        parent=P1,
        now=t(4),
        kind="odd?[kind]",
        state=State.CANCELLED,
        end_time=t(4),
        cancel_requested_at=t(4),
        cancel_outcome=CancelOutcome.NOT_STARTED,
        error=Failure(code=Code.CANCELLED, message="Operation was cancelled."),
    ),
]

FILTER_CASES = [
    ("", "abcde"),
    ("state=PENDING", "a"),
    ("state=pending", "a"),
    ("state!=PENDING", "bcde"),
    ("done=true", "cde"),
    ("done=false", "ab"),
    ("-done=true", "ab"),
    ("NOT done=true", "ab"),
    ("-(done=true OR state=RUNNING)", "a"),
    ("cancel_requested=true", "e"),
    ("cancellable=false", "d"),
    ("cancel_outcome=NOT_STARTED", "e"),
    ("cancel_outcome!=NOT_STARTED", "abcd"),
    ('kind="demo.sleep"', "ac"),
    ("kind:demo.sleep", "ac"),
    ("kind=demo.*", "abc"),
    ('kind!="demo.*"', "de"),
    ('kind="DEMO.*"', ""),
    ('kind="*"', "abcde"),
    ('kind="x%y_z"', "d"),
    ('kind="x%*"', "d"),
    ('kind="%*"', ""),
    ('kind="x_y*"', ""),
    ('kind="*_*"', "d"),
    ('kind="odd?[*"', "e"),
    ('kind="o??*"', ""),
    ('kind="*[kind]"', "e"),
    ('kind>"demo.sleep"', "de"),
    ('kind<="demo.sleep"', "abc"),
    (f'parent="{P1}"', "abe"),
    ('parent="projects/p1"', ""),
    ('parent="projects/p1/*"', "abe"),
    (f'name="{P1}/operations/a"', "a"),
    ('name="*/operations/d"', "d"),
    ('name="projects/p2/*"', "cd"),
    ('target="db/1"', "b"),
    ('target!="db/1"', "acde"),
    ('target="db/*"', "bd"),
    ('target!="db/*"', "ace"),
    ('target<"db/2"', "b"),
    ('NOT target<"db/2"', "acde"),
    ("queue=fast", "b"),
    ("queue!=fast", "acde"),
    ('request_id="req-1"', "a"),
    ('request_id!="req-1"', "bcde"),
    ('create_time="2026-03-01T00:00:01.000001Z"', "b"),
    ('create_time>="2026-03-01T00:00:02.000002Z"', "cde"),
    ('create_time<"2026-03-01T00:00:02.000002Z"', "ab"),
    ('create_time>"2026-03-01T01:00:01.000001+01:00"', "cde"),
    ('update_time<="2026-03-01T00:00:00Z"', "a"),
    ('start_time>"2026-03-01T00:00:01.5Z"', "cd"),
    ('start_time<"2026-03-01T00:00:01.5Z"', "b"),
    ('end_time<="2026-03-01T00:00:04.000004Z"', "cde"),
    ('end_time!="2026-03-01T00:00:04.000004Z"', "abc"),
    ("attempt=1", "bc"),
    ("attempt>=1", "bcd"),
    ("attempt<1", "ae"),
    ("attempt=1.5", ""),
    ("percent>42", "bc"),
    ("percent=42.5", "b"),
    ("percent<=0", "ade"),
    ("error.code=5", "d"),
    ("error.code=NOT_FOUND", "d"),
    ("error.code=cancelled", "e"),
    ("error.code!=5", "abce"),
    ("error.code>0", "de"),
    ("NOT error.code>0", "abc"),
    ("labels:env", "ab"),
    ("labels:team", "a"),
    ("-labels:env", "cde"),
    ("labels.env=prod", "a"),
    ("labels.env:prod", "a"),
    ("labels.env!=prod", "bcde"),
    ('labels.env="*"', "ab"),
    ('labels.team="a_b%c"', "a"),
    ('labels.team="a_b*"', "a"),
    ('labels.team="a?b*"', ""),
    ("labels.missing!=x", "abcde"),
    ("state=PENDING OR state=RUNNING", "ab"),
    ('kind="demo.sleep" state=SUCCEEDED', "c"),
    ('kind="demo.sleep" AND state=SUCCEEDED', "c"),
    ("state=PENDING OR state=RUNNING AND labels.env=dev", "b"),
    ("state=PENDING OR state=RUNNING labels.env=dev", "b"),
    ("(state=PENDING OR state=RUNNING) AND NOT labels.env=dev", "a"),
    ("state=FAILED OR (state=PENDING AND queue=default)", "ad"),
    ("NOT (state=FAILED OR state=CANCELLED)", "abc"),
]


def ids(ops: list[Operation]) -> str:
    return "".join(sorted(op.id for op in ops))


@pytest.mark.parametrize(("text", "expected"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
async def test_filter_selects_exactly_the_matching_operations(
    store: OperationStore, text: str, expected: str
) -> None:
    flt = parse_filter(text)
    assert ids([op for op in DATASET if matches(flt, op)]) == expected, "the table is wrong"
    for op in DATASET:
        await store.insert(op)
    page = await store.list_page(build_query(filter_text=text, page_size=100))
    assert ids(page.operations) == expected
    assert page.next_page_token is None


async def test_listing_is_newest_first_unless_asked_otherwise(store: OperationStore) -> None:
    for op in DATASET:
        await store.insert(op)
    newest = await store.list_page(build_query())
    oldest = await store.list_page(build_query(newest_first=False))
    assert [op.id for op in newest.operations] == list("edcba")
    assert [op.id for op in oldest.operations] == list("abcde")


async def test_listing_returns_operations_as_stored(store: OperationStore) -> None:
    stored = [await store.insert(op) for op in DATASET]
    page = await store.list_page(build_query(newest_first=False))
    assert page.operations == stored


async def collect(
    store: OperationStore,
    page_size: int,
    *,
    parent: str | None = None,
    filter_text: str = "",
    newest_first: bool = True,
) -> list[list[str]]:
    """The ids on every page, following page tokens to the end."""
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        query = build_query(
            parent=parent,
            filter_text=filter_text,
            newest_first=newest_first,
            page_size=page_size,
            page_token=token,
        )
        page = await store.list_page(query)
        pages.append([op.id for op in page.operations])
        token = page.next_page_token
        if token is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


@pytest.mark.parametrize("newest_first", [True, False])
async def test_pages_cover_everything_once_in_order(
    store: OperationStore, newest_first: bool
) -> None:
    # Three operations per create time, so that ids must break the ties.
    ops = [make_operation(now=t(i // 3)) for i in range(23)]
    random.Random(7).shuffle(ops)
    for op in ops:
        await store.insert(op)
    expected = [op.id for op in sorted(ops, key=lambda o: (o.create_time, o.id))]
    if newest_first:
        expected.reverse()
    for page_size in (1, 2, 3, 4, 7, 22, 23, 24, 50):
        pages = await collect(store, page_size, newest_first=newest_first)
        assert [op_id for page in pages for op_id in page] == expected
        assert all(len(page) == page_size for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= page_size


async def test_pages_of_a_filtered_listing_cover_exactly_the_matches(
    store: OperationStore,
) -> None:
    ops = [make_operation(now=t(i), labels={"keep": "yes" if i % 3 else "no"}) for i in range(20)]
    for op in ops:
        await store.insert(op)
    pages = await collect(store, 4, filter_text="labels.keep=yes")
    expected = [op.id for op in reversed(ops) if op.labels["keep"] == "yes"]
    assert [op_id for page in pages for op_id in page] == expected


async def test_a_parent_lists_only_its_own_operations(store: OperationStore) -> None:
    for i, parent in enumerate([P1, P2, P1 + "x", "projects/p1", P1, P2]):
        await store.insert(make_operation(id=f"op{i}", now=t(i), parent=parent))
    pages = await collect(store, 1, parent=P1)
    assert [op_id for page in pages for op_id in page] == ["op4", "op0"]
    assert (await store.list_page(build_query(parent="projects/none"))).operations == []


async def test_operations_created_while_paging_do_not_shift_later_pages(
    store: OperationStore,
) -> None:
    ops = [await store.insert(make_operation(now=t(i))) for i in range(6)]
    first = await store.list_page(build_query(page_size=3))
    await store.insert(make_operation(now=t(100)))
    rest = await store.list_page(build_query(page_size=3, page_token=first.next_page_token))
    assert [op.id for op in first.operations + rest.operations] == [op.id for op in ops[::-1]]


async def test_the_page_size_limits_a_page_and_hints_at_more(store: OperationStore) -> None:
    for i in range(5):
        await store.insert(make_operation(now=t(i)))
    assert (await store.list_page(build_query(page_size=5))).next_page_token is None
    page = await store.list_page(build_query(page_size=4))
    assert len(page.operations) == 4 and page.next_page_token is not None


@pytest.mark.parametrize(
    ("parent", "filter_text", "newest_first"),
    [(P1, "state=RUNNING", True), (P2, "state=PENDING", True), (P1, "state=PENDING", False)],
    ids=["other filter", "other parent", "other order"],
)
async def test_a_page_token_only_resumes_its_own_query(
    store: OperationStore, parent: str, filter_text: str, newest_first: bool
) -> None:
    for i in range(3):
        await store.insert(make_operation(now=t(i), parent=P1))
    page = await store.list_page(build_query(parent=P1, filter_text="state=PENDING", page_size=1))
    assert page.next_page_token is not None
    with pytest.raises(InvalidRequest) as caught:
        build_query(
            parent=parent,
            filter_text=filter_text,
            newest_first=newest_first,
            page_token=page.next_page_token,
        )
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
