"""The HTTP adapter's pure parts: page cursors and entity-tag conditions (no I/O)."""

from __future__ import annotations

import base64
import json
import re
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.conditional import if_match_versions, if_none_match_hits
from adapters.http.cursor import MAX_CURSOR_LENGTH, CursorCodec, InvalidCursor
from adapters.http.schemas import task_json, tasks_json, utc_timestamp
from application.listing import ListPosition, SortField, SortOrder, TaskFilter
from domain.task import Priority, Task, UserId

CODEC = CursorCodec([b"k" * 32])
EVERYTHING = TaskFilter()
OLDEST = SortOrder()
POSITION = ListPosition(datetime(2026, 1, 14, 9, 30, 0, 123456, tzinfo=UTC), 42)

_VALUES = {
    SortField.CREATED_AT: st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)),
    SortField.UPDATED_AT: st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)),
    SortField.DUE_AT: st.none() | st.datetimes(timezones=st.just(UTC)),
    SortField.PRIORITY: st.sampled_from(Priority),
    SortField.TITLE: st.text(min_size=1, max_size=500),
}


@st.composite
def _listings(draw: st.DrawFn) -> tuple[TaskFilter, SortOrder, ListPosition]:
    order = SortOrder(draw(st.sampled_from(SortField)), draw(st.booleans()))
    where = TaskFilter.create(
        completed=draw(st.sampled_from([None, True, False])),
        priorities=draw(st.frozensets(st.sampled_from(Priority))),
        tags=draw(st.lists(st.sampled_from(["work", "home", "é"]))),
        q=draw(st.sampled_from([None, "milk", "buy MILK"])),
    )
    value = draw(_VALUES[order.field])
    return where, order, ListPosition(value, draw(st.integers(1, 2**63 - 1)))


@given(_listings())
def test_a_cursor_round_trips_exactly(
    listing: tuple[TaskFilter, SortOrder, ListPosition],
) -> None:
    where, order, position = listing
    cursor = CODEC.encode("alice", where, order, position)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert CODEC.decode(cursor, "alice", where, order) == position


def test_a_cursor_is_bound_to_its_user_filter_order_and_key() -> None:
    cursor = CODEC.encode("alice", EVERYTHING, OLDEST, POSITION)
    with pytest.raises(InvalidCursor, match="is not valid"):
        CODEC.decode(cursor, "bob", EVERYTHING, OLDEST)
    for where in (
        TaskFilter(completed=True),
        TaskFilter(priorities=frozenset({Priority.HIGH})),
        TaskFilter(tags=("work",)),
        TaskFilter(due_before=POSITION.value),  # type: ignore[arg-type]  # a datetime
        TaskFilter(due_after=POSITION.value),  # type: ignore[arg-type]  # a datetime
        TaskFilter(words=("milk",)),
    ):
        with pytest.raises(InvalidCursor, match="another filter or sort order"):
            CODEC.decode(cursor, "alice", where, OLDEST)
    with pytest.raises(InvalidCursor, match="another filter or sort order"):
        CODEC.decode(cursor, "alice", EVERYTHING, SortOrder(descending=True))
    with pytest.raises(InvalidCursor, match="another filter or sort order"):
        CODEC.decode(cursor, "alice", EVERYTHING, SortOrder(SortField.UPDATED_AT))
    with pytest.raises(InvalidCursor, match="is not valid"):
        CursorCodec([b"other key"]).decode(cursor, "alice", EVERYTHING, OLDEST)


def test_a_search_cursor_serves_the_same_search_however_typed() -> None:
    cursor = CODEC.encode("alice", TaskFilter.create(q="milk Straße"), OLDEST, POSITION)
    for q in ("milk Straße", "MILK STRASSE", "strasse  Milk"):
        assert CODEC.decode(cursor, "alice", TaskFilter.create(q=q), OLDEST) == POSITION
    for q in ("milk", "milk bread", "milk Strasse bread", "milk ﬆraße"):
        with pytest.raises(InvalidCursor, match="another filter or sort order"):
            CODEC.decode(cursor, "alice", TaskFilter.create(q=q), OLDEST)


def test_earlier_keys_open_what_they_sealed_and_only_the_first_seals() -> None:
    rotated = CursorCodec([b"new key", b"k" * 32])
    sealed_before = CODEC.encode("alice", EVERYTHING, OLDEST, POSITION)
    assert rotated.decode(sealed_before, "alice", EVERYTHING, OLDEST) == POSITION
    sealed_after = rotated.encode("alice", EVERYTHING, OLDEST, POSITION)
    assert CursorCodec([b"new key"]).decode(sealed_after, "alice", EVERYTHING, OLDEST) == POSITION
    with pytest.raises(InvalidCursor, match="is not valid"):
        CODEC.decode(sealed_after, "alice", EVERYTHING, OLDEST)
    with pytest.raises(InvalidCursor, match="is not valid"):
        CursorCodec([b"new key", b"older key"]).decode(sealed_before, "alice", EVERYTHING, OLDEST)


@given(st.text(max_size=100))
def test_arbitrary_text_is_never_a_cursor(text: str) -> None:
    with pytest.raises(InvalidCursor):
        CODEC.decode(text, "alice", EVERYTHING, OLDEST)


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None),
        ("*", None),
        ('"3"', frozenset({3})),
        ('"3", "5"', frozenset({3, 5})),
        ('W/"3"', frozenset()),
        ('W/"3", "4"', frozenset({4})),
        ("3", frozenset()),
        ('"abc"', frozenset()),
        ('"99999999999999999999999"', frozenset()),
        ('"9999999999999999999"', frozenset()),  # 19 digits, past a bigint
        ('"9223372036854775807"', frozenset({2**63 - 1})),
        ('"\u0661"', frozenset()),  # a digit, but not an ASCII one
        ('"07"', frozenset()),  # not the tag of version 7: tags compare as strings
        ('"07", "8"', frozenset({8})),
        ('"0"', frozenset()),
        ('"' + "9" * 5000 + '"', frozenset()),  # longer than int() converts
        ("", frozenset()),
    ],
)
def test_if_match_is_a_strong_comparison(
    header: str | None, versions: frozenset[int] | None
) -> None:
    assert if_match_versions(header) == versions


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        (None, False),
        ("*", True),
        ('"3"', True),
        ('W/"3"', True),
        ('"4", "3"', True),
        ('"4"', False),
        ('"03"', False),
    ],
)
def test_if_none_match_is_a_weak_comparison(header: str | None, hit: bool) -> None:
    assert if_none_match_hits(header, 3) is hit


@given(st.datetimes(timezones=st.just(UTC)))
def test_timestamps_always_have_microseconds_and_z(value: datetime) -> None:
    text = utc_timestamp(value)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert datetime.fromisoformat(text) == value


def test_timestamps_in_other_zones_are_written_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert (
        utc_timestamp(datetime(2026, 1, 1, 3, 0, tzinfo=plus_two)) == "2026-01-01T01:00:00.000000Z"
    )


@pytest.mark.parametrize("microsecond", [0, 1, 123456, 999999])
def test_tasks_are_written_with_microseconds_even_when_zero(microsecond: int) -> None:
    moment = datetime(2026, 1, 14, 9, 30, 0, microsecond, tzinfo=UTC)
    task = Task(
        id=1,
        owner=UserId("alice"),
        title="t",
        description=None,
        completed=True,
        completed_at=moment,
        created_at=moment,
        updated_at=moment,
        version=1,
    )
    written = json.loads(task_json(task))
    expected = f"2026-01-14T09:30:00.{microsecond:06d}Z"
    assert written["created_at"] == written["updated_at"] == written["completed_at"] == expected
    assert json.loads(tasks_json([task])[0]) == [written]


def open_task(task_id: int) -> Task:
    """An incomplete task of alice's, titled after its id, written at a moment with microseconds."""
    moment = datetime(2026, 1, 14, 9, 30, 0, 1, tzinfo=UTC)
    return Task(
        id=task_id,
        owner=UserId("alice"),
        title=f"task {task_id}",
        description=None,
        completed=False,
        completed_at=None,
        created_at=moment,
        updated_at=moment,
        version=1,
    )


def test_a_page_holds_every_task_that_fits_its_cap_exactly_and_at_least_one() -> None:
    tasks = [open_task(number) for number in range(1, 4)]
    whole, shown = tasks_json(tasks)
    assert shown == 3
    assert [task["id"] for task in json.loads(whole)] == [1, 2, 3]
    two = len(tasks_json(tasks[:2])[0])
    assert tasks_json(tasks, max_bytes=len(whole)) == (whole, 3)
    assert tasks_json(tasks, max_bytes=len(whole) - 1)[1] == 2
    assert tasks_json(tasks, max_bytes=two) == (tasks_json(tasks[:2])[0], 2)
    assert tasks_json(tasks, max_bytes=two - 1)[1] == 1
    assert tasks_json(tasks, max_bytes=1) == (b"[" + task_json(tasks[0]) + b"]", 1)


def test_the_json_kept_of_the_tasks_shown_takes_about_its_own_size() -> None:
    tasks = [open_task(10_000_000 + number) for number in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        written = sum(len(task_json(task)) for task in tasks)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The JSON (~260 bytes a task) and the memory's entry, not orjson's 4 KiB buffer each.
    assert kept < written + 1000 * 400


def test_a_cursor_fits_the_longest_user_id_and_title() -> None:
    owner = "\U0001f642" * 255
    position = ListPosition("\U0001f600" * 500, 2**63 - 1)
    order = SortOrder(SortField.TITLE, descending=True)
    where = TaskFilter.create(q="x" * 200, tags=["t" * 50] * 3, priorities=list(Priority))
    cursor = CODEC.encode(owner, where, order, position)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert CODEC.decode(cursor, owner, where, order) == position


def test_a_cursor_does_not_show_the_position_it_holds() -> None:
    position = ListPosition("my secret plans", 42)
    order = SortOrder(SortField.TITLE)
    cursor = CODEC.encode("alice", EVERYTHING, order, position)
    sealed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"secret" not in sealed
    assert b"alice" not in sealed
    assert CODEC.encode("alice", EVERYTHING, order, position) != cursor  # a fresh nonce each time
    assert CODEC.decode(cursor, "alice", EVERYTHING, order) == position
