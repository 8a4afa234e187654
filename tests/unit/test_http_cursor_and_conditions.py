"""The HTTP adapter's pure parts: page cursors and entity-tag conditions (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.conditional import if_match_versions, if_none_match_hits
from adapters.http.cursor import CursorCodec, InvalidCursor
from application.ports import ListPosition

CODEC = CursorCodec(b"k" * 32)
POSITION = ListPosition(created_at=datetime(2026, 1, 14, 9, 30, 0, 123456, tzinfo=UTC), task_id=42)


@given(
    st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)),
    st.integers(min_value=1, max_value=2**63 - 1),
    st.sampled_from([None, True, False]),
)
def test_a_cursor_round_trips_exactly(
    created_at: datetime, task_id: int, completed: bool | None
) -> None:
    position = ListPosition(created_at=created_at, task_id=task_id)
    cursor = CODEC.encode("alice", completed, position)
    assert CODEC.decode(cursor, "alice", completed) == position


def test_a_cursor_is_bound_to_its_user_filter_and_key() -> None:
    cursor = CODEC.encode("alice", None, POSITION)
    with pytest.raises(InvalidCursor):
        CODEC.decode(cursor, "bob", None)
    with pytest.raises(InvalidCursor):
        CODEC.decode(cursor, "alice", True)
    with pytest.raises(InvalidCursor):
        CursorCodec(b"other key").decode(cursor, "alice", None)


@given(st.text(max_size=100))
def test_arbitrary_text_is_never_a_cursor(text: str) -> None:
    with pytest.raises(InvalidCursor):
        CODEC.decode(text, "alice", None)


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
    ],
)
def test_if_none_match_is_a_weak_comparison(header: str | None, hit: bool) -> None:
    assert if_none_match_hits(header, 3) is hit
